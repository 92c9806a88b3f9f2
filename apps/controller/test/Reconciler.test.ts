/** The Reconciler's pure parts: how long a key whose revocation failed waits before it comes back. */
import { describe, expect, it } from "vitest"
import { MIN_RETRY_MS, retryDelayMs } from "../src/Reconciler.ts"

describe("retryDelayMs", () => {
  it("waits until core's retry time", () => {
    expect(retryDelayMs(60_000, 10_000)).toBe(50_000)
  })

  it("never less than MIN_RETRY_MS, even for a retry time that is already past, so a failing revocation cannot spin", () => {
    expect(retryDelayMs(10_500, 10_000)).toBe(MIN_RETRY_MS)
    expect(retryDelayMs(0, 10_000)).toBe(MIN_RETRY_MS)
  })
})
