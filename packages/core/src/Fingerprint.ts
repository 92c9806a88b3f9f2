/**
 * The mark every create carries so recovery can prove a token is ours: its `expires_at`, exact to
 * the millisecond, holds a random per-mint nonce.
 *
 * - `expiresAfter`: the computed expiry minus the nonce (up to an hour earlier, never later).
 * - `expiresAt`: the user's date minus the nonce (at most half the time left), never later.
 * - no expiry: a date in the year 2999 (the nonce is the offset into that year). GitLab treats
 *   exactly 3000-01-01 as "forever" and reports it as `null`, which could carry no nonce, so the
 *   fingerprint stays strictly below it.
 *
 * A token listed with exactly the intent's `expires_at` was made by that create; anything else is a
 * look-alike. Pure functions only: the nonce is drawn by the caller.
 */
import type { DeployTokenSpec } from "./Spec.ts"

const HOUR = 3_600_000
const DAY = 24 * HOUR

/** GitLab's `Forever.date`: stored for "no expiry" and reported as `null`. */
export const GITLAB_FOREVER_MS = Date.UTC(3000, 0, 1)
/** Start of the range of fingerprints of tokens that should never expire. */
export const NO_EXPIRY_BASE_MS = Date.UTC(2999, 0, 1)
/** Width of the nonce for tokens without expiry: the whole year 2999 in ms (3.1e10 values). */
export const NO_EXPIRY_SPAN_MS = GITLAB_FOREVER_MS - NO_EXPIRY_BASE_MS - DAY
/** The nonce moves a relative expiry at most this much earlier (3.6e6 values). */
export const RELATIVE_SPAN_MS = HOUR

/** How many distinct nonces a spec allows at `now` (at least 1). */
export const nonceSpan = (spec: DeployTokenSpec, now: number): number => {
  switch (spec.expiry.kind) {
    case "none":
      return NO_EXPIRY_SPAN_MS
    case "after":
      return Math.max(1, Math.min(RELATIVE_SPAN_MS, Math.floor(spec.expiry.ms / 24)))
    case "at":
      return Math.max(1, Math.min(RELATIVE_SPAN_MS, Math.floor((spec.expiry.at - now) / 2)))
  }
}

/** The `expires_at` sent with a create: the spec's expiry (or the no-expiry range) marked with `nonce` ∈ [1, span]. */
export const fingerprintExpiry = (spec: DeployTokenSpec, now: number, nonce: number): string => {
  switch (spec.expiry.kind) {
    case "none":
      return new Date(NO_EXPIRY_BASE_MS + nonce).toISOString()
    case "after":
      return new Date(now + spec.expiry.ms - nonce).toISOString()
    case "at":
      return new Date(spec.expiry.at - nonce).toISOString()
  }
}

/** A fingerprint in the no-expiry range: the token was meant never to expire. */
export const meansNoExpiry = (expiresAt: string | null): boolean => {
  if (expiresAt === null) return true
  const ms = Date.parse(expiresAt)
  return ms >= NO_EXPIRY_BASE_MS
}

export type Verdict = "ours" | "suspect" | "foreign"

/**
 * How a listed token's `expires_at` relates to the intent's fingerprint. Exact: ours. A GitLab that
 * stored less precision (whole seconds, or a date) may have dropped the nonce: same second or same
 * day is ambiguous. Anything else, `null` included, is someone else's.
 */
export const compareFingerprint = (intentExpiresAt: string | null, listed: string | null): Verdict => {
  // Intents written before fingerprints existed carry none: nothing can be proven.
  if (intentExpiresAt === null) return "suspect"
  if (listed === null) return "foreign"
  const theirs = Date.parse(listed)
  const mine = Date.parse(intentExpiresAt)
  if (theirs === mine) return "ours"
  const truncated = theirs % 1000 === 0 && (Math.floor(theirs / 1000) === Math.floor(mine / 1000) || theirs === Math.floor(mine / DAY) * DAY)
  return truncated ? "suspect" : "foreign"
}
