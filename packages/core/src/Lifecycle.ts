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
  type SinkError,
  type StateBusy,
  StateConflict,
  type StateError,
  TokenNotFound,
  Unavailable,
} from "./Errors.ts"
import { type Connection, type DeployToken, GitLab, type MintedToken } from "./GitLab.ts"
import { Sink } from "./Sink.ts"
import { DEFAULT_GRACE_MS, type DeployTokenSpec, specFingerprint } from "./Spec.ts"
import { emptyRecord, type Intent, type Location, State, type StateRecord, type TokenRecord } from "./State.ts"

export interface Policy {
  /** Rotate this long after the current token was minted; 0 = never on schedule. */
  readonly refreshIntervalMs: number
  /** Keep a replaced token this long after its successor was delivered (I2). */
  readonly graceMs: number
  /** Periodic (default), CreatedOnce (never rotate on schedule or spec change), OnChange (spec changes only). */
  readonly refreshPolicy?: "Periodic" | "CreatedOnce" | "OnChange" | undefined
  /** How long after sending a create its outcome may still change on the server. Default 60s. */
  readonly createSettleMs?: number | undefined
}

/**
 * GitLab's request timeout (Puma worker timeout) is 60 s: a create sent longer ago than that has
 * either been applied or never will be. Before then, "not in the list" does not mean "not created".
 */
export const DEFAULT_CREATE_SETTLE_MS = 60_000

export interface Job {
  readonly key: string
  readonly spec: DeployTokenSpec
  readonly connection: Connection
  readonly policy: Policy
}

export type Action = "minted" | "rotated" | "delivered" | "revoked" | "recovered" | "retired" | "suspected"

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
}

export type LifecycleFailure = GitLabError | SinkError | StateError | StateBusy | StateConflict | LifecycleError

const MAX_STEPS = 16
const CAS_ATTEMPTS = 8

export const locationKey = (l: Location): string => `${l.url}|${l.target.kind}|${l.target.id}`
const locationOf = (spec: DeployTokenSpec): Location => ({ url: spec.url, target: spec.target, auth: spec.auth.secretRef })
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

/** Default renewal margin: a third of the token's lifetime, at most a day. */
export const renewMargin = (spec: DeployTokenSpec, lifetimeMs: number): number =>
  spec.renewBeforeExpiryMs ?? Math.min(24 * 3_600_000, Math.floor(lifetimeMs / 3))

/**
 * The expiry sent to GitLab. Its millisecond part is a per-mint nonce, so recovery can tell the token
 * of a lost create from look-alikes someone else made (I1, I3).
 */
const expiryFor = (spec: DeployTokenSpec, now: number, nonce: number): string | null => {
  if (spec.expiry.kind === "none") return null
  const base = spec.expiry.kind === "at" ? spec.expiry.at : now + spec.expiry.ms
  return new Date(Math.floor(base / 1000) * 1000 + nonce).toISOString()
}

/** A token's expiry without the nonce (whole seconds), for scheduling renewal. */
const expiryMs = (t: TokenRecord): number | undefined =>
  t.expiresAt === null ? undefined : Math.floor(Date.parse(t.expiresAt) / 1000) * 1000

const sameScopes = (a: ReadonlyArray<string>, b: ReadonlyArray<string>) =>
  a.length === b.length && [...a].sort().every((s, i) => s === [...b].sort()[i])

const describe = (e: { readonly _tag: string; readonly message: string }) => `${e._tag}: ${e.message}`

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
 * Resolves an intent whose create outcome is unknown: lists the target and finds the token it made,
 * if any. A token carrying the intent's exact expiry (with its nonce) is ours and is revoked; look-alikes
 * that cannot be told apart are kept as suspects and never touched (I1, I3).
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
    const outcome = yield* modify(ctx.job.key, (r) => {
      if (r.intent === undefined || r.intent.generation !== intent.generation) return undefined
      const tracked = trackedIds(r)
      const lookalikes = tokens.filter(
        (t) =>
          t.id > intent.watermark &&
          !tracked.has(t.id) &&
          t.name === intent.name &&
          (intent.username === null || t.username === intent.username) &&
          sameScopes(t.scopes, intent.scopes),
      )
      const classify = (t: DeployToken): "ours" | "suspect" | "foreign" => {
        if (intent.expiresAt === null) return "suspect"
        if (t.expiresAt === null) return "foreign"
        const theirs = Date.parse(t.expiresAt)
        const mine = Date.parse(intent.expiresAt)
        if (theirs === mine) return "ours"
        // GitLab versions that keep less precision drop the nonce: same second or same day is a maybe.
        const truncated = theirs % 1000 === 0 && (Math.floor(theirs / 1000) === Math.floor(mine / 1000) || theirs === Math.floor(mine / 86_400_000) * 86_400_000)
        return truncated ? "suspect" : "foreign"
      }
      const ours = lookalikes.filter((t) => classify(t) === "ours")
      const maybe = lookalikes.filter((t) => classify(t) === "suspect")
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
            ...r.suspects,
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

/** A minted token whose delivery was never confirmed (a crash after the create): promote or retire it. */
const resolvePending = (ctx: Ctx, graceMs: number) =>
  Effect.gen(function* () {
    const sink = yield* Sink
    const held = yield* sink.inspect(ctx.job.key).pipe(Effect.orElseSucceed(() => ({ _tag: "Unknown" }) as const))
    const now = yield* Clock.currentTimeMillis
    const outcome = yield* modify<Report["actions"][number]>(ctx.job.key, (r) => {
      if (r.pending === undefined) return undefined
      const pending = r.pending
      const { pending: _p, ...rest } = r
      if (held._tag === "Holds" && held.tokenId === pending.id) {
        return { record: promote(rest, pending, now, graceMs), result: { action: "delivered", tokenId: pending.id, detail: "sink already holds it" } }
      }
      // The value is gone with the crashed run. If the sink never held it, no consumer can have it.
      const revokeAfter = held._tag === "Unknown" ? now + graceMs : now
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
  if (exp !== undefined && spec.expiry.kind === "after") {
    if (now >= exp - renewMargin(spec, exp - cur.createdAt)) return "the token expires soon"
  }
  return undefined
}

const nextDue = (r: StateRecord, spec: DeployTokenSpec, policy: Policy): number | undefined => {
  const times: number[] = r.retiring.map((t) => t.revokeAfter ?? 0)
  const cur = r.current
  if (cur !== undefined) {
    if ((policy.refreshPolicy ?? "Periodic") === "Periodic" && policy.refreshIntervalMs > 0) {
      times.push(cur.createdAt + policy.refreshIntervalMs)
    }
    const exp = expiryMs(cur)
    if (exp !== undefined && spec.expiry.kind === "after") {
      times.push(exp - renewMargin(spec, exp - cur.createdAt))
    }
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
    ctx.revokeErrors.push({ tokenId: token.id, error })
    yield* Effect.logWarning("revocation failed; token stays tracked").pipe(
      Effect.annotateLogs({ key: ctx.job.key, tokenId: token.id, error }),
    )
    yield* modify(ctx.job.key, (r) =>
      r.retiring.some((t) => t.id === token.id)
        ? {
            record: {
              ...r,
              retiring: r.retiring.map((t) =>
                t.id === token.id ? { ...t, lastError: error, revokeAttempts: (t.revokeAttempts ?? 0) + 1 } : t,
              ),
            },
            result: undefined,
          }
        : undefined,
    )
  })

/** Revokes every retiring token whose grace has passed. */
const revokeDue = (ctx: Ctx) =>
  Effect.gen(function* () {
    const now = yield* Clock.currentTimeMillis
    const { record } = yield* load(ctx.job.key)
    for (const token of record.retiring) {
      if ((token.revokeAfter ?? 0) <= now) yield* revokeOne(ctx, token)
    }
  })

/**
 * Mints one token for a fresh decision, delivers it, retires the previous one.
 * Returns false when another writer made the decision first (nothing minted).
 */
const mintAndDeliver = (ctx: Ctx, job: Job, reason: string) =>
  Effect.gen(function* () {
    const gitlab = yield* GitLab
    const sink = yield* Sink
    const location = locationOf(job.spec)
    // No token is minted that cannot be delivered.
    yield* sink.check(job.key)
    let { record } = yield* load(job.key)
    if (record.watermarks[locationKey(location)] === undefined) {
      // First mint at this target: learn its highest id so recovery never considers older look-alikes.
      const existing = yield* gitlab.list(connectionFor(job.connection, location), location.target)
      const highest = existing.reduce((m, t) => Math.max(m, t.id), 0)
      yield* modify(job.key, (r) => ({ record: withWatermark(r, location, highest), result: undefined }))
      record = (yield* load(job.key)).record
    }
    const now = yield* Clock.currentTimeMillis
    const nonce = yield* Random.nextIntBetween(1, 999)
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
        expiresAt: expiryFor(job.spec, now, nonce),
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
    const recorded = yield* modify(job.key, (r) => {
      if (r.intent?.generation !== intent.generation) return undefined
      const { intent: _i, ...rest } = r
      return { record: withWatermark({ ...rest, pending: token }, location, minted.id), result: undefined }
    })
    if (Option.isNone(recorded)) {
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
      const held = yield* sink.inspect(job.key).pipe(Effect.orElseSucceed(() => ({ _tag: "Unknown" }) as const))
      yield* modify(job.key, (r) => {
        if (r.pending?.id !== token.id) return undefined
        const { pending: _p, ...rest } = r
        if (held._tag === "Holds" && held.tokenId === token.id) return { record: promote(rest, token, at, job.policy.graceMs), result: undefined }
        const revokeAfter = held._tag === "Unknown" ? at + job.policy.graceMs : at
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

const report = (ctx: Ctx, reason: string | undefined, spec: DeployTokenSpec | undefined, policy: Policy | undefined) =>
  Effect.gen(function* () {
    const { record } = yield* load(ctx.job.key)
    const due = [
      ...(spec && policy ? [nextDue(record, spec, policy)] : []),
      record.intent ? record.intent.createdAt + ctx.settleMs : undefined,
    ].filter((t): t is number => t !== undefined)
    return {
      key: ctx.job.key,
      actions: ctx.actions,
      revokeErrors: ctx.revokeErrors,
      reason,
      openIntent: record.intent !== undefined,
      nextAt: due.length === 0 ? undefined : Math.min(...due),
      currentTokenId: record.current?.id,
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
 * retired tokens whose grace has passed. A no-op reconcile makes no GitLab call.
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
 * create made, keeping unprovable look-alikes as suspects), settles an undelivered token, and
 * revokes retired tokens whose grace has passed.
 */
export const recover = (job: Pick<Job, "key" | "connection">, options: RecoverOptions = {}) =>
  Effect.gen(function* () {
    const state = yield* State
    return yield* state.withLock(
      job.key,
      Effect.gen(function* () {
        const ctx = newCtx(job, options.createSettleMs)
        yield* finishInterrupted(ctx, options.graceMs ?? DEFAULT_GRACE_MS, options.waitForSettle ?? false)
        yield* revokeDue(ctx)
        return yield* report(ctx, undefined, undefined, undefined)
      }),
    )
  })

/**
 * The consumer is gone: revoke every token of the key, remove the sink's credential if asked, and drop
 * the record once nothing is left. Tokens whose revocation fails stay tracked (I5); suspects stay
 * listed for a person to decide.
 */
export const revokeAll = (
  job: Pick<Job, "key" | "connection">,
  options: { readonly removeFromSink?: boolean; readonly createSettleMs?: number | undefined } = {},
) =>
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
          if (all.length === 0) return undefined
          const { current: _c, pending: _p, ...rest } = r
          return { record: { ...rest, retiring: all.map((t) => ({ ...t, revokeAfter: now })) }, result: undefined }
        })
        if (options.removeFromSink) yield* sink.remove(job.key)
        yield* revokeDue(ctx)
        const latest = yield* state.load(job.key)
        if (Option.isSome(latest)) {
          const r = latest.value.record
          if (r.retiring.length === 0 && r.suspects.length === 0 && r.current === undefined && r.pending === undefined) {
            yield* state.remove(job.key, latest.value.version)
          }
        }
        return yield* report(ctx, "consumer deleted", undefined, undefined)
      }),
    )
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
    const location = locationOf(job.spec)
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
