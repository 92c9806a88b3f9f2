/** The state lock across real processes: `node` children run test/fixtures/worker.ts. */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Option } from "effect"
import * as FileState from "../src/FileState.ts"
import { release, tryAcquire } from "../src/internal/lock.ts"
import { runWorker, startWorker, tempDir } from "./helpers.ts"

const KEY = "default/gitlab-deploy-token"
const LOCK = "default%2Fgitlab-deploy-token.lock"

const setup = (lockTimeoutMs: number) =>
  Effect.gen(function* () {
    const dir = yield* tempDir
    const state = yield* FileState.make({ dir, lockTimeoutMs, lockPollMs: 10 })
    return { dir, state }
  })

const killOnExit = (w: ReturnType<typeof startWorker>) => Effect.addFinalizer(() => Effect.sync(() => w.child.kill("SIGKILL")))

const fakeLock = (dir: string, info: Record<string, unknown>) =>
  fs.writeFileSync(path.join(dir, LOCK), JSON.stringify({ hostname: os.hostname(), startedAt: new Date(0).toISOString(), nonce: "ab".repeat(16), ...info }))

describe("FileState lock across processes", () => {
  it.live(
    "a second process waits, then fails with StateBusy naming the holder",
    () =>
      Effect.scoped(
        Effect.gen(function* () {
          const { dir, state } = yield* setup(300)
          const holder = startWorker(["hold", dir, KEY, "60000"])
          yield* killOnExit(holder)
          yield* Effect.promise(() => holder.line("locked"))
          const started = Date.now()
          const busy = yield* Effect.flip(state.withLock(KEY, Effect.void))
          assert.isAtLeast(Date.now() - started, 250)
          assert.strictEqual(busy._tag, "StateBusy")
          if (busy._tag === "StateBusy") {
            assert.include(busy.holder, `pid ${holder.child.pid} on ${os.hostname()}`)
            assert.include(busy.holder, path.join(dir, LOCK))
          }
        }),
      ),
    20_000,
  )

  it.live(
    "a waiting process gets the lock as soon as the holder releases it",
    () =>
      Effect.scoped(
        Effect.gen(function* () {
          const { dir, state } = yield* setup(15_000)
          const holder = startWorker(["hold", dir, KEY, "500"])
          yield* killOnExit(holder)
          yield* Effect.promise(() => holder.line("locked"))
          const started = Date.now()
          yield* state.withLock(KEY, Effect.void)
          assert.isAtLeast(Date.now() - started, 200)
          assert.strictEqual(yield* Effect.promise(() => holder.exited), 0)
        }),
      ),
    20_000,
  )

  it.live(
    "the lock of a SIGKILLed holder is stale and taken over at once",
    () =>
      Effect.scoped(
        Effect.gen(function* () {
          // A short timeout: success proves takeover, not waiting.
          const { dir, state } = yield* setup(200)
          const holder = startWorker(["hold", dir, KEY, "60000"])
          yield* killOnExit(holder)
          yield* Effect.promise(() => holder.line("locked"))
          holder.child.kill("SIGKILL")
          assert.strictEqual(yield* Effect.promise(() => holder.exited), "SIGKILL")
          assert.isTrue(fs.existsSync(path.join(dir, LOCK)), "the dead holder left its lock file")
          yield* state.withLock(KEY, Effect.void)
          assert.deepStrictEqual(fs.readdirSync(dir), [])
        }),
      ),
    20_000,
  )

  it.live(
    "several processes racing for a stale lock and each other: never two inside, no update lost",
    () =>
      Effect.scoped(
        Effect.gen(function* () {
          const { dir, state } = yield* setup(200)
          const holder = startWorker(["hold", dir, KEY, "60000"])
          yield* killOnExit(holder)
          yield* Effect.promise(() => holder.line("locked"))
          holder.child.kill("SIGKILL")
          yield* Effect.promise(() => holder.exited)
          const log = path.join(dir, "log.txt")
          const workers = 4
          const iterations = 10
          yield* Effect.all(
            Array.from({ length: workers }, () => runWorker(["count", dir, KEY, String(iterations), log])),
            { concurrency: "unbounded" },
          )
          const lines = fs.readFileSync(log, "utf8").trim().split("\n")
          assert.strictEqual(lines.length, 2 * workers * iterations)
          for (let i = 0; i < lines.length; i += 2) {
            const [enter, exit] = [lines[i]!.split(" "), lines[i + 1]!.split(" ")]
            assert.strictEqual(enter[0], "enter")
            assert.strictEqual(exit[0], "exit")
            assert.strictEqual(enter[1], exit[1], `critical sections overlap at line ${i}`)
          }
          const loaded = Option.getOrThrow(yield* state.load(KEY))
          assert.strictEqual(loaded.record.generation, workers * iterations)
          assert.deepStrictEqual(fs.readdirSync(dir).sort(), ["default%2Fgitlab-deploy-token.json", "log.txt"])
        }),
      ),
    60_000,
  )

  it.live(
    "compare-and-set alone (no withLock) is safe across processes",
    () =>
      Effect.scoped(
        Effect.gen(function* () {
          const { dir, state } = yield* setup(1000)
          const workers = 4
          const iterations = 15
          yield* Effect.all(
            Array.from({ length: workers }, () => runWorker(["cas", dir, KEY, String(iterations)])),
            { concurrency: "unbounded" },
          )
          assert.strictEqual(Option.getOrThrow(yield* state.load(KEY)).record.generation, workers * iterations)
          assert.deepStrictEqual(fs.readdirSync(dir), ["default%2Fgitlab-deploy-token.json"])
        }),
      ),
    60_000,
  )

  it.live("a lock held on another host is never presumed stale", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const { dir, state } = yield* setup(100)
        fakeLock(dir, { pid: 999_999_999, hostname: "elsewhere.example" })
        const busy = yield* Effect.flip(state.withLock(KEY, Effect.void))
        assert.strictEqual(busy._tag, "StateBusy")
        if (busy._tag === "StateBusy") assert.include(busy.holder, "elsewhere.example")
        assert.isTrue(fs.existsSync(path.join(dir, LOCK)))
      }),
    ),
  )

  it.live("a lock held in another pid namespace (another container) is never presumed stale", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const { dir, state } = yield* setup(100)
        if (!fs.existsSync("/proc/self/ns/pid")) return
        fakeLock(dir, { pid: 999_999_999, pidNs: "pid:[1]" })
        const busy = yield* Effect.flip(state.withLock(KEY, Effect.void))
        assert.strictEqual(busy._tag, "StateBusy")
        assert.isTrue(fs.existsSync(path.join(dir, LOCK)))
      }),
    ),
  )

  it.live("an unreadable lock file is reported, not taken over", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const { dir, state } = yield* setup(100)
        fs.writeFileSync(path.join(dir, LOCK), "garbage")
        const busy = yield* Effect.flip(state.withLock(KEY, Effect.void))
        assert.strictEqual(busy._tag, "StateBusy")
        if (busy._tag === "StateBusy") assert.include(busy.holder, "unreadable lock file")
        assert.strictEqual(fs.readFileSync(path.join(dir, LOCK), "utf8"), "garbage")
      }),
    ),
  )

  it.live("a lock from before a reboot, or from a previous process with a reused pid, is stale", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const { dir, state } = yield* setup(100)
        if (!fs.existsSync("/proc/sys/kernel/random/boot_id")) return
        // Our own pid, but another boot.
        fakeLock(dir, { pid: process.pid, bootId: "00000000-0000-0000-0000-000000000000" })
        yield* state.withLock(KEY, Effect.void)
        // Our own pid and boot, but a process that started at another time (pid reuse, e.g. pid 1 in a restarted container).
        fakeLock(dir, { pid: process.pid, procStart: "1" })
        yield* state.withLock(KEY, Effect.void)
        assert.deepStrictEqual(fs.readdirSync(dir), [])
      }),
    ),
  )

  it.live("concurrent takers of one stale lock: exactly one wins, every round", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const dir = yield* tempDir
        const lockPath = path.join(dir, LOCK)
        for (let round = 0; round < 25; round++) {
          // A dead holder on this host (no such pid), with a nonce unique to the round.
          fs.writeFileSync(
            lockPath,
            JSON.stringify({ pid: 999_999_999, hostname: os.hostname(), startedAt: new Date(0).toISOString(), nonce: round.toString(16).padStart(32, "0") }),
          )
          const attempts = yield* Effect.promise(() => Promise.all(Array.from({ length: 12 }, () => tryAcquire(lockPath))))
          const winners = attempts.filter((a) => a._tag === "Acquired")
          assert.strictEqual(winners.length, 1, `round ${round}: ${winners.length} winners`)
          for (const w of winners) if (w._tag === "Acquired") assert.isTrue(yield* Effect.promise(() => release(w.lock)))
          assert.deepStrictEqual(fs.readdirSync(dir), [], `round ${round} left files behind`)
        }
      }),
    ),
  )
})
