/**
 * The Sink service: where consumers read the credential (a Kubernetes Secret, a Vault path, a file).
 * The lifecycle asks `check` before minting, so no token is minted that cannot be delivered.
 */
import { Clock, Context, Effect, Layer, Option, Redacted } from "effect"
import { SinkError } from "./Errors.ts"

export interface Credential {
  readonly username: string
  readonly token: Redacted.Redacted<string>
  /** GitLab's id of the token, recorded beside the value so `inspect` can tell what the sink holds. */
  readonly tokenId: number
  /** Base URL of the GitLab instance (e.g. to default a registry host). */
  readonly gitlabUrl: string
  /** The token's expiry as GitLab reported it (ISO 8601), null for none; recorded beside the value by sinks that keep metadata. */
  readonly expiresAt?: string | null | undefined
}

/** What the sink holds for a key: a token id, nothing, or (for write-only sinks) unknown. */
export type Held = { readonly _tag: "Holds"; readonly tokenId: number } | { readonly _tag: "Empty" } | { readonly _tag: "Unknown" }

export class Sink extends Context.Service<
  Sink,
  {
    /** Fails when a delivery could not succeed (unwritable path, immutable target, policy None…). */
    check(key: string): Effect.Effect<void, SinkError>
    deliver(key: string, credential: Credential): Effect.Effect<void, SinkError>
    inspect(key: string): Effect.Effect<Held, SinkError>
    remove(key: string): Effect.Effect<void, SinkError>
  }
>()("@gldt/core/Sink") {}

export interface Delivery {
  readonly key: string
  readonly tokenId: number
  readonly at: number
}

/** In-memory sink for tests; keeps the delivery history so tests can check I2 against it. */
export class MemorySink extends Context.Service<
  MemorySink,
  {
    readonly history: Array<Delivery>
    readonly values: Map<string, Credential>
    /** Makes `check` and `deliver` fail for a key (an unwritable target). */
    readonly broken: Set<string>
  }
>()("@gldt/core/MemorySink") {}

const memorySink = Layer.effect(
  MemorySink,
  Effect.sync(() => MemorySink.of({ history: [], values: new Map(), broken: new Set() })),
)

/** In-memory backend for tests and single-process embedding; `MemorySink` in context shows what it holds. */
export const layerMemory: Layer.Layer<Sink | MemorySink> = Layer.effect(
  Sink,
  Effect.gen(function* () {
    const mem = yield* MemorySink
    const guard = (key: string) => (mem.broken.has(key) ? Effect.fail(new SinkError({ key, message: "target is not writable (test)" })) : Effect.void)
    return Sink.of({
      check: guard,
      deliver: (key, credential) =>
        Effect.gen(function* () {
          yield* guard(key)
          mem.values.set(key, credential)
          mem.history.push({ key, tokenId: credential.tokenId, at: yield* Clock.currentTimeMillis })
        }),
      inspect: (key) =>
        Effect.sync(() =>
          Option.match(Option.fromNullishOr(mem.values.get(key)), {
            onNone: (): Held => ({ _tag: "Empty" }),
            onSome: (c): Held => ({ _tag: "Holds", tokenId: c.tokenId }),
          }),
        ),
      remove: (key) =>
        Effect.gen(function* () {
          mem.values.delete(key)
          mem.history.push({ key, tokenId: 0, at: yield* Clock.currentTimeMillis })
        }),
    })
  }),
).pipe(Layer.provideMerge(memorySink))

/** Reveals the secret only where a sink must write it. */
export const revealToken = (c: Credential): string => Redacted.value(c.token)
