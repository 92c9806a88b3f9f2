/**
 * One client-side rate limit per GitLab instance (origin), shared by every consumer, in front of
 * @gldt/gitlab's transport. A token bucket paces requests at `--gitlab-qps`; GitLab's own answers
 * slow it further: `Retry-After` on a 429 and `RateLimit-Remaining: 0` with `RateLimit-Reset` hold
 * every request to that instance until the time they name. Each answer is counted by method,
 * status code and instance, with its latency.
 */
import { GitLabTransport, layer as transportLayer } from "@gldt/gitlab/Transport"
import { Clock, Effect, Layer } from "effect"
import { HttpClient } from "effect/http"
import { Metrics, type MetricsShape } from "./Metrics.ts"

export interface LimiterOptions {
  /** Sustained requests per second per instance. */
  readonly qps: number
  /** Requests that may go at once after a quiet period. Default: qps. */
  readonly burst?: number
  /** A server-requested pause longer than this is capped (a misbehaving proxy must not stall us for a day). */
  readonly maxPauseMs?: number
}

/** The pacing state of one instance. Pure bookkeeping; the caller sleeps the returned delay. */
export class InstanceLimiter {
  private tokens: number
  private last: number
  private blockedUntil = 0
  private readonly qps: number
  private readonly burst: number
  private readonly maxPauseMs: number

  constructor(qps: number, burst: number, maxPauseMs: number, now: number) {
    this.qps = qps
    this.burst = burst
    this.maxPauseMs = maxPauseMs
    this.tokens = burst
    this.last = now
  }

  /** Reserves one request slot; returns how long to wait before sending it. */
  reserve(now: number): number {
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.qps)
    this.last = now
    this.tokens -= 1
    const paceWait = this.tokens >= 0 ? 0 : (-this.tokens / this.qps) * 1000
    const pauseWait = Math.max(0, this.blockedUntil - now)
    return Math.ceil(Math.max(paceWait, pauseWait))
  }

  /** Reads GitLab's rate-limit headers from an answer. */
  observe(now: number, status: number, headers: Readonly<Record<string, string | undefined>>): void {
    let until = 0
    const retryAfter = headers["retry-after"]
    if (status === 429 && retryAfter !== undefined) {
      const seconds = Number(retryAfter)
      if (Number.isFinite(seconds)) until = now + seconds * 1000
      else {
        const at = Date.parse(retryAfter)
        if (!Number.isNaN(at)) until = at
      }
    }
    const remaining = Number(headers["ratelimit-remaining"])
    const reset = Number(headers["ratelimit-reset"])
    if (headers["ratelimit-remaining"] !== undefined && remaining <= 0 && Number.isFinite(reset)) {
      // RateLimit-Reset is a Unix time in seconds on GitLab; small values are relative seconds.
      until = Math.max(until, reset > 1e9 ? reset * 1000 : now + reset * 1000)
    }
    if (status === 429 && until === 0) until = now + 1000
    if (until > 0) this.blockedUntil = Math.max(this.blockedUntil, Math.min(until, now + this.maxPauseMs))
  }
}

const methodOf = (m: string) => m.toUpperCase()

/** Wraps a client so every request to an origin waits for that origin's limiter and is measured. */
export const limitClient = (
  client: HttpClient.HttpClient,
  limiters: Map<string, InstanceLimiter>,
  options: LimiterOptions,
  metrics: MetricsShape | undefined,
): HttpClient.HttpClient =>
  HttpClient.transform(client, (effect, request) =>
    Effect.gen(function* () {
      let origin = "unknown"
      try {
        origin = new URL(request.url).origin
      } catch {
        // the GitLab layer reports malformed URLs itself
      }
      const now = yield* Clock.currentTimeMillis
      let limiter = limiters.get(origin)
      if (limiter === undefined) {
        limiter = new InstanceLimiter(options.qps, options.burst ?? Math.max(1, Math.ceil(options.qps)), options.maxPauseMs ?? 600_000, now)
        limiters.set(origin, limiter)
      }
      const wait = limiter.reserve(now)
      if (wait > 0) yield* Effect.sleep(wait)
      const started = performance.now()
      const answer = yield* Effect.result(effect)
      const seconds = (performance.now() - started) / 1000
      const method = methodOf(request.method)
      if (answer._tag === "Success") {
        const res = answer.success
        limiter.observe(yield* Clock.currentTimeMillis, res.status, res.headers as Readonly<Record<string, string | undefined>>)
        const code = String(res.status)
        metrics?.gitlabRequests.inc({ method, code, instance: origin })
        metrics?.gitlabLatency.observe({ method, code, instance: origin }, seconds)
        return res
      }
      metrics?.gitlabRequests.inc({ method, code: "0", instance: origin })
      metrics?.gitlabLatency.observe({ method, code: "0", instance: origin }, seconds)
      return yield* Effect.fail(answer.failure)
    }),
  )

/** A GitLabTransport whose clients share one limiter per instance and report to Metrics. */
export const layer = (options: LimiterOptions): Layer.Layer<GitLabTransport, never, Metrics> =>
  Layer.effect(
    GitLabTransport,
    Effect.gen(function* () {
      const inner = yield* GitLabTransport
      const metrics = yield* Metrics
      const limiters = new Map<string, InstanceLimiter>()
      const wrapped = new Map<string, HttpClient.HttpClient>()
      return GitLabTransport.of({
        client: (caPem) =>
          Effect.gen(function* () {
            const key = caPem ?? ""
            const cached = wrapped.get(key)
            if (cached !== undefined) return cached
            const c = limitClient(yield* inner.client(caPem), limiters, options, metrics)
            wrapped.set(key, c)
            return c
          }),
      })
    }),
  ).pipe(Layer.provide(transportLayer))
