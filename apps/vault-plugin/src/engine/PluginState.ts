/**
 * The core `State` service on the mount's own storage (reached through the broker): one entry per
 * key under `state/`, holding the record and a version counter. The plugin process is the mount's
 * only writer, so compare-and-set is a read-compare-write under an in-process lock per key.
 * Records hold token ids and metadata only, never a token value.
 */
import { StateConflict, StateError } from "@gldt/core/Errors"
import { State, StateRecord } from "@gldt/core/State"
import { Effect, Layer, Option, Schema, Semaphore } from "effect"
import type { Storage } from "../vault/Logical.ts"

export const STATE_PREFIX = "state/"

const Stored = Schema.Struct({ version: Schema.String, record: StateRecord })
const decodeStored = Schema.decodeUnknownEffect(Stored)

const locks = () => {
  const map = new Map<string, Semaphore.Semaphore>()
  return (key: string) => {
    let s = map.get(key)
    if (s === undefined) {
      s = Semaphore.makeUnsafe(1)
      map.set(key, s)
    }
    return s
  }
}

export const makePluginState = (storage: Storage): State["Service"] => {
  // Two lock sets: `withLock` is held for a whole lifecycle run, `cas` only around one save.
  const runLock = locks()
  const casLock = locks()
  const io = <A>(key: string, what: string, f: () => Promise<A>) =>
    Effect.tryPromise({ try: f, catch: (e) => new StateError({ key, message: `${what}: ${e instanceof Error ? e.message : String(e)}` }) })

  const read = (key: string) =>
    Effect.gen(function* () {
      const entry = yield* io(key, "storage get", () => storage.get(STATE_PREFIX + key))
      if (entry === undefined) return Option.none<{ version: string; record: StateRecord }>()
      const parsed = yield* Effect.try({
        try: () => JSON.parse(entry.value.toString("utf8")) as unknown,
        catch: () => new StateError({ key, message: "stored record is not JSON; refusing to replace it" }),
      })
      const stored = yield* decodeStored(parsed).pipe(
        Effect.mapError((e) => new StateError({ key, message: `stored record does not decode (${e.message}); refusing to replace it` })),
      )
      return Option.some(stored)
    })

  return State.of({
    load: (key) => read(key).pipe(Effect.map(Option.map((s) => ({ record: s.record, version: s.version })))),
    save: (key, record, expected) =>
      casLock(key).withPermits(1)(
        Effect.gen(function* () {
          const now = yield* read(key)
          const current = Option.isSome(now) ? now.value.version : null
          if (current !== expected) return yield* new StateConflict({ key })
          const version = String(Number(current ?? "0") + 1)
          yield* io(key, "storage put", () => storage.put(STATE_PREFIX + key, Buffer.from(JSON.stringify({ version, record }))))
          return version
        }),
      ),
    remove: (key, expected) =>
      casLock(key).withPermits(1)(
        Effect.gen(function* () {
          const now = yield* read(key)
          if (Option.isNone(now) || now.value.version !== expected) return yield* new StateConflict({ key })
          yield* io(key, "storage delete", () => storage.delete(STATE_PREFIX + key))
        }),
      ),
    list: () => io("*", "storage list", () => storage.list(STATE_PREFIX)).pipe(Effect.map((keys) => keys.filter((k) => !k.endsWith("/")).sort())),
    withLock: (key, effect) => runLock(key).withPermits(1)(effect),
  })
}

export const pluginStateLayer = (storage: Storage): Layer.Layer<State> => Layer.succeed(State, makePluginState(storage))
