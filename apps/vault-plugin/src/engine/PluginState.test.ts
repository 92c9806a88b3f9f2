/** Core's State on the mount's storage: compare-and-set, and records that do not decode are never replaced. */
import { emptyRecord } from "@gldt/core/State"
import { Effect, Option } from "effect"
import { describe, expect, it } from "vitest"
import type { Storage } from "../vault/Logical.ts"
import { makePluginState } from "./PluginState.ts"

const storage = (): Storage & { map: Map<string, Buffer> } => {
  const map = new Map<string, Buffer>()
  return {
    map,
    list: async (p) => [...map.keys()].filter((k) => k.startsWith(p)).map((k) => k.slice(p.length)),
    get: async (key) => (map.has(key) ? { key, value: map.get(key)! } : undefined),
    put: async (key, value) => void map.set(key, value),
    delete: async (key) => void map.delete(key),
  }
}

const run = <A, E>(e: Effect.Effect<A, E, never>) => Effect.runPromise(Effect.result(e))

describe("PluginState", () => {
  it("saves with compare-and-set and refuses a stale version", async () => {
    const s = storage()
    const state = makePluginState(s)
    const v1 = await run(state.save("k", emptyRecord("k"), null))
    expect(v1._tag).toBe("Success")
    const again = await run(state.save("k", emptyRecord("k"), null))
    expect(again._tag === "Failure" && again.failure._tag).toBe("StateConflict")
    const v2 = await run(state.save("k", { ...emptyRecord("k"), generation: 1 }, v1._tag === "Success" ? v1.success : ""))
    expect(v2._tag).toBe("Success")
    const loaded = await Effect.runPromise(state.load("k"))
    expect(Option.getOrThrow(loaded).record.generation).toBe(1)
    expect(await Effect.runPromise(state.list())).toEqual(["k"])
    expect([...s.map.keys()]).toEqual(["state/k"])
  })

  it("a record that does not decode is an error, never silently replaced", async () => {
    const s = storage()
    s.map.set("state/bad", Buffer.from(JSON.stringify({ version: "1", record: { key: "bad" } })))
    const state = makePluginState(s)
    const loaded = await run(state.load("bad"))
    expect(loaded._tag === "Failure" && loaded.failure._tag).toBe("StateError")
    const saved = await run(state.save("bad", emptyRecord("bad"), "1"))
    expect(saved._tag === "Failure" && saved.failure._tag).toBe("StateError")
    expect(JSON.parse(s.map.get("state/bad")!.toString()).record).toEqual({ key: "bad" })
  })

  it("withLock runs one holder at a time per key", async () => {
    const state = makePluginState(storage())
    const order: string[] = []
    const hold = (name: string) =>
      state.withLock(
        "k",
        Effect.gen(function* () {
          order.push(`${name}+`)
          yield* Effect.sleep(20)
          order.push(`${name}-`)
        }),
      )
    await Effect.runPromise(Effect.all([hold("a"), hold("b")], { concurrency: 2 }))
    expect(order).toEqual(["a+", "a-", "b+", "b-"])
  })
})
