/**
 * Reading and writing one key's State record with compare-and-set: every change is a pure function
 * of the latest record, replayed against what another writer did when a save loses the race (I4).
 */
import { Effect, Option } from "effect"
import { StateConflict } from "./Errors.ts"
import { emptyRecord, State, type StateRecord } from "./State.ts"

/** How many times a change is replayed after losing a compare-and-set before giving up. */
export const CAS_ATTEMPTS = 8

/** Loads the record (or an empty one) with its version (null: the key does not exist yet). */
export const load = (key: string) =>
  Effect.gen(function* () {
    const state = yield* State
    const found = yield* state.load(key)
    return Option.match(found, {
      onNone: () => ({ record: emptyRecord(key), version: null as string | null }),
      onSome: (v) => ({ record: v.record, version: v.version as string | null }),
    })
  })

/**
 * Applies `f` to the latest record with compare-and-set, replaying on conflict. `f` returns
 * undefined to leave the record unchanged (then nothing is written and the result is None).
 */
export const modify = <A>(key: string, f: (r: StateRecord) => { readonly record: StateRecord; readonly result: A } | undefined) =>
  Effect.gen(function* () {
    const state = yield* State
    for (let attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
      const { record, version } = yield* load(key)
      const next = f(record)
      if (next === undefined) return Option.none<A>()
      const saved = yield* Effect.result(state.save(key, next.record, version))
      if (saved._tag === "Success") return Option.some(next.result)
      if (saved.failure._tag !== "StateConflict") return yield* Effect.fail(saved.failure)
    }
    return yield* Effect.fail(new StateConflict({ key }))
  })

/** `modify` for a change that yields no result: `f` returns the new record or undefined. */
export const update = (key: string, f: (r: StateRecord) => StateRecord | undefined) =>
  modify(key, (r) => {
    const next = f(r)
    return next === undefined ? undefined : { record: next, result: undefined }
  })
