/** The per-instance limiter: pacing at qps after the burst, and GitLab's headers pausing it. */
import { describe, expect, it } from "vitest"
import { InstanceLimiter } from "../src/GitLabLimiter.ts"

describe("InstanceLimiter", () => {
  it("lets a burst through, then paces at qps", () => {
    const l = new InstanceLimiter(10, 2, 600_000, 0)
    expect(l.reserve(0)).toBe(0)
    expect(l.reserve(0)).toBe(0)
    expect(l.reserve(0)).toBe(100)
    expect(l.reserve(0)).toBe(200)
    // A quiet second refills the bucket.
    expect(l.reserve(5_000)).toBe(0)
  })

  it("holds every request until Retry-After of a 429", () => {
    const l = new InstanceLimiter(100, 100, 600_000, 0)
    l.observe(1_000, 429, { "retry-after": "7" })
    expect(l.reserve(1_000)).toBe(7_000)
    expect(l.reserve(8_000)).toBe(0)
  })

  it("holds until RateLimit-Reset when RateLimit-Remaining is 0", () => {
    const now = 1_700_000_000_000
    const l = new InstanceLimiter(100, 100, 600_000, now)
    l.observe(now, 200, { "ratelimit-remaining": "0", "ratelimit-reset": "1700000030" })
    expect(l.reserve(now)).toBe(30_000)
    l.observe(now, 200, { "ratelimit-remaining": "5", "ratelimit-reset": "1700000100" })
    expect(l.reserve(now + 31_000)).toBe(0)
  })

  it("caps a server-requested pause", () => {
    const l = new InstanceLimiter(100, 100, 60_000, 0)
    l.observe(0, 429, { "retry-after": "86400" })
    expect(l.reserve(0)).toBe(60_000)
  })
})
