/**
 * Reading and writing one key's State record with compare-and-set: every change is a pure function
 * of the latest record, replayed against what another writer did when a save loses the race (I4).
 * The backends' side of the contract is here too: what a `save` may write, and a State that needs
 * no lock because compare-and-set guards every write.
 */
import { Effect, Option, Schema } from "effect"
import { StateConflict, StateError } from "./Errors.ts"
import { emptyRecord, State, StateRecord } from "./State.ts"

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

const decodeRecord = Schema.decodeUnknownEffect(StateRecord)

/**
 * For a backend's `save`: `record` checked the way `load` will decode it. Another key's record, or
 * one that would not load back (a NaN, a missing field), is a StateError and nothing is written.
 */
export const checkRecordToSave = (key: string, record: StateRecord): Effect.Effect<StateRecord, StateError> =>
  record.key !== key
    ? Effect.fail(new StateError({ key, message: `refusing to save the record of key ${JSON.stringify(record.key)} under ${JSON.stringify(key)}` }))
    : decodeRecord(JSON.parse(JSON.stringify(record)) as unknown).pipe(
        Effect.mapError((e) => new StateError({ key, message: `refusing to save a record that would not load back: ${e.message}` })),
      )

/**
 * A State whose writes compare-and-set alone guards (Kubernetes, Vault): `withLock` takes no lock.
 * Two writers may then decide at once; one save wins, the other replays its decision (`modify`).
 */
export const withoutLock = (service: Omit<State["Service"], "withLock">): State["Service"] => State.of({ ...service, withLock: (_key, effect) => effect })
