/**
 * The lifecycle's decisions as pure functions of a State record: what the record becomes, and what
 * was done (as values). No I/O, no clock, no randomness: callers pass `now`, jitter and whatever
 * GitLab or the sink answered. `Lifecycle.ts` applies them with compare-and-set (`CompareAndSet.ts`).
 */
import { compareFingerprint } from "./Fingerprint.ts"
import type { DeployToken } from "./GitLab.ts"
import type { Held } from "./Sink.ts"
import { type DeployTokenSpec, specFingerprint, type Target } from "./Spec.ts"
import type { Intent, Location, StateRecord, Suspect, TokenRecord } from "./State.ts"

export interface Policy {
  /** Rotate this long after the current token was minted; 0 = never on schedule. */
  readonly refreshIntervalMs: number
  /** Keep a replaced token this long after its successor was delivered (I2). */
  readonly graceMs: number
  /** Periodic (default), CreatedOnce (never rotate on schedule or spec change), OnChange (spec changes only). */
  readonly refreshPolicy?: "Periodic" | "CreatedOnce" | "OnChange" | undefined
  /** How long after sending a create its outcome may still change on the server. Default 60s. */
  readonly createSettleMs?: number | undefined
  /**
   * Renew a token its renewal margin before its own expiry (expiresAfter specs). Default true, for
   * every refreshPolicy: an expired credential helps nobody. `gldt generate` turns it off: it only
   * ever mints when there is no token.
   */
  readonly renewBeforeExpiry?: boolean | undefined
}

export type Action = "minted" | "rotated" | "delivered" | "revoked" | "recovered" | "retired" | "suspected" | "released" | "forgotten"

/** One thing a run did, with a token id (never a value). */
export interface Done {
  readonly action: Action
  readonly tokenId: number
  readonly detail?: string
}

/** A revocation that failed; the token stays tracked (I5). */
export interface RevokeError {
  readonly tokenId: number
  readonly error: string
}

/** First wait after a failed revocation; doubles per attempt (±20 % jitter) up to the cap. */
export const REVOKE_BACKOFF_BASE_MS = 30_000
export const REVOKE_BACKOFF_CAP_MS = 3_600_000
/** A report never asks to come back sooner than this: work that cannot progress must not spin. */
export const MIN_REVISIT_MS = 1_000

export const locationKey = (l: Location): string => `${l.url}|${l.target.kind}|${l.target.id}`
export const targetKey = (url: string, target: Target) => `${url}|${target.kind}|${target.id}`
const isNumericId = (id: string) => /^\d+$/.test(id)

/** The spec's target by numeric id, if it is one or was resolved before; else undefined. */
export const locationOf = (spec: DeployTokenSpec, record: StateRecord): Location | undefined => {
  const id = isNumericId(spec.target.id) ? spec.target.id : record.targets?.[targetKey(spec.url, spec.target)]
  return id === undefined ? undefined : { url: spec.url, target: { kind: spec.target.kind, id }, auth: spec.auth.secretRef }
}

/** Records the numeric id a path resolved to (undefined: already known). */
export const withResolvedTarget = (r: StateRecord, key: string, id: string): StateRecord | undefined =>
  r.targets?.[key] === id ? undefined : { ...r, targets: { ...r.targets, [key]: id } }

/** Every token id the record answers for: current, pending, retiring and suspects. */
export const trackedIds = (r: StateRecord): Set<number> =>
  new Set([...(r.current ? [r.current.id] : []), ...(r.pending ? [r.pending.id] : []), ...r.retiring.map((t) => t.id), ...r.suspects.map((s) => s.id)])

/** Records `id` as seen at `l` (the watermark only rises; the key is present afterwards). */
export const withWatermark = (r: StateRecord, l: Location, id: number): StateRecord => {
  const k = locationKey(l)
  const current = r.watermarks[k]
  return current !== undefined && current >= id ? r : { ...r, watermarks: { ...r.watermarks, [k]: Math.max(current ?? 0, id) } }
}

/**
 * Renewal margin: the spec's renewBeforeExpiry, else a third of the token's lifetime (at most a
 * day), and never more than half the lifetime, so a fresh token is never due at once.
 */
export const renewMargin = (spec: DeployTokenSpec, lifetimeMs: number): number =>
  Math.min(spec.renewBeforeExpiryMs ?? Math.min(24 * 3_600_000, Math.floor(lifetimeMs / 3)), Math.floor(lifetimeMs / 2))

/** A token's expiry in ms, for scheduling renewal (the fingerprint only ever moves it earlier). */
const expiryMs = (t: TokenRecord): number | undefined => (t.expiresAt === null ? undefined : Date.parse(t.expiresAt))

export const sameScopes = (a: ReadonlyArray<string>, b: ReadonlyArray<string>) => a.length === b.length && [...a].sort().every((s, i) => s === [...b].sort()[i])

/** When a failed revocation may be tried again: exponential back-off with jitter, or later if GitLab asked. */
export const revokeRetryAt = (now: number, attempts: number, jitter: number, retryAfterMs?: number): number =>
  now + Math.max(Math.round(Math.min(REVOKE_BACKOFF_CAP_MS, REVOKE_BACKOFF_BASE_MS * 2 ** Math.max(0, attempts - 1)) * jitter), retryAfterMs ?? 0)

/** Drops suspects at `location` that the target no longer lists: they are gone, nothing to decide. */
export const withoutVanished = (suspects: ReadonlyArray<Suspect>, location: Location, listed: ReadonlySet<number>) =>
  suspects.filter((s) => locationKey(s.location) !== locationKey(location) || listed.has(s.id))

/** Listed tokens that look like the intent's create (above its watermark, same name, username and scopes). */
export const candidatesFor = (intent: Intent, tokens: ReadonlyArray<DeployToken>): ReadonlyArray<DeployToken> =>
  tokens.filter(
    (t) =>
      t.id > intent.watermark && t.name === intent.name && (intent.username === null || t.username === intent.username) && sameScopes(t.scopes, intent.scopes),
  )

export interface IntentEvidence {
  /** Everything the target lists now. */
  readonly tokens: ReadonlyArray<DeployToken>
  /** Ids other keys of this State track: never ours. */
  readonly othersTrack: ReadonlySet<number>
  /** Another key's open intent carries the same fingerprint at this target. */
  readonly sharedMark: boolean
  readonly now: number
  /** The create can no longer land (its settle time has passed). */
  readonly settled: boolean
}

/**
 * Resolves an open intent from the target's list (the suspect rule): the one token carrying the
 * intent's exact fingerprint that no key tracks is ours and is retired for revocation at once;
 * truly ambiguous look-alikes become suspects; suspects the target no longer lists are dropped.
 * Undefined: nothing to decide yet (another writer resolved it, or the create may still land).
 */
export const resolveIntentDecision = (
  r: StateRecord,
  intent: Intent,
  e: IntentEvidence,
): { readonly record: StateRecord; readonly done: ReadonlyArray<Done> } | undefined => {
  if (r.intent === undefined || r.intent.generation !== intent.generation) return undefined
  const tracked = trackedIds(r)
  const lookalikes = candidatesFor(intent, e.tokens).filter((t) => !tracked.has(t.id) && !e.othersTrack.has(t.id))
  const verdict = (t: DeployToken) => {
    const v = compareFingerprint(intent.expiresAt, t.expiresAt)
    return v === "ours" && e.sharedMark ? "suspect" : v
  }
  const ours = lookalikes.filter((t) => verdict(t) === "ours")
  const maybe = lookalikes.filter((t) => verdict(t) === "suspect")
  // Two exact matches cannot both be ours (one POST per intent): do not guess.
  const certain = ours.length === 1 ? ours : []
  // The create may still land on the server: keep the intent open until it has settled.
  if (certain.length === 0 && !e.settled) return undefined
  const suspects = [...(ours.length > 1 ? ours : []), ...maybe]
  const highest = e.tokens.reduce((m, t) => Math.max(m, t.id), intent.watermark)
  const retired: TokenRecord[] = certain.map((t) => ({
    id: t.id,
    location: intent.location,
    name: t.name,
    username: t.username,
    scopes: [...t.scopes],
    expiresAt: t.expiresAt,
    specHash: intent.specHash,
    generation: intent.generation,
    createdAt: intent.createdAt,
    // Its value was never seen, so no consumer can hold it: revoke at once.
    revokeAfter: e.now,
  }))
  const listed = new Set(e.tokens.map((t) => t.id))
  const { intent: _dropped, ...rest } = r
  const record = withWatermark(
    {
      ...rest,
      retiring: [...r.retiring, ...retired],
      suspects: [
        ...withoutVanished(r.suspects, intent.location, listed),
        ...suspects.map((t) => ({
          id: t.id,
          location: intent.location,
          name: t.name,
          username: t.username,
          generation: intent.generation,
          foundAt: e.now,
        })),
      ],
    },
    intent.location,
    highest,
  )
  return {
    record,
    done: [
      ...certain.map((t): Done => ({ action: "recovered", tokenId: t.id, detail: "created by an interrupted run; revoking" })),
      ...suspects.map((t): Done => ({ action: "suspected", tokenId: t.id, detail: "may be an orphan of an interrupted run; left untouched" })),
    ],
  }
}

/**
 * When an undelivered token may be revoked: at once if the sink certainly never held it (Empty);
 * after the grace if the sink cannot tell (Unknown) or holds an altered credential (another id),
 * since a consumer may be using what it read before.
 */
export const undeliveredRevokeAfter = (held: Held, now: number, graceMs: number): number => (held._tag === "Empty" ? now : now + graceMs)

/** Makes `token` current, delivered at `now`; the previous current retires after the grace (I2). */
export const promote = (r: StateRecord, token: TokenRecord, now: number, graceMs: number): StateRecord => ({
  ...r,
  current: { ...token, deliveredAt: now },
  retiring: r.current ? [...r.retiring, { ...r.current, revokeAfter: now + graceMs }] : r.retiring,
})

/** A token minted by an interrupted run (pending): promoted if the sink holds it, else retired. */
export const settlePending = (r: StateRecord, held: Held, now: number, graceMs: number): { readonly record: StateRecord; readonly done: Done } | undefined => {
  if (r.pending === undefined) return undefined
  const pending = r.pending
  const { pending: _p, ...rest } = r
  if (held._tag === "Holds" && held.tokenId === pending.id) {
    return { record: promote(rest, pending, now, graceMs), done: { action: "delivered", tokenId: pending.id, detail: "sink already holds it" } }
  }
  // The value is gone with the crashed run. If the sink never held it, no consumer can have it.
  return {
    record: { ...rest, retiring: [...rest.retiring, { ...pending, revokeAfter: undeliveredRevokeAfter(held, now, graceMs) }] },
    done: { action: "retired", tokenId: pending.id, detail: "minted by an interrupted run, never delivered" },
  }
}

/** Why the current token must be replaced now, or undefined. */
export const rotationReason = (
  r: StateRecord,
  spec: DeployTokenSpec,
  policy: Policy,
  now: number,
  held: Held,
  forceBefore: number | undefined,
): string | undefined => {
  const cur = r.current
  if (cur === undefined) return "no token yet"
  if (forceBefore !== undefined && cur.createdAt < forceBefore) return "rotation requested"
  if (held._tag === "Empty") return "the sink lost the credential"
  if (held._tag === "Holds" && held.tokenId !== cur.id) return "the sink holds a different credential"
  const policyKind = policy.refreshPolicy ?? "Periodic"
  if (policyKind !== "CreatedOnce" && cur.specHash !== specFingerprint(spec)) return "the spec changed"
  const due = rotationDue(r, spec, policy)
  if (due === undefined || now < due) return undefined
  const refresh = policyKind === "Periodic" && policy.refreshIntervalMs > 0 ? cur.createdAt + policy.refreshIntervalMs : undefined
  return refresh !== undefined && now >= refresh ? "refresh interval elapsed" : "the token expires soon"
}

/** When a retiring token is next worth a DELETE: after its grace, and after its back-off. */
export const revokeDueAt = (t: TokenRecord): number => Math.max(t.revokeAfter ?? 0, t.retryAt ?? 0)

/** When a rotation falls due on schedule (refresh interval, approaching expiry), if ever. */
export const rotationDue = (r: StateRecord, spec: DeployTokenSpec, policy: Policy): number | undefined => {
  const cur = r.current
  if (cur === undefined) return undefined
  const times: number[] = []
  if ((policy.refreshPolicy ?? "Periodic") === "Periodic" && policy.refreshIntervalMs > 0) {
    times.push(cur.createdAt + policy.refreshIntervalMs)
  }
  const exp = expiryMs(cur)
  if (exp !== undefined && spec.expiry.kind === "after" && policy.renewBeforeExpiry !== false) {
    times.push(exp - renewMargin(spec, exp - cur.createdAt))
  }
  return times.length === 0 ? undefined : Math.min(...times)
}

/**
 * When more work can progress: retiring tokens after their grace and back-off, a scheduled
 * rotation (not while an unsettled create blocks it: then the moment it settles), and `extra`
 * deadlines — never sooner than MIN_REVISIT_MS from `now`, so a caller that sleeps until it cannot spin.
 */
export const nextAt = (
  r: StateRecord,
  now: number,
  settleMs: number,
  schedule: { readonly spec: DeployTokenSpec; readonly policy: Policy } | undefined,
  extra: ReadonlyArray<number> = [],
): number | undefined => {
  const due = [
    ...r.retiring.map(revokeDueAt),
    ...(schedule && r.intent === undefined ? [rotationDue(r, schedule.spec, schedule.policy)] : []),
    r.intent ? r.intent.createdAt + settleMs : undefined,
    ...extra,
  ].filter((t): t is number => t !== undefined)
  return due.length === 0 ? undefined : Math.max(Math.min(...due), now + MIN_REVISIT_MS)
}

/** A confirmed revocation (204, or 404 for the id): the token leaves State (I5). */
export const withoutRetiring = (r: StateRecord, tokenId: number): StateRecord | undefined =>
  r.retiring.some((t) => t.id === tokenId) ? { ...r, retiring: r.retiring.filter((t) => t.id !== tokenId) } : undefined

/** A failed revocation: the token stays, with the error, the attempt count and its back-off. */
export const withRevokeFailure = (
  r: StateRecord,
  tokenId: number,
  error: string,
  now: number,
  jitter: number,
  retryAfterMs: number | undefined,
): StateRecord | undefined => {
  const t = r.retiring.find((x) => x.id === tokenId)
  if (t === undefined) return undefined
  const attempts = (t.revokeAttempts ?? 0) + 1
  const retryAt = revokeRetryAt(now, attempts, jitter, retryAfterMs)
  return { ...r, retiring: r.retiring.map((x) => (x.id === tokenId ? { ...x, lastError: error, revokeAttempts: attempts, retryAt } : x)) }
}

/**
 * The consumer is gone: every token retires for revocation now (failed ones after their back-off
 * unless `retryNow`), and the deletion's start is remembered for the bounded suspect wait.
 */
export const retireEverything = (r: StateRecord, now: number, retryNow: boolean): StateRecord | undefined => {
  const all = [...(r.current ? [r.current] : []), ...(r.pending ? [r.pending] : []), ...r.retiring]
  if (all.length === 0 && (r.deletingSince !== undefined || r.suspects.length === 0)) return undefined
  const { current: _c, pending: _p, ...rest } = r
  return {
    ...rest,
    deletingSince: r.deletingSince ?? now,
    retiring: all.map((t) => ({ ...t, revokeAfter: Math.min(t.revokeAfter ?? now, now), ...(retryNow ? { retryAt: now } : {}) })),
  }
}

/** After the bounded wait on a deletion, suspects are released (forgotten, never revoked). */
export const releaseSuspects = (
  r: StateRecord,
  now: number,
  waitMs: number,
): { readonly record: StateRecord; readonly released: ReadonlyArray<Suspect> } | undefined =>
  r.suspects.length === 0 || now < (r.deletingSince ?? now) + waitMs ? undefined : { record: { ...r, suspects: [] }, released: r.suspects }

/** Nothing left to answer for: the record may be removed. */
export const isSettledEmpty = (r: StateRecord): boolean =>
  r.retiring.length === 0 && r.suspects.length === 0 && r.current === undefined && r.pending === undefined && r.intent === undefined
