import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { emptyRecord, type State, type StateRecord } from "@gldt/core/State"
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Fiber, Option } from "effect"
import { expectCompareAndSet, expectOneWinnerPerRace } from "../../core/test/support/StateContract.ts"
import * as FileState from "../src/FileState.ts"
import { fileStem, keyOfStem } from "../src/internal/stem.ts"
import { modeOf, tempDir } from "./helpers.ts"

const KEY = "default/gitlab-deploy-token"

const withState = <A, E>(f: (dir: string, state: typeof State.Service) => Effect.Effect<A, E>, options: { lockTimeoutMs?: number } = {}) =>
  Effect.scoped(
    Effect.gen(function* () {
      const dir = path.join(yield* tempDir, "state")
      const state = yield* FileState.make({ dir, lockPollMs: 10, ...options })
      return yield* f(dir, state)
    }),
  )

const record = (key: string, generation = 0): StateRecord => ({ ...emptyRecord(key), generation })

describe("FileState", () => {
  it.effect("creates the directory 0700 and writes {version, record} documents 0600", () =>
    withState((dir, state) =>
      Effect.gen(function* () {
        assert.isFalse(fs.existsSync(dir))
        const v1 = yield* state.save(KEY, record(KEY, 1), null)
        assert.strictEqual(modeOf(dir), 0o700)
        const file = path.join(dir, "default%2Fgitlab-deploy-token.json")
        assert.strictEqual(modeOf(file), 0o600)
        const doc = JSON.parse(fs.readFileSync(file, "utf8"))
        assert.strictEqual(String(doc.version), v1)
        assert.isTrue(Number.isSafeInteger(doc.version))
        assert.deepStrictEqual(doc.record, record(KEY, 1))
        const v2 = yield* state.save(KEY, record(KEY, 2), v1)
        assert.strictEqual(Number(v2), Number(v1) + 1)
        const loaded = Option.getOrThrow(yield* state.load(KEY))
        assert.strictEqual(loaded.version, v2)
        assert.deepStrictEqual(loaded.record, record(KEY, 2))
        assert.isTrue(Option.isNone(yield* state.load("other")))
        // Only the document is left: no temp or lock files.
        assert.deepStrictEqual(fs.readdirSync(dir), ["default%2Fgitlab-deploy-token.json"])
      }),
    ),
  )

  it.live("compare-and-set: two saves with the same expected version, one StateConflict", () =>
    withState((_dir, state) =>
      Effect.gen(function* () {
        const v1 = yield* state.save(KEY, record(KEY, 1), null)
        const results = yield* Effect.all([Effect.result(state.save(KEY, record(KEY, 2), v1)), Effect.result(state.save(KEY, record(KEY, 3), v1))], {
          concurrency: "unbounded",
        })
        const failures = results.filter((r) => r._tag === "Failure")
        assert.strictEqual(failures.length, 1)
        assert.strictEqual(failures[0]!._tag === "Failure" ? failures[0]!.failure._tag : "", "StateConflict")
        // null means "must not exist"
        const again = yield* Effect.result(state.save(KEY, record(KEY, 4), null))
        assert.isTrue(again._tag === "Failure" && again.failure._tag === "StateConflict")
        // a stale version conflicts too
        const stale = yield* Effect.result(state.save(KEY, record(KEY, 4), v1))
        assert.isTrue(stale._tag === "Failure" && stale.failure._tag === "StateConflict")
      }),
    ),
  )

  it.live("many concurrent compare-and-set writers in one process lose no update", () =>
    withState((_dir, state) =>
      Effect.gen(function* () {
        const increment = Effect.gen(function* () {
          for (;;) {
            const found = yield* state.load(KEY)
            const r = Option.match(found, { onNone: () => emptyRecord(KEY), onSome: (v) => v.record })
            const v = Option.match(found, { onNone: () => null, onSome: (x) => x.version })
            const saved = yield* Effect.result(state.save(KEY, { ...r, generation: r.generation + 1 }, v))
            if (saved._tag === "Success") return
            if (saved.failure._tag !== "StateConflict") return yield* Effect.fail(saved.failure)
          }
        })
        yield* Effect.all(
          Array.from({ length: 20 }, () => increment),
          { concurrency: "unbounded" },
        )
        assert.strictEqual(Option.getOrThrow(yield* state.load(KEY)).record.generation, 20)
      }),
    ),
  )

  it("keeps the compare-and-set contract every State backend keeps: a key is created once, a stale version loses", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "gldt-adapter-file-"))
    try {
      await expectCompareAndSet(FileState.layer({ dir, lockPollMs: 10 }), KEY, "missing")
    } finally {
      fs.rmSync(dir, { recursive: true, force: true })
    }
  })

  it("two writers, each with its own FileState on one directory (as two processes): exactly one wins each round", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "gldt-adapter-file-"))
    try {
      await expectOneWinnerPerRace(FileState.layer({ dir, lockPollMs: 10 }), FileState.layer({ dir, lockPollMs: 10 }), KEY, 8)
    } finally {
      fs.rmSync(dir, { recursive: true, force: true })
    }
  })

  it.effect("remove is compare-and-set, and list returns keys", () =>
    withState((dir, state) =>
      Effect.gen(function* () {
        assert.deepStrictEqual(yield* state.list(), [])
        const long = `ns/${"x".repeat(300)}`
        const odd = "Team A/ü.token"
        const va = yield* state.save(KEY, record(KEY), null)
        yield* state.save("gitlab-deploy-token", record("gitlab-deploy-token"), null)
        yield* state.save(long, record(long), null)
        yield* state.save(odd, record(odd), null)
        yield* state.save("", record(""), null)
        assert.deepStrictEqual(yield* state.list(), ["", KEY, odd, "gitlab-deploy-token", long].sort())
        yield* state.remove("", Option.getOrThrow(yield* state.load("")).version)
        assert.isTrue(fs.readdirSync(dir).every((n) => Buffer.byteLength(n) <= 255))
        const wrong = yield* Effect.result(state.remove(KEY, `${Number(va) + 1}`))
        assert.isTrue(wrong._tag === "Failure" && wrong.failure._tag === "StateConflict")
        const missing = yield* Effect.result(state.remove("absent", "1"))
        assert.isTrue(missing._tag === "Failure" && missing.failure._tag === "StateConflict")
        yield* state.remove(KEY, va)
        assert.isTrue(Option.isNone(yield* state.load(KEY)))
        assert.deepStrictEqual(yield* state.list(), [odd, "gitlab-deploy-token", long].sort())
        // Re-created after removal: the new version is not one an old reader may hold.
        const vb = yield* state.save(KEY, record(KEY), null)
        assert.notStrictEqual(vb, va)
      }),
    ),
  )

  it("file names are reversible, free of '.', '/' and case collisions", () => {
    for (const key of ["gitlab-deploy-token", KEY, "A", "a", "%41", "..", "x.lock", "ü/ß", "with space"]) {
      const stem = fileStem(key)
      assert.notInclude(stem, ".")
      assert.notInclude(stem, "/")
      assert.strictEqual(keyOfStem(stem), key)
    }
    assert.strictEqual(fileStem(KEY), "default%2Fgitlab-deploy-token")
    assert.notStrictEqual(fileStem("A").toLowerCase(), fileStem("a").toLowerCase())
    const long = fileStem("k".repeat(500))
    assert.isBelow(long.length, 220)
    assert.isUndefined(keyOfStem(long))
    assert.notStrictEqual(long, fileStem(`${"k".repeat(499)}j`))
  })

  it.effect("a corrupt state file is a StateError naming the file, and is never overwritten", () =>
    withState((dir, state) =>
      Effect.gen(function* () {
        yield* state.save(KEY, record(KEY), null)
        const file = path.join(dir, "default%2Fgitlab-deploy-token.json")
        fs.writeFileSync(file, '{"version": 3, "record": {"key": "default/gitl')
        const before = fs.readFileSync(file)
        const loaded = yield* Effect.flip(state.load(KEY))
        assert.strictEqual(loaded._tag, "StateError")
        assert.include(loaded.message, file)
        assert.include(loaded.message, "is not valid JSON")
        assert.include(loaded.message, "fix or move it away")
        for (const expected of [null, "3"]) {
          const saved = yield* Effect.flip(state.save(KEY, record(KEY, 9), expected))
          assert.strictEqual(saved._tag, "StateError")
        }
        const removed = yield* Effect.flip(state.remove(KEY, "3"))
        assert.strictEqual(removed._tag, "StateError")
        assert.deepStrictEqual(fs.readFileSync(file), before)
        // Valid JSON that is not a state document, or the document of another key.
        fs.writeFileSync(file, JSON.stringify({ version: "three", record: {} }))
        const shape = yield* Effect.flip(state.load(KEY))
        assert.include(shape.message, "is not a gldt state document")
        fs.writeFileSync(file, JSON.stringify({ version: 3, record: record("someone-else") }))
        const other = yield* Effect.flip(state.load(KEY))
        assert.include(other.message, '"someone-else"')
        assert.deepStrictEqual(fs.readdirSync(dir), ["default%2Fgitlab-deploy-token.json"])
      }),
    ),
  )

  it.effect("refuses to save a record under another key, or one that would not load back", () =>
    withState((dir, state) =>
      Effect.gen(function* () {
        const e1 = yield* Effect.flip(state.save(KEY, record("other"), null))
        assert.strictEqual(e1._tag, "StateError")
        const e2 = yield* Effect.flip(state.save(KEY, { ...record(KEY), generation: Number.NaN }, null))
        assert.strictEqual(e2._tag, "StateError")
        assert.isFalse(fs.existsSync(dir) && fs.readdirSync(dir).some((n) => n.endsWith(".json")))
      }),
    ),
  )

  it.effect("an unreadable state directory entry is a StateError, not 'no state'", () =>
    withState((dir, state) =>
      Effect.gen(function* () {
        fs.mkdirSync(path.join(dir, "default%2Fgitlab-deploy-token.json"), { recursive: true })
        const e = yield* Effect.flip(state.load(KEY))
        assert.strictEqual(e._tag, "StateError")
        assert.include(e.message, "default%2Fgitlab-deploy-token.json")
      }),
    ),
  )

  it.live("withLock is exclusive within a process; save inside withLock does not deadlock", () =>
    withState((dir, state) =>
      Effect.gen(function* () {
        const entered = yield* Deferred.make<void>()
        const leave = yield* Deferred.make<void>()
        const order: string[] = []
        const first = yield* Effect.forkChild(
          state.withLock(
            KEY,
            Effect.gen(function* () {
              order.push("first in")
              // Lifecycle saves while holding the lock for the same key.
              yield* state.save(KEY, record(KEY, 1), null)
              yield* Deferred.succeed(entered, undefined)
              yield* Deferred.await(leave)
              order.push("first out")
            }),
          ),
        )
        yield* Deferred.await(entered)
        assert.isTrue(fs.existsSync(path.join(dir, "default%2Fgitlab-deploy-token.lock")))
        const second = yield* Effect.forkChild(
          state.withLock(
            KEY,
            Effect.sync(() => order.push("second in")),
          ),
        )
        yield* Effect.sleep(100)
        assert.deepStrictEqual(order, ["first in"])
        yield* Deferred.succeed(leave, undefined)
        yield* Fiber.join(first)
        yield* Fiber.join(second)
        assert.deepStrictEqual(order, ["first in", "first out", "second in"])
        assert.deepStrictEqual(fs.readdirSync(dir), ["default%2Fgitlab-deploy-token.json"])
      }),
    ),
  )

  it.live("withLock times out with StateBusy naming the holder", () =>
    withState(
      (_dir, state) =>
        Effect.gen(function* () {
          const entered = yield* Deferred.make<void>()
          const holder = yield* Effect.forkChild(state.withLock(KEY, Deferred.succeed(entered, undefined).pipe(Effect.andThen(Effect.never))))
          yield* Deferred.await(entered)
          const started = Date.now()
          const busy = yield* Effect.flip(state.withLock(KEY, Effect.void))
          assert.strictEqual(busy._tag, "StateBusy")
          assert.isAtLeast(Date.now() - started, 150)
          if (busy._tag === "StateBusy") {
            assert.include(busy.holder, `pid ${process.pid}`)
            assert.include(busy.message, KEY)
          }
          // Other keys are independent.
          yield* state.withLock("another", Effect.void)
          yield* Fiber.interrupt(holder)
          // Released on interruption.
          yield* state.withLock(KEY, Effect.void)
        }),
      { lockTimeoutMs: 200 },
    ),
  )

  it.live("the lock is released when the effect fails or is interrupted while waiting", () =>
    withState(
      (dir, state) =>
        Effect.gen(function* () {
          const failed = yield* Effect.flip(state.withLock(KEY, Effect.fail("boom" as const)))
          assert.strictEqual(failed, "boom")
          const entered = yield* Deferred.make<void>()
          const holder = yield* Effect.forkChild(state.withLock(KEY, Deferred.succeed(entered, undefined).pipe(Effect.andThen(Effect.never))))
          yield* Deferred.await(entered)
          const waiter = yield* Effect.forkChild(state.withLock(KEY, Effect.void))
          yield* Effect.sleep(50)
          yield* Fiber.interrupt(waiter)
          yield* Fiber.interrupt(holder)
          assert.deepStrictEqual(
            fs.readdirSync(dir).filter((n) => !n.endsWith(".json")),
            [],
          )
        }),
      { lockTimeoutMs: 5_000 },
    ),
  )
})
