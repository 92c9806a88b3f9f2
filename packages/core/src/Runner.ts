/**
 * The long-running driver: reconcile, then sleep until the report's `nextAt`; on failure, back off
 * exponentially with jitter (capped), and never sooner than GitLab's `Retry-After` when it rate
 * limited us. Every wait goes through Effect's Clock, so TestClock can bound the calls it makes.
 */
import { Clock, Duration, Effect, Schedule } from "effect"
import type { GitLab } from "./GitLab.ts"
import { type Job, type LifecycleFailure, type Report, reconcile } from "./Lifecycle.ts"
import type { Sink } from "./Sink.ts"
import type { State } from "./State.ts"

/** With nothing scheduled, look again after this long anyway (catches an edited sink). */
export const IDLE_REVISIT_MS = 3_600_000
/** First wait after a failed reconcile; doubles (±20 % jitter) up to RETRY_CAP_MS. */
export const RETRY_BASE_MS = 1_000
export const RETRY_CAP_MS = 5 * 60_000

export interface RunForeverOptions {
  /** Called after every successful reconcile. */
  readonly onReport?: ((report: Report) => Effect.Effect<void>) | undefined
  /** Called after every failed reconcile, with the wait before the next attempt. */
  readonly onError?: ((error: LifecycleFailure, retryInMs: number) => Effect.Effect<void>) | undefined
  /** Stop (successfully) once this returns true for a report. */
  readonly until?: ((report: Report) => boolean) | undefined
}

/** The wait GitLab asked for, if the failure is a rate limit. */
const retryAfter = (e: LifecycleFailure): number => (e._tag === "RateLimited" ? e.retryAfterMs : 0)

/** Retries a failing reconcile: exponential from RETRY_BASE_MS, jittered, capped, at least Retry-After. */
export const failureSchedule = (onError?: RunForeverOptions["onError"]) =>
  Schedule.exponential(Duration.millis(RETRY_BASE_MS)).pipe(
    Schedule.jittered,
    Schedule.setInputType<LifecycleFailure>(),
    Schedule.modifyDelay(({ input, duration }) =>
      Effect.succeed(Duration.millis(Math.max(Math.min(Duration.toMillis(duration), RETRY_CAP_MS), retryAfter(input)))),
    ),
    Schedule.tap(({ input, duration }) => (onError === undefined ? Effect.void : onError(input, Math.round(Duration.toMillis(duration))))),
  )

/**
 * Reconciles `job` until interrupted (or `until` holds). A reconcile is never interrupted halfway:
 * the lifecycle is crash-safe, but a clean stop is cheaper.
 */
export const runForever = (job: Job, options: RunForeverOptions = {}): Effect.Effect<void, never, State | Sink | GitLab> =>
  Effect.gen(function* () {
    const once = Effect.uninterruptible(reconcile(job)).pipe(Effect.retry(failureSchedule(options.onError)))
    while (true) {
      const report = yield* once.pipe(Effect.orDie)
      if (options.onReport) yield* options.onReport(report)
      if (options.until?.(report)) return
      const now = yield* Clock.currentTimeMillis
      const wait = report.nextAt === undefined ? IDLE_REVISIT_MS : Math.min(Math.max(0, report.nextAt - now), IDLE_REVISIT_MS)
      yield* Effect.sleep(Duration.millis(wait))
    }
  })
