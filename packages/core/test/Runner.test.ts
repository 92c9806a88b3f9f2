import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Layer, Redacted } from "effect"
import { TestClock } from "effect/testing"
import { RateLimited } from "../src/Errors.ts"
import { type Job, type Report, reconcile } from "../src/Lifecycle.ts"
import { runForever } from "../src/Runner.ts"
import { layerMemory as sinkMemory } from "../src/Sink.ts"
import { validateSpec } from "../src/Spec.ts"
import { layerMemory as stateMemory } from "../src/State.ts"
import { errors, FakeGitLab } from "./FakeGitLab.ts"

const HOUR = 3_600_000

const job: Job = {
  key: "default/gitlab-deploy-token",
  spec: validateSpec({
    projectID: "group/project",
    name: "eso-managed",
    scopes: ["read_registry"],
    username: "eso",
    auth: { token: { secretRef: { name: "gitlab-api-token", key: "token" } } },
  }).spec!,
  connection: { url: "https://gitlab.com", accessToken: Redacted.make("glpat-secret-access") },
  policy: { refreshIntervalMs: 24 * HOUR, graceMs: 0 },
}

const TestLayer = Layer.mergeAll(FakeGitLab.gitlabLayer, sinkMemory, stateMemory)

/** Advances the TestClock by `ms` in one-second steps, letting the runner's fiber act at each. */
const advance = (ms: number) =>
  Effect.gen(function* () {
    for (let t = 0; t < ms; t += 1_000) yield* TestClock.adjust(1_000)
  })

/**
 * The call budget: GitLab calls per simulated hour while a revocation keeps failing (403). Without
 * per-token back-off the runner re-sent the DELETE as fast as it could (hundreds per second).
 */
const REVOKE_FAILING_CALLS_PER_HOUR_LIMIT = 10

describe("runForever", () => {
  it.effect(`with a permanently failing revocation, GitLab calls stay at most ${REVOKE_FAILING_CALLS_PER_HOUR_LIMIT} per simulated hour`, () =>
    Effect.gen(function* () {
      const fake = yield* FakeGitLab
      // A token was replaced, and GitLab now refuses its DELETE for good (the role was lowered).
      yield* reconcile({ ...job, policy: { ...job.policy, refreshIntervalMs: HOUR } })
      yield* TestClock.adjust(HOUR)
      fake.failAlways.set("revoke", errors.forbidden())
      yield* reconcile({ ...job, policy: { ...job.policy, refreshIntervalMs: HOUR } })
      const reports: Report[] = []
      const fiber = yield* Effect.forkChild(runForever(job, { onReport: (r) => Effect.sync(() => reports.push(r)) }))
      const perHour: number[] = []
      for (let h = 0; h < 6; h++) {
        const before = fake.calls.length
        yield* advance(HOUR)
        perHour.push(fake.calls.length - before)
      }
      yield* Fiber.interrupt(fiber)
      console.log(`call budget: GitLab calls per simulated hour with revocations failing for good: ${perHour.join(", ")}`)
      for (const n of perHour) assert.isAtMost(n, REVOKE_FAILING_CALLS_PER_HOUR_LIMIT, perHour.join(", "))
      assert.isAbove(fake.calls.filter((c) => c.op === "revoke").length, 5, "it keeps trying")
      assert.isBelow(reports.length, 200, "no hot loop of reconciles either")
    }).pipe(Effect.provide(TestLayer)),
  )

  it.effect("a rate-limited reconcile is retried no sooner than Retry-After", () =>
    Effect.gen(function* () {
      const fake = yield* FakeGitLab
      fake.failNext.set("list", { error: new RateLimited({ message: "429", retryAfterMs: 10 * 60_000 }) })
      const fiber = yield* Effect.forkChild(runForever(job))
      yield* advance(10 * 60_000 - 1_000)
      assert.strictEqual(fake.calls.filter((c) => c.op === "create").length, 0, "still waiting")
      yield* advance(2_000)
      assert.strictEqual(fake.calls.filter((c) => c.op === "create").length, 1)
      yield* Fiber.interrupt(fiber)
    }).pipe(Effect.provide(TestLayer)),
  )
})
