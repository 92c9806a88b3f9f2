/** The work queue's contract: dedup, one worker per key, re-queue after done, delays, back-off. */
import { Effect } from "effect"
import { describe, expect, it } from "vitest"
import { backoffDelay, WorkQueue } from "../src/WorkQueue.ts"

describe("WorkQueue", () => {
  it("queues a key once however often it is added", async () => {
    const q = new WorkQueue()
    q.add("a")
    q.add("a")
    q.add("b")
    expect(q.depth).toBe(2)
    expect(await q.get()).toBe("a")
    expect(await q.get()).toBe("b")
    expect(q.depth).toBe(0)
  })

  it("never hands a key to two workers: an add while processing re-queues it after done", async () => {
    const q = new WorkQueue()
    q.add("a")
    const k = await q.get()
    q.add("a")
    expect(q.depth).toBe(0)
    let second: string | undefined
    void q.get().then((x) => {
      second = x
    })
    await new Promise((r) => setTimeout(r, 5))
    expect(second).toBeUndefined()
    q.done(k!)
    await new Promise((r) => setTimeout(r, 5))
    expect(second).toBe("a")
  })

  it("hands out first-lane keys (never-synced consumers) before the refreshes queued earlier", async () => {
    const q = new WorkQueue()
    for (let i = 0; i < 1000; i++) q.add(`refresh-${i}`)
    q.add("new-es", { first: true })
    expect(q.depth).toBe(1001)
    expect(await q.get()).toBe("new-es")
    expect(await q.get()).toBe("refresh-0")
  })

  it("a first-lane add moves a key already waiting up, once, without queueing it twice", async () => {
    const q = new WorkQueue()
    q.add("a")
    q.add("b")
    q.add("b", { first: true })
    q.add("b", { first: true })
    expect(q.depth).toBe(2)
    expect(await q.get()).toBe("b")
    expect(await q.get()).toBe("a")
    expect(q.depth).toBe(0)
  })

  it("a first-only worker takes first-lane keys and waits through refreshes; a waiting one gets the next new key", async () => {
    const q = new WorkQueue()
    q.add("refresh")
    let got: string | undefined
    const fiber = Effect.runFork(q.take({ firstOnly: true }))
    fiber.addObserver((exit) => {
      if (exit._tag === "Success") got = exit.value
    })
    await new Promise((r) => setTimeout(r, 5))
    expect(got).toBeUndefined()
    q.add("new-es", { first: true })
    await new Promise((r) => setTimeout(r, 5))
    expect(got).toBe("new-es")
    expect(await q.get()).toBe("refresh")
  })

  it("maxRefreshing: refreshes beyond the limit wait, the free workers take new keys, and a finished refresh lets the next one go", async () => {
    const q = new WorkQueue({ baseMs: 1_000, maxMs: 5_000, maxRefreshing: 2 })
    for (const k of ["r1", "r2", "r3"]) q.add(k)
    expect(await q.get()).toBe("r1")
    expect(await q.get()).toBe("r2")
    let third: string | undefined
    void q.get().then((k) => {
      third = k
    })
    await new Promise((r) => setTimeout(r, 5))
    expect(third).toBeUndefined()
    q.add("new-es", { first: true })
    await new Promise((r) => setTimeout(r, 5))
    expect(third).toBe("new-es")
    let fourth: string | undefined
    void q.get().then((k) => {
      fourth = k
    })
    await new Promise((r) => setTimeout(r, 5))
    expect(fourth).toBeUndefined()
    q.done("r1")
    await new Promise((r) => setTimeout(r, 5))
    expect(fourth).toBe("r3")
  })

  it("shutdown releases first-only workers too", async () => {
    const q = new WorkQueue()
    const waiting = Effect.runPromise(q.take({ firstOnly: true }))
    q.shutDown()
    expect(await waiting).toBeUndefined()
  })

  it("keeps the earliest delay of a key", async () => {
    const q = new WorkQueue()
    q.addAfter("a", 10_000)
    q.addAfter("a", 20)
    q.addAfter("a", 30_000)
    expect(q.delayed).toBe(1)
    expect(await q.get()).toBe("a")
    q.shutDown()
  })

  it("backs a failing key off exponentially up to the cap; forget starts over", () => {
    const fixed = () => 0.5
    expect(backoffDelay(1, { baseMs: 1000, maxMs: 60_000 }, fixed)).toBe(1000)
    expect(backoffDelay(3, { baseMs: 1000, maxMs: 60_000 }, fixed)).toBe(4000)
    expect(backoffDelay(30, { baseMs: 1000, maxMs: 60_000 }, fixed)).toBe(60_000)
    const q = new WorkQueue({ baseMs: 1000, maxMs: 8000 })
    q.addRateLimited("a")
    q.addRateLimited("a")
    expect(q.failuresOf("a")).toBe(2)
    q.forget("a")
    expect(q.failuresOf("a")).toBe(0)
    q.shutDown()
  })

  it("wakes waiting workers with undefined on shutdown", async () => {
    const q = new WorkQueue()
    const waiting = q.get()
    q.shutDown()
    expect(await waiting).toBeUndefined()
    q.add("a")
    expect(q.depth).toBe(0)
  })
})
