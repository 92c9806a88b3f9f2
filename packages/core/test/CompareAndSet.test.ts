/** The backends' side of compare-and-set: what a save may write, and a State without a lock. */
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Fiber, Option } from "effect"
import { checkRecordToSave, withoutLock } from "../src/CompareAndSet.ts"
import { emptyRecord, layerMemory, State } from "../src/State.ts"

describe("checkRecordToSave", () => {
  it.effect("passes a record of the key through, as load decodes it", () =>
    Effect.gen(function* () {
      const record = { ...emptyRecord("ns/es"), generation: 3, watermarks: { "https://gitlab.example.com|project|42": 17 } }
      assert.deepStrictEqual(yield* checkRecordToSave("ns/es", record), record)
    }),
  )

  it.effect("refuses another key's record, naming both keys", () =>
    Effect.gen(function* () {
      const e = yield* Effect.flip(checkRecordToSave("ns/es", emptyRecord("ns/other")))
      assert.strictEqual(e._tag, "StateError")
      assert.strictEqual(e.message, 'refusing to save the record of key "ns/other" under "ns/es"')
    }),
  )

  it.effect("refuses a record that would not load back (NaN becomes null in JSON)", () =>
    Effect.gen(function* () {
      const e = yield* Effect.flip(checkRecordToSave("k", { ...emptyRecord("k"), generation: Number.NaN }))
      assert.strictEqual(e._tag, "StateError")
      assert.include(e.message, "refusing to save a record that would not load back")
      assert.include(e.message, "generation")
    }),
  )
})

describe("withoutLock", () => {
  it.live("withLock takes no lock: a second holder of the same key enters while the first is inside", () =>
    Effect.gen(function* () {
      const state = withoutLock(yield* State)
      const inside = yield* Deferred.make<void>()
      const leave = yield* Deferred.make<void>()
      const first = yield* Effect.forkChild(state.withLock("k", Deferred.succeed(inside, undefined).pipe(Effect.andThen(Deferred.await(leave)))))
      yield* Deferred.await(inside)
      assert.strictEqual(yield* state.withLock("k", Effect.succeed("entered")), "entered")
      yield* Deferred.succeed(leave, undefined)
      yield* Fiber.join(first)
      // The other methods are the backend's own.
      const v = yield* state.save("k", emptyRecord("k"), null)
      assert.strictEqual(Option.getOrThrow(yield* state.load("k")).version, v)
    }).pipe(Effect.provide(layerMemory)),
  )
})
