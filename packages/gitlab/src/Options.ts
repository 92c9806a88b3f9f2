/** Tuning of the GitLab client: timeouts, retries and the User-Agent. Every field has a default. */
import { Duration } from "effect"
import { version } from "./internal/version.ts"

export interface GitLabClientOptions {
  /** Limit on one HTTP exchange (connect, send, read the whole answer). Default 30 s. */
  readonly requestTimeout?: Duration.Input | undefined
  /**
   * Attempts per request, the first one included, for retryable failures (429, 5xx and network
   * errors on GET and DELETE; 429 and connection failures before sending on POST). Default 5.
   */
  readonly maxAttempts?: number | undefined
  /** First back-off delay; it doubles per attempt, with ±20 % jitter. Default 500 ms. */
  readonly baseDelay?: Duration.Input | undefined
  /**
   * Longest single wait. Back-off is capped here, and a `Retry-After`/`RateLimit-Reset` asking for
   * longer is not waited for: the call fails at once with `RateLimited{retryAfterMs}`. Default 60 s.
   */
  readonly maxDelay?: Duration.Input | undefined
  /** Same-origin redirects followed on GET before giving up with `Moved`. Default 3. */
  readonly maxRedirects?: number | undefined
  /** Default `gldt/<version>`. */
  readonly userAgent?: string | undefined
}

/** The options with every default filled in. */
export interface ResolvedOptions {
  readonly requestTimeout: Duration.Duration
  readonly maxAttempts: number
  readonly baseDelay: Duration.Duration
  readonly maxDelay: Duration.Duration
  readonly maxRedirects: number
  readonly userAgent: string
}

export const defaultUserAgent = `gldt/${version}`

export const defaults: ResolvedOptions = {
  requestTimeout: Duration.seconds(30),
  maxAttempts: 5,
  baseDelay: Duration.millis(500),
  maxDelay: Duration.seconds(60),
  maxRedirects: 3,
  userAgent: defaultUserAgent,
}

const count = (value: number | undefined, fallback: number, min: number): number =>
  value === undefined || !Number.isFinite(value) ? fallback : Math.max(min, Math.floor(value))

export const resolveOptions = (options: GitLabClientOptions = {}): ResolvedOptions => ({
  requestTimeout: options.requestTimeout === undefined ? defaults.requestTimeout : Duration.fromInputUnsafe(options.requestTimeout),
  maxAttempts: count(options.maxAttempts, defaults.maxAttempts, 1),
  baseDelay: options.baseDelay === undefined ? defaults.baseDelay : Duration.fromInputUnsafe(options.baseDelay),
  maxDelay: options.maxDelay === undefined ? defaults.maxDelay : Duration.fromInputUnsafe(options.maxDelay),
  maxRedirects: count(options.maxRedirects, defaults.maxRedirects, 0),
  userAgent: options.userAgent ?? defaults.userAgent,
})
