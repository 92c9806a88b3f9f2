/**
 * The State service: one versioned record per consumer key, written with compare-and-set.
 * It tracks token ids and metadata, never a token value (I6), and every token gldt may have
 * created, from the intent written before the create call until GitLab confirms deletion (I1, I5).
 */
import { Context, Effect, Layer, Option, Schema, Semaphore } from "effect"
import { StateConflict, type StateBusy, type StateError } from "./Errors.ts"

const TargetSchema = Schema.Struct({ kind: Schema.Literals(["project", "group"]), id: Schema.String })

const SecretRefSchema = Schema.Struct({ name: Schema.String, key: Schema.String, namespace: Schema.optional(Schema.String) })

/**
 * Where a token lives, and which Secret held the access token that made it; persisted so a later
 * spec change or a deleted generator cannot orphan it (revoke uses this).
 */
export const Location = Schema.Struct({ url: Schema.String, target: TargetSchema, auth: Schema.optional(SecretRefSchema) })
export type Location = typeof Location.Type

/** A token gldt made and still tracks. */
export const TokenRecord = Schema.Struct({
  id: Schema.Number,
  location: Location,
  name: Schema.String,
  username: Schema.String,
  scopes: Schema.Array(Schema.String),
  expiresAt: Schema.NullOr(Schema.String),
  /** Fingerprint of the spec it was minted from. */
  specHash: Schema.String,
  /** The rotation decision (generation) that minted it. */
  generation: Schema.Number,
  createdAt: Schema.Number,
  /** When the sink confirmed it holds this token. */
  deliveredAt: Schema.optional(Schema.Number),
  /** For retiring tokens: not to be revoked before this instant (I2). */
  revokeAfter: Schema.optional(Schema.Number),
  /** Last failed revocation, for status; never contains a secret. */
  lastError: Schema.optional(Schema.String),
  revokeAttempts: Schema.optional(Schema.Number),
  /** After a failed revocation: not to be retried before this instant (exponential back-off). */
  retryAt: Schema.optional(Schema.Number),
})
export type TokenRecord = typeof TokenRecord.Type

/** Written before the create call: what will be sent, and the highest id seen at the target. */
export const Intent = Schema.Struct({
  generation: Schema.Number,
  location: Location,
  name: Schema.String,
  username: Schema.NullOr(Schema.String),
  scopes: Schema.Array(Schema.String),
  expiresAt: Schema.NullOr(Schema.String),
  specHash: Schema.String,
  watermark: Schema.Number,
  createdAt: Schema.Number,
})
export type Intent = typeof Intent.Type

/** A token that may be ours but cannot be told from someone else's: surfaced, never touched. */
export const Suspect = Schema.Struct({
  id: Schema.Number,
  location: Location,
  name: Schema.String,
  username: Schema.String,
  generation: Schema.Number,
  foundAt: Schema.Number,
})
export type Suspect = typeof Suspect.Type

export const StateRecord = Schema.Struct({
  key: Schema.String,
  /** Count of rotation decisions; one mint at most per generation (I4). */
  generation: Schema.Number,
  current: Schema.optional(TokenRecord),
  /** Minted but not yet confirmed delivered. */
  pending: Schema.optional(TokenRecord),
  retiring: Schema.Array(TokenRecord),
  intent: Schema.optional(Intent),
  suspects: Schema.Array(Suspect),
  /** Highest token id this key has seen per target location (`url|kind|id`). */
  watermarks: Schema.Record(Schema.String, Schema.Number),
  /** Last time the spec was reconciled, and the last error (no secrets). */
  lastReconciledAt: Schema.optional(Schema.Number),
  lastError: Schema.optional(Schema.String),
  /**
   * Numeric ids of targets the spec names by path (`url|kind|path` → id), resolved before the
   * first mint, so a renamed or moved project keeps its tokens revocable.
   */
  targets: Schema.optional(Schema.Record(Schema.String, Schema.String)),
  /** When revokeAll first ran for this consumer: suspects are released a bounded wait after it. */
  deletingSince: Schema.optional(Schema.Number),
})
export type StateRecord = typeof StateRecord.Type

export const emptyRecord = (key: string): StateRecord => ({
  key,
  generation: 0,
  retiring: [],
  suspects: [],
  watermarks: {},
})

export interface Versioned {
  readonly record: StateRecord
  readonly version: string
}

export class State extends Context.Service<
  State,
  {
    load(key: string): Effect.Effect<Option.Option<Versioned>, StateError>
    /** Saves if the stored version is `expected` (null: the key must not exist). Returns the new version. */
    save(key: string, record: StateRecord, expected: string | null): Effect.Effect<string, StateConflict | StateError>
    remove(key: string, expected: string): Effect.Effect<void, StateConflict | StateError>
    list(): Effect.Effect<ReadonlyArray<string>, StateError>
    /**
     * Optional: every record at once from a view that may lag a moment behind (an informer cache),
     * at no cost per key. Used only where a lagging view is harmless: drawing a fingerprint no
     * other key uses, which compare-and-set and the random draw already make safe. Without it,
     * core lists and loads each key.
     */
    readonly snapshot?: (() => Effect.Effect<ReadonlyArray<StateRecord>, StateError>) | undefined
    /**
     * Runs `effect` holding the key's exclusive lock, so an intent found under the lock is known to
     * be abandoned. Backends without a process lock rely on compare-and-set alone.
     */
    withLock<A, E, R>(key: string, effect: Effect.Effect<A, E, R>): Effect.Effect<A, E | StateBusy | StateError, R>
  }
>()("@gldt/core/State") {}

/** In-memory backend for tests and single-process embedding. */
export const layerMemory: Layer.Layer<State> = Layer.effect(
  State,
  Effect.gen(function* () {
    const store = new Map<string, Versioned>()
    const locks = new Map<string, Semaphore.Semaphore>()
    let counter = 0
    const lockFor = (key: string) => {
      let lock = locks.get(key)
      if (lock === undefined) {
        lock = Semaphore.makeUnsafe(1)
        locks.set(key, lock)
      }
      return lock
    }
    return State.of({
      load: (key) => Effect.sync(() => Option.fromNullishOr(store.get(key))),
      save: (key, record, expected) =>
        Effect.suspend(() => {
          const now = store.get(key)
          if ((now?.version ?? null) !== expected) return Effect.fail(new StateConflict({ key }))
          const version = String(++counter)
          // Copy through JSON, as a real backend would, so callers cannot alias stored state.
          store.set(key, { record: JSON.parse(JSON.stringify(record)), version })
          return Effect.succeed(version)
        }),
      remove: (key, expected) =>
        Effect.suspend(() => {
          if (store.get(key)?.version !== expected) return Effect.fail(new StateConflict({ key }))
          store.delete(key)
          return Effect.void
        }),
      list: () => Effect.sync(() => [...store.keys()].sort()),
      withLock: (key, effect) => lockFor(key).withPermits(1)(effect),
    })
  }),
)
