/**
 * What every State backend promises, checked by each backend's own tests against its real store
 * (Kubernetes, Vault): record fixtures with tokens, and compare-and-set — a key is created once, a
 * stale version loses, and of two writers racing on one key exactly one wins each round.
 * Imported by path (`../../core/test/support/StateContract.ts`): test support is not in the package.
 */
import { Effect, type Layer, Option, type Result } from "effect"
import { expect } from "vitest"
import type { StateConflict, StateError } from "../../src/Errors.ts"
import { emptyRecord, State, type StateRecord, type TokenRecord } from "../../src/State.ts"

/** `f` applied to the State service. */
export const st = <A, E>(f: (s: State["Service"]) => Effect.Effect<A, E>) =>
  Effect.gen(function* () {
    return yield* f(yield* State)
  })

/** A tracked token of project `group/project` at gitlab.example.com. */
export const token = (id: number, extra: Partial<TokenRecord> = {}): TokenRecord => ({
  id,
  location: { url: "https://gitlab.example.com", target: { kind: "project", id: "group/project" } },
  name: "eso-managed",
  username: "eso",
  scopes: ["read_registry"],
  expiresAt: null,
  specHash: "abc",
  generation: 1,
  createdAt: 1_764_000_000_000,
  ...extra,
})

/** A record with a delivered current token `id` and its predecessor retiring. */
export const withToken = (key: string, id = 1001): StateRecord => ({
  ...emptyRecord(key),
  generation: 1,
  current: token(id, { deliveredAt: 1_764_000_001_000 }),
  retiring: [token(id - 1, { revokeAfter: 1_764_000_900_000 })],
  watermarks: { "https://gitlab.example.com|project|group/project": id },
})

/** A State layer of the backend under test, over the store the test set up. */
export type StateLayer = Layer.Layer<State, unknown>

const run = <A, E>(layer: StateLayer, program: Effect.Effect<A, E, State>): Promise<A> =>
  Effect.runPromise(Effect.provide(program, layer) as Effect.Effect<A, unknown>)
const tagOf = async <A, E>(layer: StateLayer, program: Effect.Effect<A, E, State>): Promise<string | undefined> =>
  ((await run(layer, Effect.flip(program))) as { readonly _tag?: string })._tag

/**
 * Compare-and-set: creating `key` twice and saving with a stale version are StateConflict, as is a
 * version for a key that does not exist (`missingKey`); saving with the current version wins with a
 * new version, and load returns that record and version.
 */
export const expectCompareAndSet = async (layer: StateLayer, key: string, missingKey: string) => {
  const v1 = await run(
    layer,
    st((s) => s.save(key, emptyRecord(key), null)),
  )
  expect(
    await tagOf(
      layer,
      st((s) => s.save(key, emptyRecord(key), null)),
    ),
  ).toBe("StateConflict")
  const v2 = await run(
    layer,
    st((s) => s.save(key, { ...emptyRecord(key), generation: 1 }, v1)),
  )
  expect(v2).not.toBe(v1)
  expect(
    await tagOf(
      layer,
      st((s) => s.save(key, { ...emptyRecord(key), generation: 2 }, v1)),
    ),
  ).toBe("StateConflict")
  expect(
    await tagOf(
      layer,
      st((s) => s.save(missingKey, emptyRecord(missingKey), "1")),
    ),
  ).toBe("StateConflict")
  expect(
    Option.getOrThrow(
      await run(
        layer,
        st((s) => s.load(key)),
      ),
    ),
  ).toEqual({ record: { ...emptyRecord(key), generation: 1 }, version: v2 })
}

/**
 * Two writers (`a` and `b`, separate clients) save `key` at once for `rounds` rounds, both with the
 * version of the last winner: exactly one wins each round, the other gets StateConflict, and the
 * stored record and version are the winner's.
 */
export const expectOneWinnerPerRace = async (a: StateLayer, b: StateLayer, key: string, rounds: number) => {
  const attempt = (layer: StateLayer, expected: string | null, writer: string, round: number) =>
    st((s) => s.save(key, { ...emptyRecord(key), generation: round, lastError: writer }, expected)).pipe(Effect.result, Effect.provide(layer))
  type Outcome = Result.Result<string, StateConflict | StateError>
  let expected: string | null = null
  for (let round = 0; round < rounds; round++) {
    const outcomes: ReadonlyArray<Outcome> = await Effect.runPromise(
      Effect.all([attempt(a, expected, "A", round), attempt(b, expected, "B", round)], { concurrency: 2 }) as Effect.Effect<ReadonlyArray<Outcome>, unknown>,
    )
    const won: ReadonlyArray<string> = outcomes.flatMap((o) => (o._tag === "Success" ? [o.success] : []))
    const lost: ReadonlyArray<string> = outcomes.flatMap((o) => (o._tag === "Failure" ? [o.failure._tag] : []))
    expect(won.length, `round ${round}`).toBe(1)
    expect(lost, `round ${round}`).toEqual(["StateConflict"])
    const loaded = Option.getOrThrow(
      await run(
        a,
        st((s) => s.load(key)),
      ),
    )
    expect(loaded.record.generation).toBe(round)
    expect(loaded.record.lastError).toBe(outcomes[0]!._tag === "Success" ? "A" : "B")
    expect(loaded.version).toBe(won[0])
    expected = won[0]!
  }
}
