/** Property tests of the pure decisions: whatever GitLab lists and whatever the record holds. */
import { assert, describe, it } from "@effect/vitest"
import fc from "fast-check"
import {
  MIN_REVISIT_MS,
  nextAt,
  REVOKE_BACKOFF_BASE_MS,
  REVOKE_BACKOFF_CAP_MS,
  renewMargin,
  resolveIntentDecision,
  retireEverything,
  rotationDue,
  settlePending,
  trackedIds,
  withRevokeFailure,
} from "../src/Decisions.ts"
import type { DeployToken } from "../src/GitLab.ts"
import type { Held } from "../src/Sink.ts"
import { validateSpec } from "../src/Spec.ts"
import type { Intent, Location, StateRecord, TokenRecord } from "../src/State.ts"

const location: Location = { url: "https://gitlab.com", target: { kind: "project", id: "7" } }
const MARK = "2999-05-06T07:08:09.123Z"
const intent: Intent = {
  generation: 3,
  location,
  name: "eso-managed",
  username: "eso",
  scopes: ["read_registry"],
  expiresAt: MARK,
  specHash: "h",
  watermark: 100,
  createdAt: 0,
}
const token = (id: number, extra: Partial<TokenRecord> = {}): TokenRecord => ({
  id,
  location,
  name: "eso-managed",
  username: "eso",
  scopes: ["read_registry"],
  expiresAt: MARK,
  specHash: "h",
  generation: 1,
  createdAt: 0,
  ...extra,
})
const record = (extra: Partial<StateRecord> = {}): StateRecord => ({ key: "k", generation: 3, retiring: [], suspects: [], watermarks: {}, intent, ...extra })

const listed = fc.record({
  id: fc.integer({ min: 1, max: 200 }),
  name: fc.constantFrom("eso-managed", "other"),
  username: fc.constantFrom("eso", "someone"),
  scopes: fc.constantFrom(["read_registry"], ["read_repository"]),
  expiresAt: fc.constantFrom<string | null>(
    MARK,
    "2999-05-06T07:08:09.000Z",
    "2999-05-06T00:00:00.000Z",
    "2999-05-06T07:08:09.124Z",
    null,
    "2030-01-01T00:00:00.000Z",
  ),
  revoked: fc.constant(false),
  expired: fc.constant(false),
})
const uniqueById = (ts: ReadonlyArray<DeployToken>) => [...new Map(ts.map((t) => [t.id, t])).values()]

describe("resolveIntentDecision (the suspect rule)", () => {
  it("never recovers more than one token, only an exact, untracked mark above the watermark, and never another key's token", () => {
    fc.assert(
      fc.property(
        fc.array(listed, { maxLength: 12 }),
        fc.uniqueArray(fc.integer({ min: 1, max: 200 }), { maxLength: 6 }),
        fc.boolean(),
        (raw, others, settled) => {
          const tokens = uniqueById(raw)
          const othersTrack = new Set(others)
          const decided = resolveIntentDecision(record(), intent, { tokens, othersTrack, sharedMark: false, now: 5, settled })
          if (decided === undefined) return
          const recovered = decided.done.filter((d) => d.action === "recovered").map((d) => d.tokenId)
          const suspected = decided.done.filter((d) => d.action === "suspected").map((d) => d.tokenId)
          assert.isAtMost(recovered.length, 1)
          for (const id of [...recovered, ...suspected]) {
            const t = tokens.find((x) => x.id === id)!
            assert.isAbove(t.id, intent.watermark)
            assert.isFalse(othersTrack.has(id), "another key's token is never ours nor a suspect of ours")
            assert.strictEqual(t.name, intent.name)
          }
          for (const id of recovered) assert.strictEqual(tokens.find((x) => x.id === id)!.expiresAt, MARK)
          // A mark that differs below the second, or no expiry at all, is someone else's: never a suspect.
          for (const id of suspected) {
            const e = tokens.find((x) => x.id === id)!.expiresAt
            assert.notStrictEqual(e, null)
            assert.notStrictEqual(e, "2999-05-06T07:08:09.124Z")
          }
          // A single exact match is certain: no suspect beside it unless GitLab dropped precision on another.
          if (recovered.length === 1) assert.isFalse(suspected.includes(recovered[0]!))
          assert.isUndefined(decided.record.intent)
        },
      ),
    )
  })

  it("drops suspects the target no longer lists, keeps the ones it does", () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.integer({ min: 1, max: 50 }), { maxLength: 8 }),
        fc.uniqueArray(fc.integer({ min: 1, max: 50 }), { maxLength: 8 }),
        (had, still) => {
          const suspects = had.map((id) => ({ id, location, name: "eso-managed", username: "eso", generation: 1, foundAt: 0 }))
          const tokens = still.map((id): DeployToken => ({ id, name: "x", username: "x", scopes: [], expiresAt: null, revoked: false, expired: false }))
          const decided = resolveIntentDecision(record({ suspects }), intent, { tokens, othersTrack: new Set(), sharedMark: false, now: 1, settled: true })!
          assert.deepStrictEqual(
            decided.record.suspects.map((s) => s.id),
            had.filter((id) => still.includes(id)),
          )
        },
      ),
    )
  })

  it("an exact mark that another key's open intent also carries is a suspect, not ours", () => {
    const t: DeployToken = { id: 150, name: "eso-managed", username: "eso", scopes: ["read_registry"], expiresAt: MARK, revoked: false, expired: false }
    const decided = resolveIntentDecision(record(), intent, { tokens: [t], othersTrack: new Set(), sharedMark: true, now: 1, settled: true })!
    assert.deepStrictEqual(
      decided.done.map((d) => d.action),
      ["suspected"],
    )
  })
})

describe("the decisions never lose a token (I1)", () => {
  const tokens = fc.uniqueArray(fc.integer({ min: 1, max: 1000 }), { minLength: 0, maxLength: 6 })
  it("retireEverything keeps every tracked id, as retiring, due now", () => {
    fc.assert(
      fc.property(
        tokens,
        fc.option(fc.integer({ min: 1001, max: 2000 })),
        fc.option(fc.integer({ min: 2001, max: 3000 })),
        fc.boolean(),
        (ret, cur, pen, retryNow) => {
          const r = record({
            intent: undefined,
            current: cur === null ? undefined : token(cur),
            pending: pen === null ? undefined : token(pen),
            retiring: ret.map((id) => token(id, { revokeAfter: 10_000, retryAt: 20_000 })),
          })
          const next = retireEverything(r, 500, retryNow)
          if (next === undefined) return assert.strictEqual(trackedIds(r).size, 0)
          assert.deepStrictEqual([...trackedIds(next)].sort(), [...trackedIds(r)].sort())
          assert.isUndefined(next.current)
          assert.isUndefined(next.pending)
          for (const t of next.retiring) {
            assert.strictEqual(t.revokeAfter, 500)
            if (retryNow) assert.strictEqual(t.retryAt, 500)
          }
        },
      ),
    )
  })

  it("settlePending promotes or retires the pending token; at once only from a sink that is certainly empty", () => {
    const held = fc.oneof(
      fc.constant<Held>({ _tag: "Empty" }),
      fc.constant<Held>({ _tag: "Unknown" }),
      fc.integer({ min: 1, max: 10 }).map((tokenId): Held => ({ _tag: "Holds", tokenId })),
    )
    fc.assert(
      fc.property(held, fc.integer({ min: 0, max: 3_600_000 }), (h, grace) => {
        const r = record({ intent: undefined, current: token(1), pending: token(5) })
        const next = settlePending(r, h, 1_000, grace)!
        assert.isTrue(trackedIds(next.record).has(5))
        assert.isTrue(trackedIds(next.record).has(1))
        const retired = next.record.retiring.find((t) => t.id === 5)
        if (retired !== undefined) assert.strictEqual(retired.revokeAfter, h._tag === "Empty" ? 1_000 : 1_000 + grace)
        else assert.strictEqual(next.record.current?.id, 5)
      }),
    )
  })
})

describe("calm retries", () => {
  it("a failed revocation backs off exponentially within ±20 %, capped, never before Retry-After", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 30 }),
        fc.double({ min: 0.8, max: 1.2, noNaN: true }),
        fc.option(fc.integer({ min: 0, max: 10 * 3_600_000 })),
        (attempts, jitter, retryAfter) => {
          const r = record({ intent: undefined, retiring: [token(9, { revokeAttempts: attempts })] })
          const next = withRevokeFailure(r, 9, "Forbidden: 403", 1_000, jitter, retryAfter ?? undefined)!
          const t = next.retiring[0]!
          assert.strictEqual(t.revokeAttempts, attempts + 1)
          const base = Math.min(REVOKE_BACKOFF_CAP_MS, REVOKE_BACKOFF_BASE_MS * 2 ** attempts)
          const wait = t.retryAt! - 1_000
          assert.isAtLeast(wait, Math.max(Math.floor(0.8 * base), retryAfter ?? 0))
          assert.isAtMost(wait, Math.max(Math.ceil(1.2 * base), retryAfter ?? 0))
        },
      ),
    )
  })

  it("nextAt is never sooner than a second from now, whatever the record holds", () => {
    const spec = validateSpec({
      projectID: "7",
      name: "n",
      scopes: ["read_registry"],
      expiresAfter: "24h",
      auth: { token: { secretRef: { name: "s", key: "k" } } },
    }).spec!
    fc.assert(
      fc.property(
        fc.array(fc.record({ revokeAfter: fc.integer({ min: 0, max: 10_000 }), retryAt: fc.integer({ min: 0, max: 10_000 }) }), { maxLength: 4 }),
        fc.boolean(),
        fc.integer({ min: 0, max: 20_000 }),
        (times, open, now) => {
          const r = record({
            intent: open ? intent : undefined,
            current: token(1, { createdAt: 0, expiresAt: new Date(3_600_000).toISOString() }),
            retiring: times.map((t, i) => token(10 + i, t)),
          })
          const at = nextAt(r, now, 60_000, { spec, policy: { refreshIntervalMs: 5_000, graceMs: 0 } })
          if (at !== undefined) assert.isAtLeast(at, now + MIN_REVISIT_MS)
        },
      ),
    )
  })

  it("a fresh token is never due for renewal at once, whatever renewBeforeExpiry says", () => {
    fc.assert(
      fc.property(fc.integer({ min: 24, max: 24 * 400 }), fc.integer({ min: 0, max: 24 * 1000 }), (lifetimeH, renewH) => {
        const base = validateSpec({
          projectID: "7",
          name: "n",
          scopes: ["read_registry"],
          expiresAfter: `${lifetimeH}h`,
          auth: { token: { secretRef: { name: "s", key: "k" } } },
        }).spec!
        const spec = { ...base, renewBeforeExpiryMs: renewH * 3_600_000 }
        const lifetime = lifetimeH * 3_600_000
        assert.isAtMost(renewMargin(spec, lifetime), lifetime / 2)
        const r = record({ intent: undefined, current: token(1, { createdAt: 0, expiresAt: new Date(lifetime).toISOString() }) })
        assert.isAbove(rotationDue(r, spec, { refreshIntervalMs: 0, graceMs: 0 })!, 0)
      }),
    )
  })
})
