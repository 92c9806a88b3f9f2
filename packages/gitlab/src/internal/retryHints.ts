/** How long GitLab asks a client to wait before trying again. */
import { Duration, Result } from "effect"
import { Headers } from "effect/http"

/**
 * The server's wait in ms: `Retry-After` (delta seconds or HTTP date), else `RateLimit-Reset`
 * (Unix seconds; a small number is read as seconds from now), else `RateLimit-ResetTime` (HTTP date).
 */
export const retryAfterMs = (headers: Headers.Headers, nowMs: number): number | undefined => {
  const retryAfter = headers["retry-after"]
  if (retryAfter !== undefined) {
    const parsed = Headers.parseRetryAfter(retryAfter)
    if (Result.isSuccess(parsed)) return Math.max(0, Math.ceil(Duration.toMillis(Headers.retryAfterDelay(parsed.success, nowMs))))
  }
  const reset = headers["ratelimit-reset"]
  if (reset !== undefined && /^\s*\d+(\.\d+)?\s*$/.test(reset)) {
    const n = Number(reset)
    if (n > 1_000_000_000) return Math.max(0, Math.ceil(n * 1000 - nowMs))
    if (n >= 0) return Math.ceil(n * 1000)
  }
  const resetTime = headers["ratelimit-resettime"]
  if (resetTime !== undefined) {
    const at = Date.parse(resetTime)
    if (!Number.isNaN(at)) return Math.max(0, at - nowMs)
  }
  return undefined
}

/** `1500` → `1.5 s`, `2000` → `2 s`. */
export const secondsText = (ms: number): string => (ms % 1000 === 0 ? `${ms / 1000} s` : `${(ms / 1000).toFixed(1)} s`)
