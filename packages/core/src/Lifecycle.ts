/**
 * The token lifecycle programs: reconcile (decide and do the next steps), rotate, revokeAll, recover,
 * sweep, and the suspect commands.
 *
 * Every transition is a pure decision of `Decisions.ts` applied to the latest State record with
 * compare-and-set (`CompareAndSet.ts`), so a conflict replays the decision against what another
 * writer did instead of acting twice (I4). What each step did is returned as values and collected
 * into the report. The order of effects is what keeps the invariants:
 *   intent saved → POST → pending saved → sink written → current saved, old one retiring → DELETE after grace.
 */
import { Clock, Effect, Option, Random } from "effect"
import { load, modify, update } from "./CompareAndSet.ts"
import {
  type Done,
  isSettledEmpty,
  locationKey,
  locationOf,
  nextAt,
  type Policy,
  promote,
  releaseSuspects,
  resolveIntentDecision,
  retireEverything,
  type RevokeError,
  revokeDueAt,
  rotationReason,
  sameScopes,
  settlePending,
  targetKey,
  trackedIds,
  undeliveredRevokeAfter,
  withoutRetiring,
  withoutVanished,
  withResolvedTarget,
  withRevokeFailure,
  withWatermark,
  candidatesFor,
} from "./Decisions.ts"
import {
  type GitLabError,
  LifecycleError,
  RateLimited,
  type SinkError,
  type StateBusy,
  type StateConflict,
  type StateError,
  TokenNotFound,
  Unavailable,
} from "./Errors.ts"
import { fingerprintExpiry, nonceSpan } from "./Fingerprint.ts"
import { type Connection, type DeployToken, GitLab, type MintedToken } from "./GitLab.ts"
import { type Held, Sink } from "./Sink.ts"
import { DEFAULT_GRACE_MS, type DeployTokenSpec, specFingerprint } from "./Spec.ts"
import { type Intent, type Location, State, type StateRecord, type Suspect, type TokenRecord } from "./State.ts"

export {
  type Action,
  type Done,
  locationKey,
  MIN_REVISIT_MS,
  type Policy,
  REVOKE_BACKOFF_BASE_MS,
  REVOKE_BACKOFF_CAP_MS,
  type RevokeError,
  renewMargin,
  revokeRetryAt,
} from "./Decisions.ts"

/**
 * GitLab's request timeout (Puma worker timeout) is 60 s: a create sent longer ago than that has
 * either been applied or never will be. Before then, "not in the list" does not mean "not created".
 */
export const DEFAULT_CREATE_SETTLE_MS = 60_000

/** How long revokeAll keeps a deleted consumer's suspects for a person to decide before releasing them. */
export const DEFAULT_SUSPECT_WAIT_MS = 3_600_000

export interface Job {
  readonly key: string
  readonly spec: DeployTokenSpec
  readonly connection: Connection
  readonly policy: Policy
  /**
   * What the caller already knows about the spec's target from a lookup shared with other keys
   * (the controller resolves and lists a project once for all its consumers), sparing the first
   * mint its own: the numeric id of a path, and a recent highest token id for the recovery
   * watermark. Both are written with the mint's intent, in the same save. An older list only
   * lowers the watermark, which widens what recovery examines and never hides a token.
   */
  readonly targetHints?: TargetHints | undefined
}

export interface TargetHints {
  readonly numericId?: string | undefined
  readonly highestTokenId?: number | undefined
}

export interface Report {
  readonly key: string
  /** What this run did, in order, with token ids (never values). */
  readonly actions: ReadonlyArray<Done>
  /** Revocations that failed and stay tracked (I5). */
  readonly revokeErrors: ReadonlyArray<RevokeError>
  /** Why a rotation happened, if one did. */
  readonly reason: string | undefined
  /** When the next reconcile has work to do (ms since epoch), if ever; never in the past. */
  readonly nextAt: number | undefined
  /** A create's outcome is still unknown (it may land on the server until it settles); nothing new is minted meanwhile. */
  readonly openIntent: boolean
  readonly currentTokenId: number | undefined
  /** Ids of tokens kept as suspects (ambiguous look-alikes a person must decide on). */
  readonly suspects?: ReadonlyArray<number> | undefined
}

export type LifecycleFailure = GitLabError | SinkError | StateError | StateBusy | StateConflict | LifecycleError

/** What a step did: actions and failed revocations, as values. */
interface Outcome {
  readonly actions: ReadonlyArray<Done>
  readonly revokeErrors: ReadonlyArray<RevokeError>
}

const nothing: Outcome = { actions: [], revokeErrors: [] }
const did = (...actions: ReadonlyArray<Done>): Outcome => ({ actions, revokeErrors: [] })
const both = (...outcomes: ReadonlyArray<Outcome>): Outcome => ({
  actions: outcomes.flatMap((o) => o.actions),
  revokeErrors: outcomes.flatMap((o) => o.revokeErrors),
})

const MAX_STEPS = 16

/** Who is acting: the key, the connection (whose access token goes only to its own instance), and the settle time. */
interface Ctx {
  readonly job: Pick<Job, "key" | "connection">
  readonly settleMs: number
}

const connectionFor = (conn: Connection, l: Pick<Location, "url">): Connection => ({ ...conn, url: l.url })

/**
 * The access token is only ever sent to the instance it was given for. A token recorded at another
 * URL (the spec's url changed) must be handled with that instance's manifest.
 */
const otherInstance = (conn: Connection, l: Location): string | undefined =>
  l.url === conn.url
    ? undefined
    : `it lives at ${l.url}, not ${conn.url}; gldt will not send this access token to another GitLab instance — run gldt recover or revoke with a manifest for ${l.url}, or revoke it in GitLab`

const describe = (e: { readonly _tag: string; readonly message: string }) => `${e._tag}: ${e.message}`

const goneCounts = <A, E, R>(revoke: Effect.Effect<A, E | TokenNotFound, R>) =>
  revoke.pipe(
    Effect.catchIf(
      (e): e is TokenNotFound => e instanceof TokenNotFound,
      () => Effect.void,
    ),
  )

/**
 * What every other key of this State holds: the ids it tracks, and the fingerprints of its open
 * intents. Recovery never calls another key's token ours (several keys may share one target).
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

/**
 * Resolves an intent whose create outcome is unknown: lists the target and applies the suspect
 * rule (`resolveIntentDecision`). Look-alikes are never touched (I1, I3).
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
    // Only read the other keys when something could be confused with theirs.
    const others = candidatesFor(intent, tokens).length === 0 ? { ids: new Set<number>(), intents: new Set<string>() } : yield* otherKeys(ctx.job.key)
    const evidence = {
      tokens,
      othersTrack: others.ids,
      sharedMark: intent.expiresAt !== null && others.intents.has(`${locationKey(intent.location)}|${Date.parse(intent.expiresAt)}`),
      now,
      settled: now >= intent.createdAt + ctx.settleMs,
    }
    const outcome = yield* modify(ctx.job.key, (r) => {
      const decided = resolveIntentDecision(r, intent, evidence)
      return decided === undefined ? undefined : { record: decided.record, result: decided.done }
    })
    return Option.match(outcome, {
      onNone: () => ({ settled: false, outcome: nothing }),
      onSome: (done) => ({ settled: true, outcome: did(...done) }),
    })
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
      yield* update(ctx.job.key, (r) => {
        const kept = withoutVanished(r.suspects, location, ids)
        return kept.length === r.suspects.length ? undefined : { ...r, suspects: kept }
      })
    }
  })

/** A minted token whose delivery was never confirmed (a crash after the create): promote or retire it. */
const resolvePending = (ctx: Ctx, graceMs: number) =>
  Effect.gen(function* () {
    const sink = yield* Sink
    const held = yield* sink.inspect(ctx.job.key).pipe(Effect.orElseSucceed((): Held => ({ _tag: "Unknown" })))
    const now = yield* Clock.currentTimeMillis
    const outcome = yield* modify(ctx.job.key, (r) => {
      const decided = settlePending(r, held, now, graceMs)
      return decided === undefined ? undefined : { record: decided.record, result: decided.done }
    })
    return Option.match(outcome, { onNone: () => nothing, onSome: (done) => did(done) })
  })

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
      }).pipe(goneCounts),
    )
    if (outcome._tag === "Success") {
      yield* update(ctx.job.key, (r) => withoutRetiring(r, token.id))
      yield* Effect.logInfo("revoked deploy token").pipe(Effect.annotateLogs({ key: ctx.job.key, tokenId: token.id }))
      return did({ action: "revoked", tokenId: token.id })
    }
    const error = describe(outcome.failure)
    const now = yield* Clock.currentTimeMillis
    const jitter = 0.8 + 0.4 * (yield* Random.next)
    const retryAfterMs = outcome.failure instanceof RateLimited ? outcome.failure.retryAfterMs : undefined
    yield* update(ctx.job.key, (r) => withRevokeFailure(r, token.id, error, now, jitter, retryAfterMs))
    const saved = (yield* load(ctx.job.key)).record.retiring.find((t) => t.id === token.id)
    yield* Effect.logWarning("revocation failed; token stays tracked").pipe(
      Effect.annotateLogs({
        key: ctx.job.key,
        tokenId: token.id,
        error,
        ...(saved?.retryAt === undefined ? {} : { attempts: saved.revokeAttempts ?? 1, retryAt: new Date(saved.retryAt).toISOString() }),
      }),
    )
    return { actions: [], revokeErrors: [{ tokenId: token.id, error }] } satisfies Outcome
  })

/** Revokes every retiring token whose grace and back-off have passed. */
const revokeDue = (ctx: Ctx) =>
  Effect.gen(function* () {
    const now = yield* Clock.currentTimeMillis
    const { record } = yield* load(ctx.job.key)
    const outcomes: Outcome[] = []
    for (const token of record.retiring) {
      if (revokeDueAt(token) <= now) outcomes.push(yield* revokeOne(ctx, token))
    }
    return both(...outcomes)
  })

/** The spec's target by numeric id, resolving (one GET) and persisting a path before its first use. */
const resolveLocation = (job: Pick<Job, "key" | "connection" | "spec">) =>
  Effect.gen(function* () {
    const known = locationOf(job.spec, (yield* load(job.key)).record)
    if (known !== undefined) return known
    return yield* lookUpLocation(job)
  })

/** Resolves the spec's path to its numeric id at GitLab and records it. */
const lookUpLocation = (job: Pick<Job, "key" | "connection" | "spec">) =>
  Effect.gen(function* () {
    const gitlab = yield* GitLab
    const resolved = yield* gitlab.resolveTarget(connectionFor(job.connection, job.spec), job.spec.target)
    yield* update(job.key, (r) => withResolvedTarget(r, targetKey(job.spec.url, job.spec.target), resolved.id))
    yield* Effect.logInfo("resolved the target to its numeric id").pipe(
      Effect.annotateLogs({ key: job.key, target: `${job.spec.target.kind} ${job.spec.target.id}`, id: resolved.id }),
    )
    return { url: job.spec.url, target: { kind: job.spec.target.kind, id: resolved.id }, auth: job.spec.auth.secretRef } satisfies Location
  })

const NONCE_DRAWS = 8

/** Every record of the State: its snapshot when it has one, else each key loaded in turn. */
const everyRecord = (state: State["Service"]) =>
  state.snapshot !== undefined
    ? state.snapshot()
    : Effect.gen(function* () {
        const records: Array<StateRecord> = []
        for (const k of yield* state.list()) {
          const found = yield* state.load(k)
          if (Option.isSome(found)) records.push(found.value.record)
        }
        return records
      })

/** Draws a fingerprint no other key of this State uses at `location` (open intents and tracked tokens). */
/**
 * Parsed `expiresAt` per token or intent object: a State whose snapshot hands out the same objects
 * every time (the controller's informer view) is read once per mint, and Date.parse was most of that.
 */
const parsedExpiry = new WeakMap<object, number>()

const freshFingerprint = (job: Job, location: Location, now: number) =>
  Effect.gen(function* () {
    const state = yield* State
    const taken = new Set<number>()
    // Runs once per mint over every record of the State: plain comparisons, no allocation per record.
    const here = (l: Location) => l.url === location.url && l.target.kind === location.target.kind && l.target.id === location.target.id
    const mark = (t: { readonly location: Location; readonly expiresAt: string | null } | undefined) => {
      if (t === undefined || t.expiresAt === null || !here(t.location)) return
      let ms = parsedExpiry.get(t)
      if (ms === undefined) {
        ms = Date.parse(t.expiresAt)
        parsedExpiry.set(t, ms)
      }
      taken.add(ms)
    }
    for (const r of yield* everyRecord(state)) {
      mark(r.intent)
      mark(r.current)
      mark(r.pending)
      for (const t of r.retiring) mark(t)
    }
    const span = nonceSpan(job.spec, now)
    let expiresAt = fingerprintExpiry(job.spec, now, yield* Random.nextIntBetween(1, span + 1))
    for (let draw = 1; draw < NONCE_DRAWS && taken.has(Date.parse(expiresAt)); draw++) {
      expiresAt = fingerprintExpiry(job.spec, now, yield* Random.nextIntBetween(1, span + 1))
    }
    return expiresAt
  })

/**
 * Mints one token for a fresh decision, delivers it, retires the previous one. Returns what it did
 * (nothing when another writer made the decision first).
 */
const mintAndDeliver = (ctx: Ctx, job: Job, reason: string) =>
  Effect.gen(function* () {
    const gitlab = yield* GitLab
    const sink = yield* Sink
    // No token is minted that cannot be delivered.
    yield* sink.check(job.key)
    let { record } = yield* load(job.key)
    const hints = job.targetHints
    const targetKeyOfSpec = targetKey(job.spec.url, job.spec.target)
    // A hinted id is written with the intent below; without a hint, the lookup writes it now.
    const hintedId = locationOf(job.spec, record) === undefined ? hints?.numericId : undefined
    const location =
      hintedId !== undefined
        ? ({ url: job.spec.url, target: { kind: job.spec.target.kind, id: hintedId }, auth: job.spec.auth.secretRef } satisfies Location)
        : yield* resolveLocation(job)
    if (hintedId === undefined) record = (yield* load(job.key)).record
    let hintedWatermark: number | undefined
    if (record.watermarks[locationKey(location)] === undefined) {
      if (hints?.highestTokenId !== undefined) hintedWatermark = hints.highestTokenId
      else {
        // First mint at this target: learn its highest id so recovery never considers older look-alikes.
        const existing = yield* gitlab.list(connectionFor(job.connection, location), location.target)
        const highest = existing.reduce((m, t) => Math.max(m, t.id), 0)
        yield* update(job.key, (r) => withWatermark(r, location, highest))
        record = (yield* load(job.key)).record
      }
    }
    const now = yield* Clock.currentTimeMillis
    const expiresAt = yield* freshFingerprint(job, location, now)
    const specHash = specFingerprint(job.spec)
    const decided = yield* modify(job.key, (latest) => {
      // Re-decide on the latest record: another writer may have minted meanwhile (I4).
      if (latest.intent !== undefined || latest.pending !== undefined || latest.generation !== record.generation) return undefined
      let r = hintedId === undefined ? latest : (withResolvedTarget(latest, targetKeyOfSpec, hintedId) ?? latest)
      if (hintedWatermark !== undefined && r.watermarks[locationKey(location)] === undefined) r = withWatermark(r, location, hintedWatermark)
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
    if (Option.isNone(decided)) return nothing
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
        yield* update(job.key, (r) => {
          if (r.intent?.generation !== intent.generation) return undefined
          const { intent: _i, ...rest } = r
          return { ...rest, lastError: describe(e) }
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
      const revoked = yield* Effect.result(goneCounts(gitlab.revoke(connectionFor(job.connection, location), location.target, minted.id)))
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
      yield* update(job.key, (r) => (trackedIds(r).has(token.id) ? undefined : { ...r, retiring: [...r.retiring, { ...token, revokeAfter: now }] }))
      yield* revokeDue(ctx).pipe(Effect.ignore)
      return yield* Effect.fail(new LifecycleError({ key: job.key, message: `intent of token ${minted.id} was taken over by another writer` }))
    }
    yield* Effect.logInfo("minted deploy token").pipe(Effect.annotateLogs({ key: job.key, tokenId: minted.id, reason }))
    const mintedDone: Done = { action: record.current ? "rotated" : "minted", tokenId: minted.id, detail: reason }
    const delivered = yield* Effect.result(
      sink.deliver(job.key, {
        username: minted.username,
        token: minted.token,
        tokenId: minted.id,
        gitlabUrl: location.url,
        expiresAt: minted.expiresAt,
      }),
    )
    const at = yield* Clock.currentTimeMillis
    if (delivered._tag === "Failure") {
      const held = yield* sink.inspect(job.key).pipe(Effect.orElseSucceed((): Held => ({ _tag: "Unknown" })))
      yield* update(job.key, (r) => {
        if (r.pending?.id !== token.id) return undefined
        const { pending: _p, ...rest } = r
        if (held._tag === "Holds" && held.tokenId === token.id) return promote(rest, token, at, job.policy.graceMs)
        const revokeAfter = undeliveredRevokeAfter(held, at, job.policy.graceMs)
        return { ...rest, lastError: describe(delivered.failure), retiring: [...rest.retiring, { ...token, revokeAfter }] }
      })
      yield* revokeDue(ctx)
      return yield* Effect.fail(delivered.failure)
    }
    yield* update(job.key, (r) => {
      if (r.pending?.id !== token.id) return undefined
      const { pending: _p, lastError: _e, ...rest } = r
      return promote(rest, token, at, job.policy.graceMs)
    })
    return did(mintedDone, { action: "delivered", tokenId: minted.id })
  })

/**
 * Resolves interrupted work: an open intent, then an undelivered token. Returns the intent that is
 * still unsettled, if any (with `wait`, sleeps until it has settled instead), and what was done.
 */
const finishInterrupted = (ctx: Ctx, graceMs: number, wait = false) =>
  Effect.gen(function* () {
    const outcomes: Outcome[] = []
    const result = (open: Intent | undefined) => ({ open, outcome: both(...outcomes) })
    for (let step = 0; step < MAX_STEPS; step++) {
      const { record } = yield* load(ctx.job.key)
      if (record.intent !== undefined) {
        const resolved = yield* resolveIntent(ctx, record.intent)
        outcomes.push(resolved.outcome)
        if (!resolved.settled) {
          if (!wait) return result(record.intent)
          const now = yield* Clock.currentTimeMillis
          yield* Effect.logInfo("waiting for an interrupted create to settle").pipe(
            Effect.annotateLogs({ key: ctx.job.key, generation: record.intent.generation }),
          )
          yield* Effect.sleep(Math.max(1, record.intent.createdAt + ctx.settleMs - now))
        }
      } else if (record.pending !== undefined) outcomes.push(yield* resolvePending(ctx, graceMs))
      else return result(undefined)
    }
    return result((yield* load(ctx.job.key)).record.intent)
  })

const report = (
  ctx: Ctx,
  outcome: Outcome,
  reason: string | undefined,
  schedule: { readonly spec: DeployTokenSpec; readonly policy: Policy } | undefined,
  extraDue: ReadonlyArray<number> = [],
) =>
  Effect.gen(function* () {
    const { record } = yield* load(ctx.job.key)
    const now = yield* Clock.currentTimeMillis
    return {
      key: ctx.job.key,
      actions: outcome.actions,
      revokeErrors: outcome.revokeErrors,
      reason,
      openIntent: record.intent !== undefined,
      nextAt: nextAt(record, now, ctx.settleMs, schedule, extraDue),
      currentTokenId: record.current?.id,
      suspects: record.suspects.map((s) => s.id),
    } satisfies Report
  })

const newCtx = (job: Pick<Job, "key" | "connection">, settleMs: number | undefined): Ctx => ({
  job,
  settleMs: settleMs ?? DEFAULT_CREATE_SETTLE_MS,
})

const run = (job: Job, forceBefore: number | undefined) =>
  Effect.gen(function* () {
    const state = yield* State
    const sink = yield* Sink
    return yield* state.withLock(
      job.key,
      Effect.gen(function* () {
        const ctx = newCtx(job, job.policy.createSettleMs)
        const interrupted = yield* finishInterrupted(ctx, job.policy.graceMs)
        const { record } = yield* load(job.key)
        const held = yield* sink.inspect(job.key)
        const now = yield* Clock.currentTimeMillis
        const reason = rotationReason(record, job.spec, job.policy, now, held, forceBefore)
        // While a create's outcome is unknown, minting again could make two tokens for one decision (I4).
        const minted = reason !== undefined && interrupted.open === undefined ? yield* mintAndDeliver(ctx, job, reason) : nothing
        const revoked = yield* revokeDue(ctx)
        return yield* report(ctx, both(interrupted.outcome, minted, revoked), reason, { spec: job.spec, policy: job.policy })
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
export const rotate = (job: Job, requestedAt: number): Effect.Effect<Report, LifecycleFailure, State | Sink | GitLab> => run(job, requestedAt)

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
        const interrupted = yield* finishInterrupted(ctx, options.graceMs ?? DEFAULT_GRACE_MS, options.waitForSettle ?? false)
        yield* pruneSuspects(ctx)
        const revoked = yield* revokeDue(ctx)
        return yield* report(ctx, both(interrupted.outcome, revoked), undefined, undefined)
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
        const interrupted = yield* finishInterrupted(ctx, 0, true)
        const now = yield* Clock.currentTimeMillis
        yield* update(job.key, (r) => retireEverything(r, now, options.retryNow === true))
        if (options.removeFromSink) yield* sink.remove(job.key)
        const revoked = yield* revokeDue(ctx)
        if ((yield* load(job.key)).record.suspects.length > 0) yield* pruneSuspects(ctx)
        const waitMs = options.suspectWaitMs ?? DEFAULT_SUSPECT_WAIT_MS
        const at = yield* Clock.currentTimeMillis
        const released = yield* modify(job.key, (r) => {
          const decided = releaseSuspects(r, at, waitMs)
          return decided === undefined ? undefined : { record: decided.record, result: decided.released }
        })
        const releasedIds = Option.match(released, { onNone: () => [] as number[], onSome: (ss) => ss.map((s) => s.id) })
        if (releasedIds.length > 0) {
          yield* Effect.logWarning("releasing suspects of a deleted consumer; they stay live in GitLab unless a person revokes them").pipe(
            Effect.annotateLogs({ key: job.key, tokenIds: releasedIds.join(","), waitedMs: waitMs }),
          )
        }
        const outcome = both(
          interrupted.outcome,
          revoked,
          did(
            ...releasedIds.map(
              (id): Done => ({
                action: "released",
                tokenId: id,
                detail: "suspect released after the wait on consumer deletion; still live in GitLab unless revoked there",
              }),
            ),
          ),
        )
        const latest = yield* state.load(job.key)
        if (Option.isSome(latest) && isSettledEmpty(latest.value.record)) {
          yield* state.remove(job.key, latest.value.version)
          return {
            key: job.key,
            actions: outcome.actions,
            revokeErrors: outcome.revokeErrors,
            reason: "consumer deleted",
            openIntent: false,
            nextAt: undefined,
            currentTokenId: undefined,
            suspects: [],
          } satisfies Report
        }
        const r = Option.isSome(latest) ? latest.value.record : undefined
        const suspectDue = r !== undefined && r.suspects.length > 0 ? [(r.deletingSince ?? at) + waitMs] : []
        return yield* report(ctx, outcome, "consumer deleted", undefined, suspectDue)
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

const withoutSuspect = (r: StateRecord, tokenId: number): StateRecord => ({ ...r, suspects: r.suspects.filter((s) => s.id !== tokenId) })

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
        yield* goneCounts(gitlab.revoke(connectionFor(job.connection, suspect.location), suspect.location.target, tokenId))
        yield* update(job.key, (r) => withoutSuspect(r, tokenId))
        yield* Effect.logInfo("revoked suspect on request").pipe(Effect.annotateLogs({ key: job.key, tokenId }))
        return yield* report(ctx, did({ action: "revoked", tokenId, detail: "suspect revoked on request" }), "suspect revoked", undefined)
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
        yield* update(key, (r) => withoutSuspect(r, tokenId))
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
    const tracked = new Set([
      ...(record.current ? [record.current.id] : []),
      ...(record.pending ? [record.pending.id] : []),
      ...record.retiring.map((t) => t.id),
    ])
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
