/** A fixed-window request throttle with Rack::Attack's arithmetic (row 41). */
import type { RateLimitInfo } from "./reply.ts"

export interface RateLimitOptions {
  /** Requests allowed per period and client (user, or IP when anonymous). */
  readonly limit: number
  /** Window length in seconds (default 60). */
  readonly periodSeconds?: number | undefined
  /** RateLimit-Name; default `throttle_authenticated_api` / `throttle_unauthenticated_api`. */
  readonly name?: string | undefined
}

export interface ThrottleResult {
  readonly limited: boolean
  readonly info: RateLimitInfo
}

export class Throttle {
  readonly options: RateLimitOptions
  private readonly period: number
  private readonly counters = new Map<string, { window: number; count: number }>()

  constructor(options: RateLimitOptions) {
    if (!(options.limit >= 0) || !Number.isFinite(options.limit)) throw new Error("gitlab-sim: rateLimit.limit must be a non-negative number")
    const period = options.periodSeconds ?? 60
    if (!(period > 0) || !Number.isFinite(period)) throw new Error("gitlab-sim: rateLimit.periodSeconds must be positive")
    this.options = options
    this.period = Math.ceil(period)
  }

  /** Counts one request for `key` at `nowMs` and says whether it is over the limit. */
  hit(key: string, authenticated: boolean, nowMs: number): ThrottleResult {
    const nowSec = Math.floor(nowMs / 1000)
    const window = Math.floor(nowSec / this.period)
    if (this.counters.size > 100_000) {
      for (const [k, c] of this.counters) if (c.window !== window) this.counters.delete(k)
    }
    let counter = this.counters.get(key)
    if (counter === undefined || counter.window !== window) {
      counter = { window, count: 0 }
      this.counters.set(key, counter)
    }
    counter.count++
    const retryAfter = this.period - (nowSec % this.period)
    return {
      limited: counter.count > this.options.limit,
      info: {
        name: this.options.name ?? (authenticated ? "throttle_authenticated_api" : "throttle_unauthenticated_api"),
        limit: Math.ceil((this.options.limit * 60) / this.period),
        observed: counter.count,
        remaining: Math.max(this.options.limit - counter.count, 0),
        resetAt: nowSec + retryAfter,
        retryAfter,
      },
    }
  }
}
