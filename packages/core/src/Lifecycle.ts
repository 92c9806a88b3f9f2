/**
 * The token lifecycle: reconcile (decide and do the next steps), rotate, revokeAll, recover, sweep.
 *
 * Every transition is a pure function of the latest State record applied with compare-and-set, so a
 * conflict replays the decision against what another writer did instead of acting twice (I4).
 * The order of effects is what keeps the invariants:
 *   intent saved → POST → pending saved → sink written → current saved, old one retiring → DELETE after grace.
 */
import { Clock, Effect, Option, Random } from "effect"
import {
  type GitLabError,
  LifecycleError,
  RateLimited,
  type SinkError,
  type StateBusy,
  StateConflict,
  type StateError,
  TokenNotFound,
  Unavailable,
} from "./Errors.ts"
import { compareFingerprint, fingerprintExpiry, nonceSpan } from "./Fingerprint.ts"
import { type Connection, type DeployToken, GitLab, type MintedToken } from "./GitLab.ts"
import { type Held, Sink } from "./Sink.ts"
import { DEFAULT_GRACE_MS, type DeployTokenSpec, specFingerprint, type Target } from "./Spec.ts"
import { emptyRecord, type Intent, type Location, State, type StateRecord, type Suspect, type TokenRecord } from "./State.ts"

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

/**
 * GitLab's request timeout (Puma worker timeout) is 60 s: a create sent longer ago than that has
 * either been applied or never will be. Before then, "not in the list" does not mean "not created".
 */
export const DEFAULT_CREATE_SETTLE_MS = 60_000

/** First wait after a failed revocation; doubles per attempt (±20 % jitter) up to the cap. */
export const REVOKE_BACKOFF_BASE_MS = 30_000
export const REVOKE_BACKOFF_CAP_MS = 3_600_000
/** A report never asks to come back sooner than this: work that cannot progress must not spin. */
export const MIN_REVISIT_MS = 1_000
/** How long revokeAll keeps a deleted consumer's suspects for a person to decide before releasing them. */
export const DEFAULT_SUSPECT_WAIT_MS = 3_600_000

export interface Job {
  readonly key: string
  readonly spec: DeployTokenSpec
  readonly connection: Connection
  readonly policy: Policy
}

export type Action = "minted" | "rotated" | "delivered" | "revoked" | "recovered" | "retired" | "suspected" | "released" | "forgotten"

export interface Report {
  readonly key: string
  /** What this run did, in order, with token ids (never values). */
  readonly actions: ReadonlyArray<{ readonly action: Action; readonly tokenId: number; readonly detail?: string }>
  /** Revocations that failed and stay tracked (I5). */
  readonly revokeErrors: ReadonlyArray<{ readonly tokenId: number; readonly error: string }>
  /** Why a rotation happened, if one did. */
  readonly reason: string | undefined
  /** When the next reconcile has work to do (ms since epoch), if ever. */
  readonly nextAt: number | undefined
  /** A create's outcome is still unknown (it may land on the server until it settles); nothing new is minted meanwhile. */
  readonly openIntent: boolean
  readonly currentTokenId: number | undefined
  /** Ids of tokens kept as suspects (ambiguous look-alikes a person must decide on). */
  readonly suspects?: ReadonlyArray<number> | undefined
}

export type LifecycleFailure = GitLabError | SinkError | StateError | StateBusy | StateConflict | LifecycleError

const MAX_STEPS = 16
const CAS_ATTEMPTS = 8

export const locationKey = (l: Location): string => `${l.url}|${l.target.kind}|${l.target.id}`
const isNumericId = (id: string) => /^\d+$/.test(id)
const targetKey = (url: string, target: Target) => `${url}|${target.kind}|${target.id}`

/** The spec's target by numeric id, if it is one or was resolved before; else undefined. */
const locationOf = (spec: DeployTokenSpec, record: StateRecord): Location | undefined => {
  const id = isNumericId(spec.target.id) ? spec.target.id : record.targets?.[targetKey(spec.url, spec.target)]
  return id === undefined ? undefined : { url: spec.url, target: { kind: spec.target.kind, id }, auth: spec.auth.secretRef }
}
const connectionFor = (conn: Connection, l: Location): Connection => ({ ...conn, url: l.url })

/**
 * The access token is only ever sent to the instance it was given for. A token recorded at another
 * URL (the spec's url changed) must be handled with that instance's manifest.
 */
const otherInstance = (conn: Connection, l: Location): string | undefined =>
  l.url === conn.url
    ? undefined
    : `it lives at ${l.url}, not ${conn.url}; gldt will not send this access token to another GitLab instance — run gldt recover or revoke with a manifest for ${l.url}, or revoke it in GitLab`

const trackedIds = (r: StateRecord): Set<number> =>
  new Set([
    ...(r.current ? [r.current.id] : []),
    ...(r.pending ? [r.pending.id] : []),
    ...r.retiring.map((t) => t.id),
    ...r.suspects.map((s) => s.id),
  ])

/** Records `id` as seen at `l` (the watermark only rises; the key is present afterwards). */
const withWatermark = (r: StateRecord, l: Location, id: number): StateRecord => {
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

const sameScopes = (a: ReadonlyArray<string>, b: ReadonlyArray<string>) =>
  a.length === b.length && [...a].sort().every((s, i) => s === [...b].sort()[i])

const describe = (e: { readonly _tag: string; readonly message: string }) => `${e._tag}: ${e.message}`

/** When a failed revocation may be tried again: exponential back-off with jitter, or later if GitLab asked. */
export const revokeRetryAt = (now: number, attempts: number, jitter: number, retryAfterMs?: number): number =>
  now +
  Math.max(
    Math.round(Math.min(REVOKE_BACKOFF_CAP_MS, REVOKE_BACKOFF_BASE_MS * 2 ** Math.max(0, attempts - 1)) * jitter),
    retryAfterMs ?? 0,
  )

interface Ctx {
  readonly job: Pick<Job, "key" | "connection">
  readonly settleMs: number
  readonly actions: Array<Report["actions"][number]>
  readonly revokeErrors: Array<Report["revokeErrors"][number]>
}

/** Loads the record (or an empty one) with its version. */
const load = (key: string) =>
  Effect.gen(function* () {
    const state = yield* State
    const found = yield* state.load(key)
    return Option.match(found, {
      onNone: () => ({ record: emptyRecord(key), version: null as string | null }),
      onSome: (v) => ({ record: v.record, version: v.version as string | null }),
    })
  })

/**
 * Applies `f` to the latest record with compare-and-set, replaying on conflict.
 * `f` returns undefined to leave the record unchanged.
 */
const modify = <A>(key: string, f: (r: StateRecord) => { readonly record: StateRecord; readonly result: A } | undefined) =>
  Effect.gen(function* () {
    const state = yield* State
    for (let attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
      const { record, version } = yield* load(key)
      const next = f(record)
      if (next === undefined) return Option.none<A>()
      const saved = yield* Effect.result(state.save(key, next.record, version))
      if (saved._tag === "Success") return Option.some(next.result)
      if (saved.failure._tag !== "StateConflict") return yield* Effect.fail(saved.failure)
    }
    return yield* Effect.fail(new StateConflict({ key }))
  })

/**
 * What every other key of this State holds: the ids it tracks, and the fingerprints of its open
 * intents. Recovery never calls another key's token ours (issue: several keys share one target).
 */
const otherKeys = (key: string) =>
  Effect.gen(function* () {
    const state = yield* State
    const ids = new Set<number>()
    const intents = new Set<string>()
    for (const k of yield* state.list()) {
      if (k === key) continue
      const found = yield* state.load(k)
      if (Option.isNone(found)) continue
      for (const id of trackedIds(found.value.record)) ids.add(id)
      const intent = found.value.record.intent
      if (intent?.expiresAt) intents.add(`${locationKey(intent.location)}|${Date.parse(intent.expiresAt)}`)
    }
    return { ids, intents }
  })

/** Drops suspects at `location` that the target no longer lists: they are gone, nothing to decide. */
const withoutVanished = (suspects: ReadonlyArray<Suspect>, location: Location, listed: ReadonlySet<number>) =>
  suspects.filter((s) => locationKey(s.location) !== locationKey(location) || listed.has(s.id))

/**
 * Resolves an intent whose create outcome is unknown: lists the target and finds the token it made,
 * if any. The one token carrying the intent's exact fingerprint (see Fingerprint.ts) that no key of
 * this State tracks is ours and is revoked; look-alikes that cannot be told apart (several exact
 * matches, another key's open intent with the same mark, or a GitLab that dropped precision) are
 * kept as suspects and never touched (I1, I3).
 */
const resolveIntent = (ctx: Ctx, intent: Intent) =>
  Effect.gen(function* () {
    const elsewhere = otherInstance(ctx.job.connection, intent.location)
    if (elsewhere !== undefined) {
      return yield* new LifecycleError({ key: ctx.job.key, message: `an interrupted create cannot be checked: ${elsewhere}` })
    }
    const gitlab = yield* GitLab
    const tokens = yield* gitlab.list(connectionFor(ctx.job.connection, intent.location), intent.location.target)
    const now = yield* Clock.currentTimeMillis
    const settled = now >= intent.createdAt + ctx.settleMs
    const listed = new Set(tokens.map((t) => t.id))
    const candidates = tokens.filter(
      (t) =>
        t.id > intent.watermark &&
        t.name === intent.name &&
        (intent.username === null || t.username === intent.username) &&
        sameScopes(t.scopes, intent.scopes),
    )
    // Only read the other keys when something could be confused with theirs.
    const others = candidates.length === 0 ? { ids: new Set<number>(), intents: new Set<string>() } : yield* otherKeys(ctx.job.key)
    const sharedMark =
      intent.expiresAt !== null && others.intents.has(`${locationKey(intent.location)}|${Date.parse(intent.expiresAt)}`)
    const outcome = yield* modify(ctx.job.key, (r) => {
      if (r.intent === undefined || r.intent.generation !== intent.generation) return undefined
      const tracked = trackedIds(r)
      const lookalikes = candidates.filter((t) => !tracked.has(t.id) && !others.ids.has(t.id))
      const verdict = (t: DeployToken) => {
        const v = compareFingerprint(intent.expiresAt, t.expiresAt)
        return v === "ours" && sharedMark ? "suspect" : v
      }
      const ours = lookalikes.filter((t) => verdict(t) === "ours")
      const maybe = lookalikes.filter((t) => verdict(t) === "suspect")
      // Two exact matches cannot both be ours (one POST per intent): do not guess.
      const certain = ours.length === 1 ? ours : []
      // The create may still land on the server: keep the intent open until it has settled.
      if (certain.length === 0 && !settled) return undefined
      const suspects = [...(ours.length > 1 ? ours : []), ...maybe]
      const highest = tokens.reduce((m, t) => Math.max(m, t.id), intent.watermark)
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
        revokeAfter: now,
      }))
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
              foundAt: now,
            })),
          ],
        },
        intent.location,
        highest,
      )
      return { record, result: { recovered: certain.map((t) => t.id), suspected: suspects.map((t) => t.id) } }
    }).pipe(
      Effect.tap((res) =>
        Effect.sync(() =>
          Option.map(res, ({ recovered, suspected }) => {
            for (const id of recovered) ctx.actions.push({ action: "recovered", tokenId: id, detail: "created by an interrupted run; revoking" })
            for (const id of suspected) ctx.actions.push({ action: "suspected", tokenId: id, detail: "may be an orphan of an interrupted run; left untouched" })
          }),
        ),
      ),
    )
    return Option.isSome(outcome) ? ("resolved" as const) : ("unsettled" as const)
  })

/**
 * Lists each target (at this instance) that holds suspects and drops the suspects it no longer
 * lists. Best effort: a failing list leaves them for next time.
 */
const pruneSuspects = (ctx: Ctx) =>
  Effect.gen(function* () {
    const gitlab = yield* GitLab
    const { record } = yield* load(ctx.job.key)
    const locations = new Map<string, Location>()
    for (const s of record.suspects) {
      if (otherInstance(ctx.job.connection, s.location) === undefined) locations.set(locationKey(s.location), s.location)
    }
    for (const location of locations.values()) {
      const listed = yield* gitlab.list(connectionFor(ctx.job.connection, location), location.target).pipe(Effect.option)
      if (Option.isNone(listed)) continue
      const ids = new Set(listed.value.map((t) => t.id))
      yield* modify(ctx.job.key, (r) => {
        const kept = withoutVanished(r.suspects, location, ids)
        return kept.length === r.suspects.length ? undefined : { record: { ...r, suspects: kept }, result: undefined }
      })
    }
  })

/**
 * When an undelivered token may be revoked: at once if the sink certainly never held it (Empty);
 * after the grace if the sink cannot tell (Unknown) or holds an altered credential (another id),
 * since a consumer may be using what it read before.
 */
const undeliveredRevokeAfter = (held: Held, now: number, graceMs: number): number => (held._tag === "Empty" ? now : now + graceMs)

/** A minted token whose delivery was never confirmed (a crash after the create): promote or retire it. */
const resolvePending = (ctx: Ctx, graceMs: number) =>
  Effect.gen(function* () {
    const sink = yield* Sink
    const held = yield* sink.inspect(ctx.job.key).pipe(Effect.orElseSucceed((): Held => ({ _tag: "Unknown" })))
    const now = yield* Clock.currentTimeMillis
    const outcome = yield* modify<Report["actions"][number]>(ctx.job.key, (r) => {
      if (r.pending === undefined) return undefined
      const pending = r.pending
      const { pending: _p, ...rest } = r
      if (held._tag === "Holds" && held.tokenId === pending.id) {
        return { record: promote(rest, pending, now, graceMs), result: { action: "delivered", tokenId: pending.id, detail: "sink already holds it" } }
      }
      // The value is gone with the crashed run. If the sink never held it, no consumer can have it.
      const revokeAfter = undeliveredRevokeAfter(held, now, graceMs)
      return {
        record: { ...rest, retiring: [...rest.retiring, { ...pending, revokeAfter }] },
        result: { action: "retired", tokenId: pending.id, detail: "minted by an interrupted run, never delivered" },
      }
    })
    if (Option.isSome(outcome)) ctx.actions.push(outcome.value)
  })

/** Makes `token` current, delivered at `now`; the previous current retires after the grace (I2). */
const promote = (r: StateRecord, token: TokenRecord, now: number, graceMs: number): StateRecord => ({
  ...r,
  current: { ...token, deliveredAt: now },
  retiring: r.current ? [...r.retiring, { ...r.current, revokeAfter: now + graceMs }] : r.retiring,
})

/** Why the current token must be replaced now, or undefined. */
const rotationReason = (
  r: StateRecord,
  spec: DeployTokenSpec,
  policy: Policy,
  now: number,
  held: { readonly _tag: string; readonly tokenId?: number },
  forceBefore: number | undefined,
): string | undefined => {
  const cur = r.current
  if (cur === undefined) return "no token yet"
  if (forceBefore !== undefined && cur.createdAt < forceBefore) return "rotation requested"
  if (held._tag === "Empty") return "the sink lost the credential"
  if (held._tag === "Holds" && held.tokenId !== cur.id) return "the sink holds a different credential"
  const policyKind = policy.refreshPolicy ?? "Periodic"
  if (policyKind !== "CreatedOnce" && cur.specHash !== specFingerprint(spec)) return "the spec changed"
  if (policyKind === "Periodic" && policy.refreshIntervalMs > 0 && now >= cur.createdAt + policy.refreshIntervalMs) {
    return "refresh interval elapsed"
  }
  const exp = expiryMs(cur)
  if (exp !== undefined && spec.expiry.kind === "after" && policy.renewBeforeExpiry !== false) {
    if (now >= exp - renewMargin(spec, exp - cur.createdAt)) return "the token expires soon"
  }
  return undefined
}

/** When a retiring token is next worth a DELETE: after its grace, and after its back-off. */
const revokeDueAt = (t: TokenRecord): number => Math.max(t.revokeAfter ?? 0, t.retryAt ?? 0)

/** When a rotation falls due on schedule (refresh interval, approaching expiry), if ever. */
const rotationDue = (r: StateRecord, spec: DeployTokenSpec, policy: Policy): number | undefined => {
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

/** Revokes one token at its persisted location; confirmed on 204 or 404 "Not found" only (I5). */
const revokeOne = (ctx: Ctx, token: TokenRecord) =>
  Effect.gen(function* () {
    const gitlab = yield* GitLab
    const elsewhere = otherInstance(ctx.job.connection, token.location)
    const outcome = yield* Effect.result(
      Effect.gen(function* () {
        if (elsewhere !== undefined) {
          return yield* new LifecycleError({ key: ctx.job.key, message: `token ${token.id} cannot be revoked here: ${elsewhere}` })
        }
        return yield* gitlab.revoke(connectionFor(ctx.job.connection, token.location), token.location.target, token.id)
      }).pipe(
        Effect.catchIf(
          (e): e is TokenNotFound => e instanceof TokenNotFound,
          () => Effect.void,
        ),
      ),
    )
    if (outcome._tag === "Success") {
      yield* modify(ctx.job.key, (r) =>
        r.retiring.some((t) => t.id === token.id)
          ? { record: { ...r, retiring: r.retiring.filter((t) => t.id !== token.id) }, result: undefined }
          : undefined,
      )
      ctx.actions.push({ action: "revoked", tokenId: token.id })
      yield* Effect.logInfo("revoked deploy token").pipe(Effect.annotateLogs({ key: ctx.job.key, tokenId: token.id }))
      return
    }
    const error = describe(outcome.failure)
    const now = yield* Clock.currentTimeMillis
    const jitter = 0.8 + 0.4 * (yield* Random.next)
    const retryAfterMs = outcome.failure instanceof RateLimited ? outcome.failure.retryAfterMs : undefined
    ctx.revokeErrors.push({ tokenId: token.id, error })
    const saved = yield* modify(ctx.job.key, (r) => {
      const t = r.retiring.find((x) => x.id === token.id)
      if (t === undefined) return undefined
      const attempts = (t.revokeAttempts ?? 0) + 1
      const retryAt = revokeRetryAt(now, attempts, jitter, retryAfterMs)
      return {
        record: { ...r, retiring: r.retiring.map((x) => (x.id === token.id ? { ...x, lastError: error, revokeAttempts: attempts, retryAt } : x)) },
        result: { attempts, retryAt },
      }
    })
    yield* Effect.logWarning("revocation failed; token stays tracked").pipe(
      Effect.annotateLogs({
        key: ctx.job.key,
        tokenId: token.id,
        error,
        ...(Option.isSome(saved) ? { attempts: saved.value.attempts, retryAt: new Date(saved.value.retryAt).toISOString() } : {}),
      }),
    )
  })

/** Revokes every retiring token whose grace and back-off have passed. */
const revokeDue = (ctx: Ctx) =>
  Effect.gen(function* () {
    const now = yield* Clock.currentTimeMillis
    const { record } = yield* load(ctx.job.key)
    for (const token of record.retiring) {
      if (revokeDueAt(token) <= now) yield* revokeOne(ctx, token)
    }
  })

/** The spec's target by numeric id, resolving (one GET) and persisting a path before its first use. */
const resolveLocation = (job: Pick<Job, "key" | "connection" | "spec">) =>
  Effect.gen(function* () {
    const known = locationOf(job.spec, (yield* load(job.key)).record)
    if (known !== undefined) return known
    const gitlab = yield* GitLab
    const resolved = yield* gitlab.resolveTarget(connectionFor(job.connection, { url: job.spec.url, target: job.spec.target }), job.spec.target)
    const k = targetKey(job.spec.url, job.spec.target)
    yield* modify(job.key, (r) =>
      r.targets?.[k] === resolved.id ? undefined : { record: { ...r, targets: { ...r.targets, [k]: resolved.id } }, result: undefined },
    )
    yield* Effect.logInfo("resolved the target to its numeric id").pipe(
      Effect.annotateLogs({ key: job.key, target: `${job.spec.target.kind} ${job.spec.target.id}`, id: resolved.id }),
    )
    return { url: job.spec.url, target: { kind: job.spec.target.kind, id: resolved.id }, auth: job.spec.auth.secretRef } satisfies Location
  })

const NONCE_DRAWS = 8

/** Draws a fingerprint no other key of this State uses at `location` (open intents and tracked tokens). */
const freshFingerprint = (job: Job, location: Location, now: number) =>
  Effect.gen(function* () {
    const state = yield* State
    const taken = new Set<number>()
    for (const k of yield* state.list()) {
      const found = yield* state.load(k)
      if (Option.isNone(found)) continue
      const r = found.value.record
      const marks = [
        ...(r.intent && locationKey(r.intent.location) === locationKey(location) ? [r.intent.expiresAt] : []),
        ...[r.current, r.pending, ...r.retiring]
          .filter((t): t is TokenRecord => t !== undefined && locationKey(t.location) === locationKey(location))
          .map((t) => t.expiresAt),
      ]
      for (const m of marks) if (m !== null) taken.add(Date.parse(m))
    }
    const span = nonceSpan(job.spec, now)
    let expiresAt = fingerprintExpiry(job.spec, now, yield* Random.nextIntBetween(1, span + 1))
    for (let draw = 1; draw < NONCE_DRAWS && taken.has(Date.parse(expiresAt)); draw++) {
      expiresAt = fingerprintExpiry(job.spec, now, yield* Random.nextIntBetween(1, span + 1))
    }
    return expiresAt
  })

/**
 * Mints one token for a fresh decision, delivers it, retires the previous one.
 * Returns false when another writer made the decision first (nothing minted).
 */
const mintAndDeliver = (ctx: Ctx, job: Job, reason: string) =>
  Effect.gen(function* () {
    const gitlab = yield* GitLab
    const sink = yield* Sink
    // No token is minted that cannot be delivered.
    yield* sink.check(job.key)
    const location = yield* resolveLocation(job)
    let { record } = yield* load(job.key)
    if (record.watermarks[locationKey(location)] === undefined) {
      // First mint at this target: learn its highest id so recovery never considers older look-alikes.
      const existing = yield* gitlab.list(connectionFor(job.connection, location), location.target)
      const highest = existing.reduce((m, t) => Math.max(m, t.id), 0)
      yield* modify(job.key, (r) => ({ record: withWatermark(r, location, highest), result: undefined }))
      record = (yield* load(job.key)).record
    }
    const now = yield* Clock.currentTimeMillis
    const expiresAt = yield* freshFingerprint(job, location, now)
    const specHash = specFingerprint(job.spec)
    const decided = yield* modify(job.key, (r) => {
      // Re-decide on the latest record: another writer may have minted meanwhile (I4).
      if (r.intent !== undefined || r.pending !== undefined || r.generation !== record.generation) return undefined
      const intent: Intent = {
        generation: r.generation + 1,
        location,
        name: job.spec.name,
        username: job.spec.username ?? null,
        scopes: [...job.spec.scopes],
        expiresAt,
        specHash,
        watermark: r.watermarks[locationKey(location)] ?? 0,
        createdAt: now,
      }
      return { record: { ...r, generation: intent.generation, intent }, result: intent }
    })
    if (Option.isNone(decided)) return false
    const intent = decided.value
    const created = yield* Effect.result(
      gitlab.create(connectionFor(job.connection, location), location.target, {
        name: intent.name,
        scopes: job.spec.scopes,
        username: intent.username ?? undefined,
        expiresAt: intent.expiresAt ?? undefined,
      }),
    )
    if (created._tag === "Failure") {
      const e = created.failure
      if (e instanceof Unavailable && e.maybeApplied) {
        // Never re-send a create whose outcome is unknown: find out what it did.
        yield* resolveIntent(ctx, intent).pipe(Effect.ignore)
        yield* revokeDue(ctx).pipe(Effect.ignore)
      } else {
        yield* modify(job.key, (r) => {
          if (r.intent?.generation !== intent.generation) return undefined
          const { intent: _i, ...rest } = r
          return { record: { ...rest, lastError: describe(e) }, result: undefined }
        })
      }
      return yield* Effect.fail(e)
    }
    const minted: MintedToken = created.success
    const token: TokenRecord = {
      id: minted.id,
      location,
      name: minted.name,
      username: minted.username,
      scopes: [...minted.scopes],
      expiresAt: minted.expiresAt,
      specHash,
      generation: intent.generation,
      createdAt: now,
    }
    const recorded = yield* Effect.result(
      modify(job.key, (r) => {
        if (r.intent?.generation !== intent.generation) return undefined
        const { intent: _i, ...rest } = r
        return { record: withWatermark({ ...rest, pending: token }, location, minted.id), result: undefined }
      }),
    )
    if (recorded._tag === "Failure") {
      // State refused the pending record: the id is known, the value was never delivered, so no
      // consumer can hold it. Revoke it now rather than leave it to recovery (the open intent's
      // fingerprint still lets recovery find it if this DELETE fails too).
      const revoked = yield* Effect.result(
        gitlab.revoke(connectionFor(job.connection, location), location.target, minted.id).pipe(
          Effect.catchIf(
            (e): e is TokenNotFound => e instanceof TokenNotFound,
            () => Effect.void,
          ),
        ),
      )
      if (revoked._tag === "Success") ctx.actions.push({ action: "revoked", tokenId: minted.id, detail: "State could not record it; never delivered" })
      yield* Effect.logWarning(
        revoked._tag === "Success"
          ? "State could not record a minted token; revoked it at once"
          : "State could not record a minted token and revoking it failed; recovery will find it by its fingerprint",
      ).pipe(Effect.annotateLogs({ key: job.key, tokenId: minted.id }))
      return yield* Effect.fail(recorded.failure)
    }
    if (Option.isNone(recorded.success)) {
      // Another writer resolved our intent meanwhile: keep the token tracked (I1) and revoke it,
      // since nobody will deliver it.
      yield* modify(job.key, (r) =>
        trackedIds(r).has(token.id) ? undefined : { record: { ...r, retiring: [...r.retiring, { ...token, revokeAfter: now }] }, result: undefined },
      )
      yield* revokeDue(ctx).pipe(Effect.ignore)
      return yield* Effect.fail(new LifecycleError({ key: job.key, message: `intent of token ${minted.id} was taken over by another writer` }))
    }
    yield* Effect.logInfo("minted deploy token").pipe(Effect.annotateLogs({ key: job.key, tokenId: minted.id, reason }))
    ctx.actions.push({ action: record.current ? "rotated" : "minted", tokenId: minted.id, detail: reason })
    const delivered = yield* Effect.result(
      sink.deliver(job.key, { username: minted.username, token: minted.token, tokenId: minted.id, gitlabUrl: location.url }),
    )
    const at = yield* Clock.currentTimeMillis
    if (delivered._tag === "Failure") {
      const held = yield* sink.inspect(job.key).pipe(Effect.orElseSucceed((): Held => ({ _tag: "Unknown" })))
      yield* modify(job.key, (r) => {
        if (r.pending?.id !== token.id) return undefined
        const { pending: _p, ...rest } = r
        if (held._tag === "Holds" && held.tokenId === token.id) return { record: promote(rest, token, at, job.policy.graceMs), result: undefined }
        const revokeAfter = undeliveredRevokeAfter(held, at, job.policy.graceMs)
        return { record: { ...rest, lastError: describe(delivered.failure), retiring: [...rest.retiring, { ...token, revokeAfter }] }, result: undefined }
      })
      yield* revokeDue(ctx)
      return yield* Effect.fail(delivered.failure)
    }
    yield* modify(job.key, (r) => {
      if (r.pending?.id !== token.id) return undefined
      const { pending: _p, lastError: _e, ...rest } = r
      return { record: promote(rest, token, at, job.policy.graceMs), result: undefined }
    })
    ctx.actions.push({ action: "delivered", tokenId: minted.id })
    return true
  })

/**
 * Resolves interrupted work: an open intent, then an undelivered token. Returns the intent that is
 * still unsettled, if any; with `wait`, sleeps until it has settled instead.
 */
const finishInterrupted = (ctx: Ctx, graceMs: number, wait = false) =>
  Effect.gen(function* () {
    for (let step = 0; step < MAX_STEPS; step++) {
      const { record } = yield* load(ctx.job.key)
      if (record.intent !== undefined) {
        if ((yield* resolveIntent(ctx, record.intent)) === "unsettled") {
          if (!wait) return record.intent
          const now = yield* Clock.currentTimeMillis
          yield* Effect.logInfo("waiting for an interrupted create to settle").pipe(
            Effect.annotateLogs({ key: ctx.job.key, generation: record.intent.generation }),
          )
          yield* Effect.sleep(Math.max(1, record.intent.createdAt + ctx.settleMs - now))
        }
      } else if (record.pending !== undefined) yield* resolvePending(ctx, graceMs)
      else return undefined
    }
    return (yield* load(ctx.job.key)).record.intent
  })

/**
 * The report of a run. `nextAt` is when more work can progress: retiring tokens after their grace
 * and back-off, a scheduled rotation (not while an unsettled create blocks it: then the moment it
 * settles), never sooner than MIN_REVISIT_MS from now.
 */
const report = (ctx: Ctx, reason: string | undefined, spec: DeployTokenSpec | undefined, policy: Policy | undefined, extraDue: ReadonlyArray<number> = []) =>
  Effect.gen(function* () {
    const { record } = yield* load(ctx.job.key)
    const now = yield* Clock.currentTimeMillis
    const due = [
      ...record.retiring.map(revokeDueAt),
      ...(spec && policy && record.intent === undefined ? [rotationDue(record, spec, policy)] : []),
      record.intent ? record.intent.createdAt + ctx.settleMs : undefined,
      ...extraDue,
    ].filter((t): t is number => t !== undefined)
    return {
      key: ctx.job.key,
      actions: ctx.actions,
      revokeErrors: ctx.revokeErrors,
      reason,
      openIntent: record.intent !== undefined,
      nextAt: due.length === 0 ? undefined : Math.max(Math.min(...due), now + MIN_REVISIT_MS),
      currentTokenId: record.current?.id,
      suspects: record.suspects.map((s) => s.id),
    } satisfies Report
  })

const newCtx = (job: Pick<Job, "key" | "connection">, settleMs: number | undefined): Ctx => ({
  job,
  settleMs: settleMs ?? DEFAULT_CREATE_SETTLE_MS,
  actions: [],
  revokeErrors: [],
})

const run = (job: Job, forceBefore: number | undefined) =>
  Effect.gen(function* () {
    const state = yield* State
    const sink = yield* Sink
    return yield* state.withLock(
      job.key,
      Effect.gen(function* () {
        const ctx = newCtx(job, job.policy.createSettleMs)
        const open = yield* finishInterrupted(ctx, job.policy.graceMs)
        const { record } = yield* load(job.key)
        const held = yield* sink.inspect(job.key)
        const now = yield* Clock.currentTimeMillis
        const reason = rotationReason(record, job.spec, job.policy, now, held, forceBefore)
        // While a create's outcome is unknown, minting again could make two tokens for one decision (I4).
        if (reason !== undefined && open === undefined) yield* mintAndDeliver(ctx, job, reason)
        yield* revokeDue(ctx)
        return yield* report(ctx, reason, job.spec, job.policy)
      }),
    )
  }).pipe(Effect.annotateLogs({ key: job.key }))

/**
 * Brings the key to its desired state: finishes interrupted work, mints/rotates when a trigger holds
 * (no token, spec change, refresh interval, sink lost or altered, expiry approaching), and revokes
 * retired tokens whose grace (and back-off after a failure) has passed. A no-op reconcile makes no
 * GitLab call.
 */
export const reconcile = (job: Job): Effect.Effect<Report, LifecycleFailure, State | Sink | GitLab> => run(job, undefined)

/**
 * Rotates now unless a token was minted at or after `requestedAt` (so two concurrent requests mint once).
 */
export const rotate = (job: Job, requestedAt: number): Effect.Effect<Report, LifecycleFailure, State | Sink | GitLab> =>
  run(job, requestedAt)

export interface RecoverOptions {
  readonly graceMs?: number | undefined
  readonly createSettleMs?: number | undefined
  /** Sleep until an interrupted create has settled instead of leaving its intent open. */
  readonly waitForSettle?: boolean | undefined
}

/**
 * Finishes or undoes interrupted work (I1): resolves an open intent (revoking the token a lost
 * create made, keeping unprovable look-alikes as suspects), settles an undelivered token, drops
 * suspects GitLab no longer lists, and revokes retired tokens whose grace has passed. Needs no
 * writable sink: it only inspects it.
 */
export const recover = (job: Pick<Job, "key" | "connection">, options: RecoverOptions = {}) =>
  Effect.gen(function* () {
    const state = yield* State
    return yield* state.withLock(
      job.key,
      Effect.gen(function* () {
        const ctx = newCtx(job, options.createSettleMs)
        yield* finishInterrupted(ctx, options.graceMs ?? DEFAULT_GRACE_MS, options.waitForSettle ?? false)
        yield* pruneSuspects(ctx)
        yield* revokeDue(ctx)
        return yield* report(ctx, undefined, undefined, undefined)
      }),
    )
  })

export interface RevokeAllOptions {
  readonly removeFromSink?: boolean
  readonly createSettleMs?: number | undefined
  /**
   * How long after the consumer's first revokeAll its suspects are kept for a person to decide
   * (`gldt suspects`); after that they are released (forgotten, never revoked) with a warning, so
   * a deletion never hangs forever. Default DEFAULT_SUSPECT_WAIT_MS.
   */
  readonly suspectWaitMs?: number | undefined
  /** Try failed revocations now instead of after their back-off (a person asked). */
  readonly retryNow?: boolean | undefined
}

/**
 * The consumer is gone: revoke every token of the key, remove the sink's credential if asked, and drop
 * the record once nothing is left. Tokens whose revocation fails stay tracked (I5). Suspects that
 * GitLab no longer lists are dropped; the rest stay listed for a person to decide until the bounded
 * `suspectWaitMs` has passed, then they are released with a warning naming their ids. The report's
 * `nextAt` says when to call again.
 */
export const revokeAll = (job: Pick<Job, "key" | "connection">, options: RevokeAllOptions = {}) =>
  Effect.gen(function* () {
    const state = yield* State
    const sink = yield* Sink
    return yield* state.withLock(
      job.key,
      Effect.gen(function* () {
        const ctx = newCtx(job, options.createSettleMs)
        // Everything is revoked at once: the consumer no longer exists. An unsettled create is waited for.
        yield* finishInterrupted(ctx, 0, true)
        const now = yield* Clock.currentTimeMillis
        yield* modify(job.key, (r) => {
          const all = [...(r.current ? [r.current] : []), ...(r.pending ? [r.pending] : []), ...r.retiring]
          if (all.length === 0 && (r.deletingSince !== undefined || r.suspects.length === 0)) return undefined
          const { current: _c, pending: _p, ...rest } = r
          return {
            record: {
              ...rest,
              deletingSince: r.deletingSince ?? now,
              retiring: all.map((t) => ({ ...t, revokeAfter: Math.min(t.revokeAfter ?? now, now), ...(options.retryNow ? { retryAt: now } : {}) })),
            },
            result: undefined,
          }
        })
        if (options.removeFromSink) yield* sink.remove(job.key)
        yield* revokeDue(ctx)
        if ((yield* load(job.key)).record.suspects.length > 0) yield* pruneSuspects(ctx)
        const waitMs = options.suspectWaitMs ?? DEFAULT_SUSPECT_WAIT_MS
        const at = yield* Clock.currentTimeMillis
        const released = yield* modify(job.key, (r) => {
          if (r.suspects.length === 0 || at < (r.deletingSince ?? at) + waitMs) return undefined
          return { record: { ...r, suspects: [] }, result: r.suspects }
        })
        if (Option.isSome(released)) {
          const ids = released.value.map((s) => s.id)
          for (const id of ids) {
            ctx.actions.push({ action: "released", tokenId: id, detail: "suspect released after the wait on consumer deletion; still live in GitLab unless revoked there" })
          }
          yield* Effect.logWarning("releasing suspects of a deleted consumer; they stay live in GitLab unless a person revokes them").pipe(
            Effect.annotateLogs({ key: job.key, tokenIds: ids.join(","), waitedMs: waitMs }),
          )
        }
        const latest = yield* state.load(job.key)
        let suspectDue: number | undefined
        if (Option.isSome(latest)) {
          const r = latest.value.record
          if (r.retiring.length === 0 && r.suspects.length === 0 && r.current === undefined && r.pending === undefined && r.intent === undefined) {
            yield* state.remove(job.key, latest.value.version)
            return {
              key: job.key,
              actions: ctx.actions,
              revokeErrors: ctx.revokeErrors,
              reason: "consumer deleted",
              openIntent: false,
              nextAt: undefined,
              currentTokenId: undefined,
              suspects: [],
            } satisfies Report
          }
          if (r.suspects.length > 0) suspectDue = (r.deletingSince ?? at) + waitMs
        }
        return yield* report(ctx, "consumer deleted", undefined, undefined, suspectDue === undefined ? [] : [suspectDue])
      }),
    )
  })

/** A suspect of `key`, or a LifecycleError naming how to list them. */
const findSuspect = (key: string, r: StateRecord, tokenId: number) =>
  Effect.gen(function* () {
    const suspect = r.suspects.find((s) => s.id === tokenId)
    if (suspect !== undefined) return suspect
    const known = r.suspects.map((s) => s.id)
    return yield* new LifecycleError({
      key,
      message: `token ${tokenId} is not a suspect of ${key}${known.length === 0 ? " (it has none)" : ` (its suspects: ${known.join(", ")})`}; gldt suspects lists them`,
    })
  })

/**
 * A person decided a suspect is ours: revoke it at its recorded location and stop tracking it once
 * GitLab confirms (204, or 404 for the id).
 */
export const revokeSuspect = (job: Pick<Job, "key" | "connection">, tokenId: number) =>
  Effect.gen(function* () {
    const state = yield* State
    return yield* state.withLock(
      job.key,
      Effect.gen(function* () {
        const ctx = newCtx(job, undefined)
        const suspect = yield* findSuspect(job.key, (yield* load(job.key)).record, tokenId)
        const elsewhere = otherInstance(job.connection, suspect.location)
        if (elsewhere !== undefined) return yield* new LifecycleError({ key: job.key, message: `suspect ${tokenId} cannot be revoked here: ${elsewhere}` })
        const gitlab = yield* GitLab
        yield* gitlab.revoke(connectionFor(job.connection, suspect.location), suspect.location.target, tokenId).pipe(
          Effect.catchIf(
            (e): e is TokenNotFound => e instanceof TokenNotFound,
            () => Effect.void,
          ),
        )
        yield* modify(job.key, (r) => ({ record: { ...r, suspects: r.suspects.filter((s) => s.id !== tokenId) }, result: undefined }))
        ctx.actions.push({ action: "revoked", tokenId, detail: "suspect revoked on request" })
        yield* Effect.logInfo("revoked suspect on request").pipe(Effect.annotateLogs({ key: job.key, tokenId }))
        return yield* report(ctx, "suspect revoked", undefined, undefined)
      }),
    )
  })

/** A person decided a suspect is not ours: stop tracking it; GitLab is not touched. */
export const forgetSuspect = (key: string, tokenId: number) =>
  Effect.gen(function* () {
    const state = yield* State
    return yield* state.withLock(
      key,
      Effect.gen(function* () {
        yield* findSuspect(key, (yield* load(key)).record, tokenId)
        yield* modify(key, (r) => ({ record: { ...r, suspects: r.suspects.filter((s) => s.id !== tokenId) }, result: undefined }))
        yield* Effect.logInfo("forgot suspect on request; it is left as it is in GitLab").pipe(Effect.annotateLogs({ key, tokenId }))
      }),
    )
  })

export interface SuspectListing {
  readonly key: string
  readonly suspect: Suspect
}

/** Every suspect of every key (or of `key`): what a person has to decide on. Reads State only. */
export const listSuspects = (key?: string) =>
  Effect.gen(function* () {
    const state = yield* State
    const keys = key === undefined ? yield* state.list() : [key]
    const out: SuspectListing[] = []
    for (const k of keys) {
      const found = yield* state.load(k)
      if (Option.isSome(found)) for (const s of found.value.record.suspects) out.push({ key: k, suspect: s })
    }
    return out
  })

export interface SweepFinding {
  readonly token: DeployToken
  readonly verdict: "tracked" | "suspect" | "lookalike"
}

/**
 * Lists the target and classifies every token that looks like this key's (same name, username and
 * scopes): tracked by State, already a suspect, or an untracked look-alike. Revokes nothing: a token
 * gldt cannot prove it made is never touched (I3).
 */
export const sweep = (job: Pick<Job, "key" | "connection" | "spec">) =>
  Effect.gen(function* () {
    const gitlab = yield* GitLab
    const location = yield* resolveLocation(job)
    const { record } = yield* load(job.key)
    const tokens = yield* gitlab.list(connectionFor(job.connection, location), location.target)
    const tracked = new Set([...(record.current ? [record.current.id] : []), ...(record.pending ? [record.pending.id] : []), ...record.retiring.map((t) => t.id)])
    const suspects = new Set(record.suspects.map((s) => s.id))
    return tokens
      .filter(
        (t) =>
          tracked.has(t.id) ||
          suspects.has(t.id) ||
          (t.name === job.spec.name && (job.spec.username === undefined || t.username === job.spec.username) && sameScopes(t.scopes, job.spec.scopes)),
      )
      .map((token): SweepFinding => ({ token, verdict: tracked.has(token.id) ? "tracked" : suspects.has(token.id) ? "suspect" : "lookalike" }))
  })
