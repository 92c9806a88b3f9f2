/** The `gldt` command: subcommands over the core lifecycle, with file State and a file or stdout Sink. */
import { mkdirSync } from "node:fs"
import { FileSink, FileState, StdoutSink } from "@gldt/adapter-file"
import {
  type Connection,
  DEFAULT_CREATE_SETTLE_MS,
  DEFAULT_GRACE_MS,
  DEFAULT_SUSPECT_WAIT_MS,
  forgetSuspect,
  formatGoDuration,
  GitLab,
  type Job,
  listSuspects,
  type ManifestSet,
  parseGoDuration,
  type Report,
  recover,
  reconcile,
  revokeAll,
  revokeSuspect,
  rotate,
  runForever,
  Sink,
  State,
  sweep,
} from "@gldt/core"
import { layer as gitlabLayer } from "@gldt/gitlab"
import { Clock, Effect, Layer, Option, Schema } from "effect"
import { Argument, Command, Flag } from "effect/cli"
import { BadInput, loadManifests, parseSinkFlag, parseStateFlag, readAccessToken, readCaFile, SINK_FORMATS } from "./inputs.ts"
import { reachableKubeconfig, readTokenFromSecret } from "./kubeToken.ts"
import { describeRecord, describeReport, describeSuspects, type OutputMode, printJson, printText, progress, reportJson } from "./output.ts"

export const VERSION = "0.1.0"

// Flags shared by the commands that act on a manifest.
const file = Flag.String("file").pipe(
  Flag.withAlias("f"),
  Flag.withDescription("YAML file with a GitlabDeployToken (or ClusterGenerator) and optionally its ExternalSecret"),
)
const key = Flag.String("key").pipe(
  Flag.withDescription("State key of the consumer (default: the generator's metadata.name)"),
  Flag.optional,
)
const stateFlag = Flag.String("state").pipe(
  Flag.withDescription("Where State lives: file:DIR"),
  Flag.withDefault("file:./.gldt/state"),
)
const sinkFlag = Flag.String("sink").pipe(
  Flag.withDescription(
    `Where the credential goes: file:PATH[?format=${SINK_FORMATS.join("|")}][&registry=HOST] or stdout[?format=…] (default file:./.gldt/<key>.env)`,
  ),
  Flag.optional,
)
const grace = Flag.String("grace").pipe(
  Flag.withDescription(
    "How long a replaced token stays valid after its successor was delivered (Go duration; 0 revokes at once). Default: spec.revokeGracePeriod, else 15m",
  ),
  Flag.optional,
)
const tokenEnv = Flag.String("token-env").pipe(
  Flag.withDescription("Environment variable holding the GitLab access token"),
  Flag.withDefault("GITLAB_TOKEN"),
)
const tokenFile = Flag.String("token-file").pipe(Flag.withDescription("File holding the GitLab access token"), Flag.optional)
const caFile = Flag.String("ca-file").pipe(Flag.withDescription("PEM bundle of CAs to trust for a self-managed GitLab"), Flag.optional)
const allowHttp = Flag.Boolean("allow-http").pipe(
  Flag.withDescription("Allow a plain http:// GitLab URL (local tests only; the access token would cross the network in clear)"),
  Flag.withDefault(false),
)
const createSettle = Flag.String("create-settle").pipe(
  Flag.withDescription(
    "How long GitLab may still apply a create after gldt lost its answer (Go duration). Recovery waits this long before it concludes a lost create made nothing. Default 60s, GitLab's request timeout",
  ),
  Flag.optional,
)
const output = Flag.Literals("output", ["text", "json"]).pipe(
  Flag.withAlias("o"),
  Flag.withDescription("text for people, json (one document on stdout) for scripts"),
  Flag.withDefault("text"),
)

const common = { file, key, state: stateFlag, sink: sinkFlag, grace, tokenEnv, tokenFile, caFile, allowHttp, createSettle, output }
type Common = {
  readonly file: string
  readonly key: Option.Option<string>
  readonly state: string
  readonly sink: Option.Option<string>
  readonly grace: Option.Option<string>
  readonly tokenEnv: string
  readonly tokenFile: Option.Option<string>
  readonly caFile: Option.Option<string>
  readonly allowHttp: boolean
  readonly createSettle: Option.Option<string>
  readonly output: OutputMode
}

interface Prepared {
  readonly manifests: ManifestSet
  readonly job: Job
  readonly layer: Layer.Layer<State | GitLab | Sink>
}

const keyOf = (c: Common, m: ManifestSet) => Option.getOrElse(c.key, () => m.generator.name)
const specGrace = (m: ManifestSet) => m.generator.spec.revokeGracePeriodMs ?? DEFAULT_GRACE_MS


const durationFlag = (name: string, value: Option.Option<string>, fallback: number | undefined) =>
  Effect.gen(function* () {
    if (Option.isNone(value)) return fallback
    const ms = parseGoDuration(value.value)
    if (ms === undefined) return yield* new BadInput({ problems: [`--${name}: "${value.value}" is not a duration; write it like 0, 30s, 15m`] })
    return ms
  })

/**
 * State that cannot be read, or (for commands that deliver) a sink that cannot be written, is bad
 * input: found before any mint. revoke and recover deliver nothing, so a sink whose directory is
 * gone (a decommissioned consumer) does not stop them.
 */
const checkTargets = (key: string, writableSink: boolean) =>
  Effect.gen(function* () {
    const state = yield* State
    const sink = yield* Sink
    yield* state.load(key).pipe(Effect.mapError((e) => new BadInput({ problems: [`--state: ${e.message}`] })))
    if (writableSink) yield* sink.check(key).pipe(Effect.mapError((e) => new BadInput({ problems: [`--sink: ${e.message}`] })))
  })

/** Reads and checks every input before anything touches GitLab, then builds the service layer. */
const prepare = (c: Common, options: { readonly writableSink?: boolean } = {}) =>
  Effect.gen(function* () {
    const now = yield* Clock.currentTimeMillis
    const manifests = yield* loadManifests(c.file, { allowHttp: c.allowHttp, now })
    const k = keyOf(c, manifests)
    const stateLoc = yield* parseStateFlag(c.state)
    const writableSink = options.writableSink ?? true
    if (Option.isNone(c.sink) && writableSink) mkdirSync("./.gldt", { recursive: true, mode: 0o700 })
    const sinkLoc = yield* parseSinkFlag(Option.getOrElse(c.sink, () => `file:./.gldt/${k.replaceAll("/", "_")}.env`))
    const graceMs = (yield* durationFlag("grace", c.grace, specGrace(manifests)))!
    const createSettleMs = yield* durationFlag("create-settle", c.createSettle, undefined)
    const caPem = (yield* readCaFile(Option.getOrUndefined(c.caFile))) ?? manifests.generator.spec.caBundle
    const accessToken = yield* readAccessToken({
      tokenEnv: c.tokenEnv,
      tokenFile: Option.getOrUndefined(c.tokenFile),
      fromCluster: reachableKubeconfig()
        ? readTokenFromSecret(manifests.generator.spec.auth.secretRef, manifests.generator.namespace)
        : undefined,
    })
    const connection: Connection = {
      url: manifests.generator.spec.url,
      accessToken,
      caPem,
      allowHttp: c.allowHttp,
    }
    const consumer = manifests.consumer
    const job: Job = {
      key: k,
      spec: manifests.generator.spec,
      connection,
      policy: {
        refreshIntervalMs: consumer?.refreshIntervalMs ?? 0,
        refreshPolicy: consumer?.refreshPolicy,
        graceMs,
        createSettleMs,
      },
    }
    const stateLayer = FileState.layer({ dir: stateLoc.dir })
    const sinkLayer =
      sinkLoc.kind === "stdout"
        ? StdoutSink.layer({ format: sinkLoc.format })
        : FileSink.layer({ path: sinkLoc.path, format: sinkLoc.format, registry: sinkLoc.registry })
    const layer = Layer.mergeAll(stateLayer, sinkLayer, gitlabLayer())
    yield* checkTargets(k, writableSink).pipe(Effect.provide(layer))
    return { manifests, job, layer } satisfies Prepared
  })

const emit = (c: Common, command: string, report: Report) =>
  Effect.gen(function* () {
    const now = yield* Clock.currentTimeMillis
    if (c.output === "json") printJson(reportJson(command, report))
    else for (const line of describeReport(command, report, now)) printText(line)
    if (report.revokeErrors.length > 0) {
      return yield* Effect.fail(new RevokeFailed({ count: report.revokeErrors.length }))
    }
    // A mint was wanted (any rotate; a generate with no token yet) but an unresolved create blocks it.
    if (report.openIntent && (command === "rotate" || report.currentTokenId === undefined)) {
      return yield* Effect.fail(new CreateUnsettled({}))
    }
  })

/** An earlier create's outcome is unknown; nothing was minted. Exit code 1. */
export class CreateUnsettled extends Schema.TaggedError<CreateUnsettled>()("CreateUnsettled", {}) {
  override get message() {
    return "not rotated: an earlier create's outcome is still unknown; run `gldt recover` (it waits for GitLab to settle) and retry"
  }
}

/** Some revocation failed; the tokens stay tracked. Exit code 1. */
export class RevokeFailed extends Schema.TaggedError<RevokeFailed>()("RevokeFailed", { count: Schema.Number }) {
  override get message() {
    return `${this.count} revocation(s) failed; the tokens stay tracked and will be retried`
  }
}

const validate = Command.make(
  "validate",
  { file, allowHttp, output },
  Effect.fn(function* (c) {
    const now = yield* Clock.currentTimeMillis
    const m = yield* loadManifests(c.file, { allowHttp: c.allowHttp, now })
    const g = m.generator
    if (c.output === "json") {
      printJson({ command: "validate", ok: true, generator: { kind: g.kind, name: g.name, target: g.spec.target, scopes: g.spec.scopes } })
    } else {
      printText(
        `${c.file}: ok — ${g.kind}/${g.name}: ${g.spec.target.kind} ${g.spec.target.id} at ${g.spec.url}, scopes ${g.spec.scopes.join(",")}${m.consumer ? `; ExternalSecret/${m.consumer.name} refreshes ${m.consumer.refreshIntervalMs === 0 ? "never" : `every ${formatGoDuration(m.consumer.refreshIntervalMs)}`}` : ""}`,
      )
    }
  }),
).pipe(Command.withDescription("Check manifests and print every problem; contacts nothing, mints nothing"))

const preflight = Command.make(
  "preflight",
  common,
  Effect.fn(function* (c) {
    const p = yield* prepare(c)
    progress(c.output, `checking access to ${p.job.spec.target.kind} ${p.job.spec.target.id} at ${p.job.spec.url}`)
    const report = yield* Effect.gen(function* () {
      const gitlab = yield* GitLab
      return yield* gitlab.preflight(p.job.connection, p.job.spec.target)
    }).pipe(Effect.provide(p.layer))
    if (c.output === "json") printJson({ command: "preflight", ok: report.canManage, ...report })
    else {
      printText(`${p.job.spec.target.kind} ${p.job.spec.target.id}: reachable, ${report.tokenCount} deploy token(s)`)
      printText(report.canManage ? "the access token may create and revoke deploy tokens" : `cannot create deploy tokens: ${report.reason}`)
    }
    if (!report.canManage) return yield* Effect.fail(new PreflightFailed({ reason: report.reason ?? "not allowed" }))
  }),
).pipe(Command.withDescription("Check that the access token reaches the target with the right role and scope (mints nothing)"))

export class PreflightFailed extends Schema.TaggedError<PreflightFailed>()("PreflightFailed", { reason: Schema.String }) {
  override get message() {
    return `preflight failed: ${this.reason}`
  }
}

const generate = Command.make(
  "generate",
  common,
  Effect.fn(function* (c) {
    const p = yield* prepare(c)
    progress(c.output, `ensuring ${p.job.key} has a token`)
    // Only "no token yet" (or a sink that lost it) mints: no schedule, no spec-change rotation, and
    // no renewal near expiry either (that is rotate's and run's job).
    const report = yield* reconcile({
      ...p.job,
      policy: { ...p.job.policy, refreshIntervalMs: 0, refreshPolicy: "CreatedOnce", renewBeforeExpiry: false },
    }).pipe(
      Effect.provide(p.layer),
    )
    yield* emit(c, "generate", report)
  }),
).pipe(Command.withDescription("Mint and deliver one token if the key has none"))

const rotateCmd = Command.make(
  "rotate",
  common,
  Effect.fn(function* (c) {
    // The request was made when the process started, not after its inputs were read: a concurrent
    // rotate that minted while this one was still loading then satisfies it (two requests mint once).
    const requestedAt = Math.min(Math.floor(performance.timeOrigin), yield* Clock.currentTimeMillis)
    const p = yield* prepare(c)
    progress(c.output, `rotating ${p.job.key}`)
    const report = yield* rotate(p.job, requestedAt).pipe(Effect.provide(p.layer))
    yield* emit(c, "rotate", report)
  }),
).pipe(
  Command.withDescription(
    "Mint a new token, deliver it, retire the previous one (revoked once the grace has passed; --grace 0 revokes at once), and revoke retired tokens that are due",
  ),
)

const suspectWait = Flag.String("suspect-wait").pipe(
  Flag.withDescription(
    `How long a deleted consumer's suspects (look-alikes gldt cannot prove it made) are kept for a person to decide with \`gldt suspects\`, counted from the first revoke; a later revoke after that releases them (forgotten, never revoked) with a warning. Go duration; default ${formatGoDuration(DEFAULT_SUSPECT_WAIT_MS)}`,
  ),
  Flag.optional,
)

const revokeCmd = Command.make(
  "revoke",
  { ...common, suspectWait },
  Effect.fn(function* (c) {
    const p = yield* prepare(c, { writableSink: false })
    const suspectWaitMs = yield* durationFlag("suspect-wait", c.suspectWait, DEFAULT_SUSPECT_WAIT_MS)
    progress(c.output, `revoking every token of ${p.job.key}`)
    const report = yield* revokeAll(p.job, {
      removeFromSink: true,
      createSettleMs: p.job.policy.createSettleMs,
      suspectWaitMs,
      // A person asked: failed revocations are tried again now, not after their back-off.
      retryNow: true,
    }).pipe(Effect.provide(p.layer))
    yield* emit(c, "revoke", report)
  }),
).pipe(
  Command.withDescription(
    "Revoke every token of the key, remove the delivered credential and the record (needs no writable sink). Suspects are kept until --suspect-wait has passed",
  ),
)

const recoverCmd = Command.make(
  "recover",
  common,
  Effect.fn(function* (c) {
    const p = yield* prepare(c, { writableSink: false })
    progress(c.output, `recovering ${p.job.key}`)
    const [report, findings] = yield* Effect.gen(function* () {
      const open = Option.getOrUndefined(yield* (yield* State).load(p.job.key))?.record.intent
      if (open !== undefined) {
        const settleMs = p.job.policy.createSettleMs ?? DEFAULT_CREATE_SETTLE_MS
        const left = Math.max(0, open.createdAt + settleMs - (yield* Clock.currentTimeMillis))
        progress(c.output, `an interrupted create may still land; waiting up to ${formatGoDuration(Math.ceil(left / 1000) * 1000)} for it to settle`)
      }
      return yield* Effect.all([
        recover(p.job, { graceMs: p.job.policy.graceMs, createSettleMs: p.job.policy.createSettleMs, waitForSettle: true }),
        sweep(p.job),
      ])
    }).pipe(Effect.provide(p.layer))
    const lookalikes = findings.filter((f) => f.verdict === "lookalike")
    if (c.output === "json") {
      printJson({ ...reportJson("recover", report), lookalikes: lookalikes.map((f) => ({ id: f.token.id, name: f.token.name, username: f.token.username })) })
    } else {
      for (const line of describeReport("recover", report, yield* Clock.currentTimeMillis)) printText(line)
      for (const f of lookalikes) {
        printText(`untracked look-alike token ${f.token.id} (${f.token.name}/${f.token.username}): not made by this key as far as gldt can prove; left untouched`)
      }
    }
    if (report.revokeErrors.length > 0) return yield* Effect.fail(new RevokeFailed({ count: report.revokeErrors.length }))
  }),
).pipe(Command.withDescription("Finish or undo interrupted work and revoke orphans this key created (lists untracked look-alikes, never touches them)"))

const statusCmd = Command.make(
  "status",
  {
    state: stateFlag,
    key,
    output,
  },
  Effect.fn(function* (c) {
    const loc = yield* parseStateFlag(c.state)
    const now = yield* Clock.currentTimeMillis
    const records = yield* Effect.gen(function* () {
      const state = yield* State
      const keys = Option.isSome(c.key) ? [c.key.value] : yield* state.list()
      const out = []
      for (const k of keys) {
        const v = yield* state.load(k)
        if (Option.isSome(v)) out.push(v.value.record)
      }
      return out
    }).pipe(Effect.provide(FileState.layer({ dir: loc.dir })))
    if (c.output === "json") printJson({ command: "status", records })
    else if (records.length === 0) printText(`no state in ${loc.dir}`)
    else for (const r of records) for (const line of describeRecord(r, now)) printText(line)
  }),
).pipe(Command.withDescription("Show what State holds: token ids, usernames, ages, expiries, pending revocations, suspects (never values)"))

const runCmd = Command.make(
  "run",
  {
    ...common,
    refresh: Flag.String("refresh").pipe(
      Flag.withDescription("Refresh interval when the file has no ExternalSecret (Go duration; 0 = never). Default 1h"),
      Flag.optional,
    ),
    maxRotations: Flag.Int("max-rotations").pipe(Flag.withDescription("Exit 0 after this many rotations (for tests and benchmarks)"), Flag.optional),
  },
  Effect.fn(function* (c) {
    const p = yield* prepare(c)
    let refreshIntervalMs = p.job.policy.refreshIntervalMs
    if (p.manifests.consumer === undefined) {
      const text = Option.getOrElse(c.refresh, () => "1h")
      const ms = parseGoDuration(text)
      if (ms === undefined) return yield* new BadInput({ problems: [`--refresh: "${text}" is not a duration; write it like 1h or 30m`] })
      refreshIntervalMs = ms
    }
    const job: Job = { ...p.job, policy: { ...p.job.policy, refreshIntervalMs } }
    let rotations = 0
    const limit = Option.getOrUndefined(c.maxRotations)
    progress(c.output, `running ${job.key}; stop with SIGTERM or Ctrl-C`)
    // Waits until each report's nextAt; failures back off exponentially and honour GitLab's Retry-After.
    yield* runForever(job, {
      onReport: (report) =>
        Effect.gen(function* () {
          const now = yield* Clock.currentTimeMillis
          if (report.actions.length > 0 || report.revokeErrors.length > 0) {
            if (c.output === "json") printJson(reportJson("run", report))
            else for (const line of describeReport("run", report, now)) printText(line)
          }
          rotations += report.actions.filter((a) => a.action === "rotated").length
        }),
      onError: (e, retryInMs) =>
        Effect.sync(() =>
          c.output === "json"
            ? printJson({ command: "run", ok: false, error: e.message, retryInMs })
            : process.stderr.write(`gldt: ${e.message} (retrying in ${formatGoDuration(Math.max(1000, Math.round(retryInMs / 1000) * 1000))})\n`),
        ),
      until: () => limit !== undefined && rotations >= limit,
    }).pipe(Effect.provide(p.layer))
  }),

).pipe(Command.withDescription("Reconcile on schedule until SIGTERM (or --max-rotations), then exit cleanly"))

const suspectId = Argument.Int("id").pipe(Argument.withDescription("GitLab id of the suspect token (see gldt suspects)"))

const suspectsRevoke = Command.make(
  "revoke",
  { ...common, id: suspectId },
  Effect.fn(function* (c) {
    const p = yield* prepare(c, { writableSink: false })
    progress(c.output, `revoking suspect ${c.id} of ${p.job.key}`)
    const report = yield* revokeSuspect(p.job, c.id).pipe(
      Effect.mapError((e) => (e._tag === "LifecycleError" && e.message.includes("is not a suspect") ? new BadInput({ problems: [e.message] }) : e)),
      Effect.provide(p.layer),
    )
    yield* emit(c, "suspects revoke", report)
  }),
).pipe(Command.withDescription("A suspect is ours after all: revoke it in GitLab (at its recorded target) and stop tracking it"))

const suspectsForget = Command.make(
  "forget",
  {
    state: stateFlag,
    key: Flag.String("key").pipe(Flag.withDescription("State key the suspect belongs to (gldt suspects shows it)")),
    id: suspectId,
    output,
  },
  Effect.fn(function* (c) {
    const loc = yield* parseStateFlag(c.state)
    yield* forgetSuspect(c.key, c.id).pipe(
      Effect.mapError((e) => (e._tag === "LifecycleError" ? new BadInput({ problems: [e.message] }) : e)),
      Effect.provide(FileState.layer({ dir: loc.dir })),
    )
    if (c.output === "json") printJson({ command: "suspects forget", key: c.key, ok: true, forgotten: c.id })
    else printText(`forgot suspect ${c.id} of ${c.key}; it is left as it is in GitLab`)
  }),
).pipe(Command.withDescription("A suspect is not ours: stop tracking it; GitLab is not touched"))

const suspectsCmd = Command.make(
  "suspects",
  { state: stateFlag, key, output },
  Effect.fn(function* (c) {
    const loc = yield* parseStateFlag(c.state)
    const now = yield* Clock.currentTimeMillis
    const listing = yield* listSuspects(Option.getOrUndefined(c.key)).pipe(Effect.provide(FileState.layer({ dir: loc.dir })))
    if (c.output === "json") {
      printJson({ command: "suspects", suspects: listing.map(({ key: k, suspect }) => ({ key: k, ...suspect })) })
    } else for (const line of describeSuspects(listing, now)) printText(line)
  }),
).pipe(
  Command.withDescription(
    "List suspects: live tokens that look like ours after an interrupted create but that gldt cannot prove it made. Resolve each with `suspects revoke ID` or `suspects forget ID`",
  ),
  Command.withSubcommands([suspectsRevoke, suspectsForget]),
)

export const gldt = Command.make("gldt").pipe(
  Command.withDescription(
    [
      "Mint, deliver, rotate and revoke GitLab deploy tokens from the GitlabDeployToken manifest of External Secrets Operator.",
      "",
      "Exit codes: 0 done; 1 failure (GitLab, state, sink or revocation failed; the lifecycle stays consistent); 2 bad input (nothing was minted).",
      "The access token is read from $GITLAB_TOKEN unless --token-env / --token-file say otherwise; it is never printed or stored.",
    ].join("\n"),
  ),
  Command.withSubcommands([validate, preflight, generate, rotateCmd, revokeCmd, statusCmd, recoverCmd, runCmd, suspectsCmd]),
)

export const run = Command.runWith(gldt, { version: VERSION })
