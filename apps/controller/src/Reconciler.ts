/**
 * Reconciles one consumer (ExternalSecret or GitlabDeployTokenConsumer): resolves its generator,
 * the auth Secret and the CAs, then lets @gldt/core decide (mint, rotate, revoke) with the consumer's
 * GitlabDeployTokenState as State and its target Secret as Sink. Writes ESO's status fields and
 * Events. Bad input is found before any call to GitLab, and reported on the consumer (Ready=False,
 * SecretSyncedError, a message naming the field and the fix, a Warning event); nothing is minted.
 *
 * Deletion: the consumer's finalizer holds it until `revokeAll` has revoked every token; the auth
 * Secret, the generator and a caProvider Secret or ConfigMap carry a finalizer of ours while any token
 * that needs them for revocation exists, so deleting a namespace neither hangs (they stay readable)
 * nor leaks.
 */
import { createHash } from "node:crypto"
import { KubeSink, KubeState } from "@gldt/adapter-kubernetes"
import { createdByLabel, LABEL_CREATED_BY, type SecretObject } from "@gldt/adapter-kubernetes/Target"
import type { GitLabError } from "@gldt/core/Errors"
import { type Connection, GitLab } from "@gldt/core/GitLab"
import { type Job, type LifecycleFailure, type Report, reconcile, revokeAll, rotate, type TargetHints } from "@gldt/core/Lifecycle"
import { Sink } from "@gldt/core/Sink"
import { DEFAULT_GRACE_MS, type DeployTokenSpec, validateSpec } from "@gldt/core/Spec"
import { State, type StateRecord } from "@gldt/core/State"
import type { V1Secret } from "@kubernetes/client-node"
import { Clock, Effect, Layer, Option, Redacted } from "effect"
import { type CacheShape, LabelIndex, type Obj } from "./Cache.ts"
import { isNew } from "./Triggers.ts"
import {
  AUTH_FINALIZER,
  AUTH_LABEL,
  CA_FINALIZER,
  CA_LABEL,
  CLUSTER_GENERATOR,
  CONSUMER_FINALIZER,
  GENERATOR,
  GENERATOR_FINALIZER,
  type Consumer,
  type ConsumerKind,
  fromConsumer,
  fromExternalSecret,
  fromStateKey,
  gldtRefs,
  stateKey,
} from "./Consumer.ts"
import type { ApiError, KubeApiShape } from "./KubeApi.ts"
import type { MetricsShape } from "./Metrics.ts"

/** How old a shared list of a target may be to give a new consumer its watermark. */
const WATERMARK_LIST_MAX_AGE_MS = 10_000

/** What the worker does next with the key. */
export type Outcome =
  | { readonly _tag: "Done"; readonly requeueAfterMs: number | undefined }
  /** Bad input: retried slowly (a fix usually arrives as a watch event first). */
  | { readonly _tag: "BadInput"; readonly message: string }
  /** A transient failure: retried with the key's back-off. */
  | { readonly _tag: "Retry"; readonly message: string; readonly retryAfterMs?: number | undefined }

export interface ReconcilerOptions {
  readonly allowHttp: boolean
  /** PEM of CAs from --gitlab-ca-file, trusted for every instance. */
  readonly gitlabCaPem: string | undefined
  /** Serve ExternalSecrets (false when ESO runs in the cluster). */
  readonly serveExternalSecrets: () => boolean
  /** Periodic check for tokens revoked outside gldt (0 = off). */
  readonly revocationCheckIntervalMs: number
  /** How long a deleted consumer's suspects hold its deletion (core's default when undefined). */
  readonly suspectWaitMs?: number | undefined
}

export interface Deps {
  readonly cache: CacheShape
  readonly kube: KubeApiShape
  readonly metrics: MetricsShape
  readonly gitlab: GitLab["Service"]
  readonly options: ReconcilerOptions
}

class BadInputError {
  readonly _tag = "BadInputError"
  readonly message: string
  constructor(message: string) {
    this.message = message
  }
}

/** The shortest wait before a key whose revocation failed comes back, whatever core's retry time says. */
export const MIN_RETRY_MS = 1_000

/** How long until core's retry time, never under MIN_RETRY_MS: a retry time already past cannot make the key spin. */
export const retryDelayMs = (retryAt: number, now: number): number => Math.max(MIN_RETRY_MS, retryAt - now)

class RetryError {
  readonly _tag = "RetryError"
  readonly message: string
  /** When core will try again (its per-token revocation back-off): the key comes back then, not later. */
  readonly retryAt: number | undefined
  constructor(message: string, retryAt?: number) {
    this.message = message
    this.retryAt = retryAt
  }
}

const badInput = (message: string) => Effect.fail(new BadInputError(message))

const apiRetry = (what: string) => (e: ApiError) => new RetryError(`${what}: ${e.message}`)

/** A sink that holds nothing and writes nothing: for revoking the tokens of a consumer that is gone. */
const nullSink = Layer.succeed(
  Sink,
  Sink.of({
    check: () => Effect.void,
    deliver: () => Effect.void,
    inspect: () => Effect.succeed({ _tag: "Unknown" as const }),
    remove: () => Effect.void,
  }),
)

interface Resolved {
  readonly spec: DeployTokenSpec
  readonly connection: Connection
  readonly generatorDesc: string
}

/** Resolves generator → validated spec, auth token, CAs. Fails with BadInputError naming field and fix. */
const resolve = (deps: Deps, c: Consumer, now: number): Effect.Effect<Resolved, BadInputError | RetryError> =>
  Effect.gen(function* () {
    const { cache, kube, options } = deps
    if (c.problems.length > 0) return yield* badInput(c.problems.join("; "))
    const ref = c.generatorRef!
    let rawSpec: unknown
    let desc: string
    let fieldPrefix: string
    if (ref.kind === "GitlabDeployToken") {
      const g = cache.informed.generators.get(ref.name, c.namespace)
      desc = `GitlabDeployToken ${c.namespace}/${ref.name}`
      if (g === undefined) {
        return yield* badInput(`${ref.path}.name: ${desc} does not exist; create it in namespace ${c.namespace} or fix the name`)
      }
      rawSpec = g.spec
      fieldPrefix = `${desc}: `
    } else {
      const g = cache.informed.clusterGenerators.get(ref.name)
      desc = `ClusterGenerator ${ref.name}`
      if (g === undefined) return yield* badInput(`${ref.path}.name: ${desc} does not exist; create it or fix the name`)
      const gs = (g.spec ?? {}) as { kind?: unknown; generator?: { gitlabDeployTokenSpec?: unknown } }
      if (gs.kind !== "GitlabDeployToken") {
        return yield* badInput(`${desc}: spec.kind is ${JSON.stringify(gs.kind)}; gldt serves only ClusterGenerators of kind GitlabDeployToken`)
      }
      if (gs.generator?.gitlabDeployTokenSpec === undefined) {
        return yield* badInput(`${desc}: spec.generator.gitlabDeployTokenSpec: is required when kind is GitlabDeployToken`)
      }
      rawSpec = gs.generator.gitlabDeployTokenSpec
      fieldPrefix = `${desc}: spec.generator.gitlabDeployTokenSpec.`
    }
    const field = (path: string) =>
      ref.kind === "GitlabDeployToken" ? `${fieldPrefix}${path}` : `${fieldPrefix}${path.replace(/^spec\.?/, "")}`.replace(/\.$/, "")
    const validated = validateSpec(rawSpec, { allowHttp: options.allowHttp, now })
    if (validated.spec === undefined) {
      return yield* badInput(validated.problems.map((p) => `${field(p.path)}: ${p.message}`).join("; "))
    }
    const spec = validated.spec
    const secretRef = spec.auth.secretRef
    if (secretRef.namespace !== undefined && secretRef.namespace !== c.namespace) {
      return yield* badInput(
        `${field("spec.auth.token.secretRef.namespace")}: is ${secretRef.namespace}, but the access token is always read from the consumer's own namespace (${c.namespace}) so that no namespace can mint with another's credentials; remove the field and create the Secret ${secretRef.name} in ${c.namespace}`,
      )
    }
    // The access token: from the informer once the Secret carries our label (every consumer after the
    // first one in a namespace), else from the API. A cached copy without the key is read again.
    const cached = cache.informed.authSecrets.get(secretRef.name, c.namespace)
    const secret =
      cached !== undefined && cached.data?.[secretRef.key] !== undefined
        ? (cached as unknown as V1Secret)
        : yield* kube.readSecret(c.namespace, secretRef.name).pipe(Effect.mapError(apiRetry(`cannot read Secret ${c.namespace}/${secretRef.name}`)))
    if (secret === undefined) {
      return yield* badInput(
        `${field("spec.auth.token.secretRef.name")}: Secret ${c.namespace}/${secretRef.name} does not exist; create it with the GitLab access token: kubectl -n ${c.namespace} create secret generic ${secretRef.name} --from-literal=${secretRef.key}=<token with the api scope>`,
      )
    }
    const encoded = secret.data?.[secretRef.key]
    if (encoded === undefined) {
      return yield* badInput(
        `${field("spec.auth.token.secretRef.key")}: Secret ${c.namespace}/${secretRef.name} has no key "${secretRef.key}" (it has: ${Object.keys(secret.data ?? {}).join(", ") || "none"}); put the access token under that key or fix the key`,
      )
    }
    const token = Buffer.from(encoded, "base64").toString("utf8").trim()
    if (token === "") {
      return yield* badInput(
        `${field("spec.auth.token.secretRef.key")}: key "${secretRef.key}" of Secret ${c.namespace}/${secretRef.name} is empty; put the access token there`,
      )
    }
    const cas = yield* casFor(deps, spec, c.namespace, field, true)
    // Keep the auth Secret while tokens may need it for revocation.
    if (!(secret.metadata?.finalizers ?? []).includes(AUTH_FINALIZER) || secret.metadata?.labels?.[AUTH_LABEL] !== "true") {
      if (secret.metadata?.deletionTimestamp === undefined) {
        yield* kube
          .addFinalizer("Secret", secret as unknown as Obj, AUTH_FINALIZER, { [AUTH_LABEL]: "true" })
          .pipe(Effect.mapError(apiRetry(`cannot add finalizer ${AUTH_FINALIZER} to Secret ${c.namespace}/${secretRef.name}`)))
      }
    }
    // Keep the generator too when it carries a CA: revoking needs it even when a namespace is deleted
    // at once. Everything else revocation needs (URL, target, auth Secret) is in the state record, so a
    // generator without caBundle or caProvider costs no write.
    if (spec.caBundle !== undefined || spec.caProvider !== undefined) {
      const [kind, g] =
        ref.kind === "GitlabDeployToken"
          ? [GENERATOR, cache.informed.generators.get(ref.name, c.namespace)]
          : [CLUSTER_GENERATOR, cache.informed.clusterGenerators.get(ref.name)]
      if (g !== undefined && g.metadata.deletionTimestamp === undefined && !(g.metadata.finalizers ?? []).includes(GENERATOR_FINALIZER)) {
        yield* kube.addFinalizer(kind, g, GENERATOR_FINALIZER).pipe(Effect.mapError(apiRetry(`cannot add finalizer ${GENERATOR_FINALIZER} to ${desc}`)))
      }
    }
    return {
      spec,
      generatorDesc: desc,
      connection: {
        url: spec.url,
        accessToken: Redacted.make(token),
        caPem: cas.length === 0 ? undefined : cas.join("\n"),
        allowHttp: options.allowHttp,
      },
    }
  })

/**
 * The CAs to trust for a spec: --gitlab-ca-file's, the spec's caBundle and its caProvider's. With
 * `hold`, a caProvider Secret or ConfigMap gets our finalizer and label before anything is minted:
 * revoking those tokens will need it, even while its namespace is being deleted.
 */
const casFor = (deps: Deps, spec: DeployTokenSpec, namespace: string, field: (path: string) => string, hold: boolean) =>
  Effect.gen(function* () {
    const { cache, kube, options } = deps
    const cas: Array<string> = []
    if (options.gitlabCaPem !== undefined) cas.push(options.gitlabCaPem)
    if (spec.caBundle !== undefined) cas.push(spec.caBundle)
    if (spec.caProvider !== undefined) {
      const p = spec.caProvider
      if (p.namespace !== undefined && p.namespace !== namespace) {
        return yield* badInput(`${field("spec.caProvider.namespace")}: must be the consumer's namespace (${namespace}) or unset`)
      }
      let pem: string | undefined | null
      let holder: Obj | undefined
      if (p.type === "Secret") {
        const s = yield* kube.readSecret(namespace, p.name).pipe(Effect.mapError(apiRetry(`cannot read Secret ${namespace}/${p.name}`)))
        pem = s === undefined ? undefined : s.data?.[p.key] === undefined ? null : Buffer.from(s.data[p.key]!, "base64").toString("utf8")
        holder = s as unknown as Obj | undefined
      } else {
        // From the informer once the ConfigMap is held (labelled), else from the API.
        const cached = cache.informed.caConfigMaps.get(p.name, namespace)
        holder =
          cached !== undefined && (cached.metadata.finalizers ?? []).includes(CA_FINALIZER) && cached.data?.[p.key] !== undefined
            ? cached
            : ((yield* kube.readConfigMap(namespace, p.name).pipe(Effect.mapError(apiRetry(`cannot read ConfigMap ${namespace}/${p.name}`)))) as unknown as
                | Obj
                | undefined)
        pem = holder === undefined ? undefined : (holder.data?.[p.key] ?? null)
      }
      if (pem === undefined)
        return yield* badInput(`${field("spec.caProvider.name")}: ${p.type} ${namespace}/${p.name} does not exist; create it with the CA bundle`)
      if (pem === null || !pem.includes("-----BEGIN CERTIFICATE-----")) {
        return yield* badInput(`${field("spec.caProvider.key")}: ${p.type} ${namespace}/${p.name} has no PEM certificate under key "${p.key}"`)
      }
      // Kept like the auth Secret: revocation needs it. (One being deleted cannot take a new finalizer.)
      if (hold && holder !== undefined && holder.metadata.deletionTimestamp === undefined) {
        const [finalizer, label] = p.type === "Secret" ? [AUTH_FINALIZER, AUTH_LABEL] : [CA_FINALIZER, CA_LABEL]
        yield* kube
          .addFinalizer(p.type, holder, finalizer, { [label]: "true" })
          .pipe(Effect.mapError(apiRetry(`cannot add finalizer ${finalizer} to ${p.type} ${namespace}/${p.name}`)))
      }
      cas.push(pem)
    }
    return cas
  })

/** Turns a lifecycle failure into a message naming the field and the fix, and whether it is bad input. */
const classify = (e: LifecycleFailure, r: Resolved | undefined, c: Consumer): BadInputError | RetryError => {
  const ref = r?.spec.auth.secretRef
  const auth = ref === undefined ? "the auth Secret" : `Secret ${c.namespace}/${ref.name} (key ${ref.key})`
  const target = r === undefined ? "the target" : `${r.spec.target.kind} ${r.spec.target.id} at ${r.spec.url}`
  switch (e._tag) {
    case "Unauthorized":
      return new BadInputError(
        `${r?.generatorDesc ?? "generator"}: spec.auth.token.secretRef: GitLab answered 401 Unauthorized: the access token in ${auth} is unknown, expired or revoked; put a valid token with the api scope there (${e.message})`,
      )
    case "Forbidden":
      return new BadInputError(
        `${r?.generatorDesc ?? "generator"}: spec.auth.token.secretRef: GitLab answered 403 Forbidden for ${target}: the access token in ${auth} needs the api scope and the Maintainer role on the project (Owner on a group) (${e.message})`,
      )
    case "TargetNotFound":
      return new BadInputError(
        `${r?.generatorDesc ?? "generator"}: spec.${r?.spec.target.kind === "group" ? "groupID" : "projectID"}: ${target} was not found or is not visible to the access token in ${auth}; check the id or path and the token's access (${e.message})`,
      )
    case "Moved":
      return new BadInputError(`${r?.generatorDesc ?? "generator"}: spec.projectID: ${e.message}; use the numeric id of the project`)
    case "Invalid":
      return new BadInputError(`${r?.generatorDesc ?? "generator"}: GitLab refused the request: ${e.message}; fix the generator's spec`)
    case "SinkError":
      return new BadInputError(`spec.target: ${e.message}`)
    default:
      return new RetryError(`${e._tag}: ${e.message}`)
  }
}

const readyCondition = (obj: Obj, status: "True" | "False", reason: string, message: string, now: Date) => {
  const prev = ((obj.status as { conditions?: Array<Record<string, unknown>> } | undefined)?.conditions ?? []).find((x) => x.type === "Ready")
  return {
    type: "Ready",
    status,
    reason,
    message,
    lastTransitionTime:
      prev !== undefined && prev.status === status && typeof prev.lastTransitionTime === "string" ? prev.lastTransitionTime : now.toISOString(),
  }
}

const sameStatus = (a: unknown, b: Record<string, unknown>): boolean => JSON.stringify(a ?? {}) === JSON.stringify(b)

/** Whether any of these state objects still holds a token (current, pending, retiring, or a create in flight). */
const holdsTokens = (states: ReadonlyArray<Obj>) =>
  states.some((s) => {
    const r = (s.spec as { record?: StateRecord } | undefined)?.record
    return r !== undefined && (r.current !== undefined || r.pending !== undefined || (r.retiring ?? []).length > 0 || r.intent !== undefined)
  })

export const make = (deps: Deps) => {
  const { cache, kube, metrics, options } = deps
  /** When a force-sync (label/annotation/generation change) was first seen per key: the rotate request time. */
  const changeSeen = new Map<string, { readonly hash: string; readonly at: number }>()
  /** Last Warning per key, so a retried failure does not flood Events. */
  const lastWarning = new Map<string, { readonly message: string; readonly at: number }>()
  /** When each key's live token was last checked against GitLab's list. */
  const lastListCheck = new Map<string, number>()
  /** One list per GitLab target and check interval, shared by every consumer of that target. */
  const lists = new SharedLists(deps.gitlab)
  /** Target Secrets by the consumer that created them (made before the cache starts, see `LabelIndex`). */
  const secretsByCreator = new LabelIndex(cache.informed.managedSecrets, LABEL_CREATED_BY)

  const consumerOf = (kind: ConsumerKind, namespace: string, name: string): Consumer | "gone" | "not-ours" => {
    if (kind === "ExternalSecret") {
      const es = cache.informed.externalSecrets.get(name, namespace)
      if (es === undefined) return "gone"
      return fromExternalSecret(es) ?? "not-ours"
    }
    const obj = cache.informed.consumers.get(name, namespace)
    return obj === undefined ? "gone" : fromConsumer(obj)
  }

  const involved = (c: Consumer) => ({
    apiVersion: `${c.api.group}/${c.api.version}`,
    kind: c.api.kind,
    name: c.name,
    namespace: c.namespace,
    uid: c.obj.metadata.uid,
  })

  const warn = (c: Consumer, reason: string, message: string) =>
    Effect.gen(function* () {
      const now = Date.now()
      const last = lastWarning.get(c.key)
      if (last !== undefined && last.message === message && now - last.at < 10 * 60_000) return
      lastWarning.set(c.key, { message, at: now })
      yield* kube.event(involved(c), "Warning", reason, message)
    })

  const writeStatus = (c: Consumer, status: Record<string, unknown>) =>
    sameStatus(c.obj.status, status)
      ? Effect.void
      : kube
          .patchStatus(c.api, c.obj, status)
          .pipe(Effect.catch((e) => Effect.logWarning("could not write status").pipe(Effect.annotateLogs({ key: c.key, error: e.message }))))

  const failStatus = (c: Consumer, message: string) =>
    Effect.gen(function* () {
      const prev = (c.obj.status ?? {}) as Record<string, unknown>
      const status = { ...prev, conditions: [readyCondition(c.obj, "False", "SecretSyncedError", message, new Date())] }
      yield* writeStatus(c, status)
      yield* warn(c, "UpdateFailed", message)
    })

  const ownerOf = (c: Consumer) => ({ apiVersion: `${c.api.group}/${c.api.version}`, kind: c.api.kind, name: c.name, uid: c.obj.metadata.uid ?? "" })

  /**
   * The consumer's State for one reconcile: loads reuse what this reconcile read or wrote, and the
   * fingerprint draw reads the informer's state objects instead of every key from the API.
   */
  const stateFor = (namespace: string, owner: ReturnType<typeof ownerOf> | undefined, absent: ReadonlyArray<string> = []) =>
    KubeState.make({
      namespace,
      kubeConfig: kube.kubeConfig,
      owner,
      reuseReads: true,
      absent,
      view: {
        list: () => cache.informed.states.list(namespace) as unknown as ReadonlyArray<KubeState.StateObject>,
      },
    })

  const layersFor = (c: Consumer, withSink: boolean, state: State["Service"]) =>
    Layer.mergeAll(
      Layer.succeed(State, state),
      withSink
        ? KubeSink.layer({
            namespace: c.namespace,
            kubeConfig: kube.kubeConfig,
            owner: ownerOf(c),
            target: c.target,
            reuseReads: true,
            // A consumer never synced whose target Secret the informer does not have: its Secret is
            // created, not read first (one request less per new consumer; see KubeSink's `absent`).
            absent:
              isNew(c.obj) &&
              c.target.creationPolicy !== "Merge" &&
              c.target.creationPolicy !== "None" &&
              cache.informed.managedSecrets.get(c.target.name, c.namespace) === undefined,
            // Only the Secrets this consumer created: all the sink looks for, without copying the namespace's.
            view: { list: () => secretsByCreator.of(c.namespace, createdByLabel(c.namespace, c.name)) as unknown as ReadonlyArray<SecretObject> },
          })
        : nullSink,
    )

  const recordOutcome = (report: Report) => {
    for (const a of report.actions) {
      if (a.action === "minted" || a.action === "rotated") metrics.minted.inc()
      if (a.action === "revoked") metrics.revoked.inc()
    }
    if (report.revokeErrors.length > 0) metrics.revocationFailures.inc(report.revokeErrors.length)
  }

  /**
   * A consumer's first mint needs the target's numeric id and its highest token id (core's recovery
   * watermark). Core would look both up for every new consumer; 1,000 consumers on one project
   * would list 10 pages each. Instead one lookup per target and WATERMARK_LIST_MAX_AGE_MS serves
   * every new consumer, handed to core as hints it saves with the mint's intent. An older list only
   * lowers the watermark, which can only widen what recovery looks at, never hide a token.
   */
  const firstMintHints = (c: Consumer, r: Resolved, nowMs: number) =>
    Effect.gen(function* () {
      const exists = cache.informed.states.get(KubeState.objectName(c.key), c.namespace) !== undefined
      if (exists) return undefined
      // Before the first mint: may this token create at all? A refusal is bad input, and no POST is sent.
      const refused = yield* lists.canManage(r, nowMs, WATERMARK_LIST_MAX_AGE_MS)
      if (refused !== undefined && (refused._tag === "Unauthorized" || refused._tag === "Forbidden" || refused._tag === "TargetNotFound")) {
        return yield* Effect.fail(classify(refused, r, c))
      }
      const listed = yield* lists.get(r, nowMs, WATERMARK_LIST_MAX_AGE_MS)
      const numericId = /^\d+$/.test(r.spec.target.id) ? undefined : yield* lists.resolve(r)
      return {
        numericId,
        highestTokenId: listed === undefined ? undefined : listed.reduce((m, t) => Math.max(m, t.id), 0),
      } satisfies TargetHints
    })

  /** Loads the consumer's state record (none → undefined). */
  const loadRecord = (namespace: string, key: string) =>
    Effect.gen(function* () {
      const state = yield* KubeState.make({ namespace, kubeConfig: kube.kubeConfig })
      const found = yield* state.load(key)
      return Option.getOrUndefined(found)?.record
    })

  /** Revokes every token of a consumer that is being deleted (or is gone). Returns true once nothing live is left. */
  const revokeEverything = (namespace: string, key: string, c: Consumer | undefined) =>
    Effect.gen(function* () {
      const record = yield* loadRecord(namespace, key).pipe(Effect.mapError((e) => new RetryError(e.message)))
      if (record === undefined) return { done: true, nextAt: undefined }
      const tokens = [record.current, record.pending, ...record.retiring].filter((t) => t !== undefined)
      const location = record.intent?.location ?? tokens[0]?.location ?? record.suspects[0]?.location
      if (location === undefined) {
        // An empty record: core removes it without calling GitLab.
        const report = yield* revokeAll({ key, connection: { url: "https://gitlab.invalid", accessToken: Redacted.make("") } }).pipe(
          Effect.provide(Layer.mergeAll(KubeState.layer({ namespace, kubeConfig: kube.kubeConfig }), nullSink)),
          Effect.provideService(GitLab, deps.gitlab),
          Effect.mapError((e) => new RetryError(e.message)),
        )
        return { done: true, nextAt: report.nextAt }
      }
      const authRef = location.auth
      if (authRef === undefined)
        return yield* Effect.fail(new RetryError(`the state record of ${key} names no auth Secret; revoke its tokens with gldt revoke`))
      const secret = yield* kube.readSecret(namespace, authRef.name).pipe(Effect.mapError(apiRetry(`cannot read Secret ${namespace}/${authRef.name}`)))
      const encoded = secret?.data?.[authRef.key]
      if (encoded === undefined) {
        return yield* Effect.fail(
          new BadInputError(
            `cannot revoke the deploy tokens of ${key}: Secret ${namespace}/${authRef.name} (key ${authRef.key}) with the GitLab access token is gone; recreate it so the tokens can be revoked`,
          ),
        )
      }
      // The generator (kept by our finalizer) carries the CA for this instance.
      let cas: ReadonlyArray<string> = options.gitlabCaPem === undefined ? [] : [options.gitlabCaPem]
      if (c?.generatorRef !== undefined) {
        const g =
          c.generatorRef.kind === "GitlabDeployToken"
            ? cache.informed.generators.get(c.generatorRef.name, namespace)?.spec
            : (cache.informed.clusterGenerators.get(c.generatorRef.name)?.spec as { generator?: { gitlabDeployTokenSpec?: unknown } } | undefined)?.generator
                ?.gitlabDeployTokenSpec
        const v = g === undefined ? undefined : validateSpec(g, { allowHttp: options.allowHttp })
        if (v?.spec !== undefined) cas = yield* casFor(deps, v.spec, namespace, (p) => p, false).pipe(Effect.orElseSucceed(() => cas))
      }
      const connection: Connection = {
        url: location.url,
        accessToken: Redacted.make(Buffer.from(encoded, "base64").toString("utf8").trim()),
        caPem: cas.length === 0 ? undefined : cas.join("\n"),
        allowHttp: options.allowHttp,
      }
      const layers =
        c === undefined
          ? Layer.mergeAll(KubeState.layer({ namespace, kubeConfig: kube.kubeConfig }), nullSink)
          : layersFor(c, true, yield* stateFor(namespace, ownerOf(c)))
      const report = yield* revokeAll({ key, connection }, { removeFromSink: c !== undefined, suspectWaitMs: options.suspectWaitMs }).pipe(
        Effect.provide(layers),
        Effect.provideService(GitLab, deps.gitlab),
        Effect.mapError((e) => classify(e, undefined, c ?? ({ namespace } as Consumer))),
      )
      recordOutcome(report)
      if (report.revokeErrors.length > 0) {
        return yield* Effect.fail(
          new RetryError(`revocation failed: ${report.revokeErrors.map((r) => `token ${r.tokenId}: ${r.error}`).join("; ")}`, report.nextAt),
        )
      }
      const after = yield* loadRecord(namespace, key).pipe(Effect.mapError((e) => new RetryError(e.message)))
      // Suspects do not hold the consumer: core releases them after its bounded wait (report.nextAt).
      const done =
        after === undefined || (after.current === undefined && after.pending === undefined && after.retiring.length === 0 && after.intent === undefined)
      return { done, nextAt: report.nextAt }
    })

  /**
   * Whether a generator that consumers in `namespace` may use (one of the namespace's, or any
   * ClusterGenerator) names this Secret or ConfigMap as its caProvider: revocation reads the CA
   * through the consumer's current generator, which is itself held while its tokens exist.
   */
  const caInUse = (namespace: string, type: "Secret" | "ConfigMap", name: string) =>
    [
      ...cache.informed.generators.list(namespace).map((g) => g.spec),
      ...cache.informed.clusterGenerators
        .list()
        .map((g) => (g.spec as { generator?: { gitlabDeployTokenSpec?: unknown } } | undefined)?.generator?.gitlabDeployTokenSpec),
    ].some((spec) => {
      const p = (spec as { caProvider?: { type?: unknown; name?: unknown; namespace?: unknown } } | undefined)?.caProvider
      return p?.type === type && p.name === name && (p.namespace === undefined || p.namespace === namespace)
    })

  /** Drops our finalizer from an auth (or caProvider) Secret once no state record in its namespace needs it. */
  const releaseAuthSecret = (namespace: string, name: string) =>
    Effect.gen(function* () {
      const secret = yield* kube.readSecret(namespace, name).pipe(Effect.mapError(apiRetry(`cannot read Secret ${namespace}/${name}`)))
      if (secret === undefined || !(secret.metadata?.finalizers ?? []).includes(AUTH_FINALIZER)) return
      const states = yield* kube.listStates(namespace).pipe(Effect.mapError(apiRetry(`cannot list states in ${namespace}`)))
      // A record names the auth Secret its tokens were minted with; a caProvider Secret is needed by any token left.
      const needed =
        states.some((s) => {
          const r = (s.spec as { record?: StateRecord } | undefined)?.record
          if (r === undefined) return false
          const locs = [r.current, r.pending, ...(r.retiring ?? []), r.intent].filter((t) => t !== undefined).map((t) => t.location)
          return locs.some((l) => l.auth?.name === name)
        }) ||
        (caInUse(namespace, "Secret", name) && holdsTokens(states))
      // Consumers that still exist and use it keep it too (unless the Secret itself is being deleted with them).
      const usedByLive =
        secret.metadata?.deletionTimestamp === undefined &&
        [...cache.informed.externalSecrets.list(namespace), ...cache.informed.consumers.list(namespace)].some((o) => o.metadata.deletionTimestamp === undefined)
      if (needed || usedByLive) return
      yield* kube
        .removeFinalizer("Secret", secret as unknown as Obj, AUTH_FINALIZER)
        .pipe(Effect.mapError(apiRetry(`cannot remove finalizer ${AUTH_FINALIZER} from Secret ${namespace}/${name}`)))
      yield* Effect.logInfo("released the auth Secret").pipe(Effect.annotateLogs({ namespace, secret: name }))
    })

  /**
   * Drops our finalizer from a caProvider ConfigMap once no generator names it, or once no state
   * record in its namespace holds a token and no live consumer is left (one being deleted waits for
   * the tokens only).
   */
  const releaseCaConfigMap = (namespace: string, name: string) =>
    Effect.gen(function* () {
      const cm = yield* kube.readConfigMap(namespace, name).pipe(Effect.mapError(apiRetry(`cannot read ConfigMap ${namespace}/${name}`)))
      if (cm === undefined || !(cm.metadata?.finalizers ?? []).includes(CA_FINALIZER)) return
      if (caInUse(namespace, "ConfigMap", name)) {
        const states = yield* kube.listStates(namespace).pipe(Effect.mapError(apiRetry(`cannot list states in ${namespace}`)))
        const usedByLive =
          cm.metadata?.deletionTimestamp === undefined &&
          [...cache.informed.externalSecrets.list(namespace), ...cache.informed.consumers.list(namespace)].some(
            (o) => o.metadata.deletionTimestamp === undefined,
          )
        if (holdsTokens(states) || usedByLive) return
      }
      yield* kube
        .removeFinalizer("ConfigMap", cm as unknown as Obj, CA_FINALIZER)
        .pipe(Effect.mapError(apiRetry(`cannot remove finalizer ${CA_FINALIZER} from ConfigMap ${namespace}/${name}`)))
      yield* Effect.logInfo("released the caProvider ConfigMap").pipe(Effect.annotateLogs({ namespace, configMap: name }))
    })

  /**
   * Drops our finalizer from the namespace's generators once no state record there holds a token
   * and no live consumer uses the generator.
   */
  const releaseGenerators = (namespace: string) =>
    Effect.gen(function* () {
      const held = cache.informed.generators.list(namespace).filter((g) => (g.metadata.finalizers ?? []).includes(GENERATOR_FINALIZER))
      if (held.length === 0) return
      const states = yield* kube.listStates(namespace).pipe(Effect.mapError(apiRetry(`cannot list states in ${namespace}`)))
      if (holdsTokens(states)) return
      for (const g of held) {
        const usedByLive = [...cache.informed.externalSecrets.list(namespace), ...cache.informed.consumers.list(namespace)].some(
          (o) =>
            o.metadata.deletionTimestamp === undefined &&
            (o.kind === "ExternalSecret"
              ? fromExternalSecret(o)?.generatorRef?.name === g.metadata.name
              : fromConsumer(o).generatorRef?.name === g.metadata.name),
        )
        if (usedByLive && g.metadata.deletionTimestamp === undefined) continue
        yield* kube
          .removeFinalizer(GENERATOR, g, GENERATOR_FINALIZER)
          .pipe(Effect.mapError(apiRetry(`cannot release GitlabDeployToken ${namespace}/${g.metadata.name}`)))
      }
    })

  /**
   * Drops our finalizer from a ClusterGenerator once no consumer in any namespace names it: a
   * consumer being deleted still does until its tokens are revoked (with this CA) and it is gone.
   */
  const releaseClusterGenerator = (name: string) =>
    Effect.gen(function* () {
      const g = cache.informed.clusterGenerators.get(name)
      if (g === undefined || !(g.metadata.finalizers ?? []).includes(GENERATOR_FINALIZER)) return
      const named =
        cache.informed.externalSecrets.list().some((es) => gldtRefs(es).some((r) => r.kind === "ClusterGenerator" && r.name === name)) ||
        cache.informed.consumers.list().some((o) => {
          const r = fromConsumer(o).generatorRef
          return r?.kind === "ClusterGenerator" && r.name === name
        })
      if (named) return
      yield* kube.removeFinalizer(CLUSTER_GENERATOR, g, GENERATOR_FINALIZER).pipe(Effect.mapError(apiRetry(`cannot release ClusterGenerator ${name}`)))
      yield* Effect.logInfo("released the ClusterGenerator").pipe(Effect.annotateLogs({ clusterGenerator: name }))
    })

  const authNames = (namespace: string) =>
    cache.informed.authSecrets
      .list(namespace)
      .filter((s) => (s.metadata.finalizers ?? []).includes(AUTH_FINALIZER))
      .map((s) => s.metadata.name)

  const caConfigMapNames = (namespace: string) =>
    cache.informed.caConfigMaps
      .list(namespace)
      .filter((m) => (m.metadata.finalizers ?? []).includes(CA_FINALIZER))
      .map((m) => m.metadata.name)

  /** The consumer is being deleted: revoke, then let it go. */
  const finalize = (c: Consumer) =>
    Effect.gen(function* () {
      if (!(c.obj.metadata.finalizers ?? []).includes(CONSUMER_FINALIZER)) return undefined
      const { done } = yield* revokeEverything(c.namespace, c.key, c)
      if (!done) return yield* Effect.fail(new RetryError(`tokens of ${c.key} are not all revoked yet`))
      yield* kube.removeFinalizer(c.api, c.obj, CONSUMER_FINALIZER).pipe(Effect.mapError(apiRetry(`cannot remove finalizer from ${c.kind} ${c.key}`)))
      yield* Effect.logInfo("consumer deleted; every token revoked").pipe(Effect.annotateLogs({ key: c.key }))
      for (const name of authNames(c.namespace)) yield* releaseAuthSecret(c.namespace, name).pipe(Effect.ignore)
      for (const name of caConfigMapNames(c.namespace)) yield* releaseCaConfigMap(c.namespace, name).pipe(Effect.ignore)
      yield* releaseGenerators(c.namespace).pipe(Effect.ignore)
      changeSeen.delete(c.key)
      lastWarning.delete(c.key)
      lastListCheck.delete(c.key)
      return undefined
    })

  const sync = (c: Consumer) =>
    Effect.gen(function* () {
      const nowMs = yield* Clock.currentTimeMillis
      // The finalizer first: no token may exist that deletion would not revoke.
      if (!(c.obj.metadata.finalizers ?? []).includes(CONSUMER_FINALIZER)) {
        yield* kube.addFinalizer(c.api, c.obj, CONSUMER_FINALIZER).pipe(Effect.mapError(apiRetry(`cannot add finalizer to ${c.kind} ${c.key}`)))
      }
      const resolved = yield* resolve(deps, c, nowMs)
      // A consumer never synced whose state object the informer does not have: its first load is
      // not a read (see KubeState's `absent`).
      const unseen = isNew(c.obj) && cache.informed.states.get(KubeState.objectName(c.key), c.namespace) === undefined
      const state = yield* stateFor(c.namespace, ownerOf(c), unseen ? [c.key] : [])
      const layers = layersFor(c, true, state)
      const job: Job = {
        key: c.key,
        spec: resolved.spec,
        connection: resolved.connection,
        policy: {
          refreshIntervalMs: c.refreshIntervalMs,
          graceMs: resolved.spec.revokeGracePeriodMs ?? DEFAULT_GRACE_MS,
          refreshPolicy: c.refreshPolicy,
        },
        targetHints: yield* firstMintHints(c, resolved, nowMs),
      }
      const status = (c.obj.status ?? {}) as { syncedResourceVersion?: string; refreshTime?: string }
      // ESO's force-sync: a change of generation, labels or annotations since the last sync asks for a new token.
      let requestedAt: number | undefined
      if (c.refreshPolicy !== "CreatedOnce" && status.syncedResourceVersion !== undefined && status.syncedResourceVersion !== c.resourceVersionHash) {
        const seen = changeSeen.get(c.key)
        requestedAt = seen?.hash === c.resourceVersionHash ? seen.at : nowMs
        changeSeen.set(c.key, { hash: c.resourceVersionHash, at: requestedAt })
      }
      const run = requestedAt === undefined ? reconcile(job) : rotate(job, requestedAt)
      const report = yield* run.pipe(
        Effect.provide(layers),
        Effect.provideService(GitLab, deps.gitlab),
        Effect.mapError((e) => classify(e, resolved, c)),
      )
      recordOutcome(report)
      const minted = report.actions.find((a) => a.action === "minted" || a.action === "rotated")
      const now = new Date(yield* Clock.currentTimeMillis)
      if (report.currentTokenId === undefined) {
        // Nothing delivered yet (an interrupted create is settling): not ready, not an error.
        yield* writeStatus(c, {
          ...status,
          conditions: [readyCondition(c.obj, "False", "SecretSyncing", "waiting for an interrupted create to settle before minting", now)],
        })
      } else {
        yield* writeStatus(c, {
          ...status,
          refreshTime: minted !== undefined || status.refreshTime === undefined ? now.toISOString() : status.refreshTime,
          syncedResourceVersion: c.resourceVersionHash,
          binding: { name: c.target.name },
          conditions: [readyCondition(c.obj, "True", "SecretSynced", "secret synced", now)],
        })
      }
      if (minted !== undefined) {
        yield* kube.event(
          involved(c),
          "Normal",
          minted.action === "minted" ? "Created" : "Updated",
          `deploy token ${minted.tokenId} ${minted.action === "minted" ? "minted" : "minted to replace the previous one"} and written to Secret ${c.namespace}/${c.target.name} (${minted.detail ?? report.reason ?? ""})`,
        )
      }
      lastWarning.delete(c.key)
      if (report.revokeErrors.length > 0) {
        yield* warn(
          c,
          "RevocationFailed",
          `revocation failed and will be retried: ${report.revokeErrors.map((r) => `token ${r.tokenId}: ${r.error}`).join("; ")}`,
        )
      }
      // Tokens revoked outside gldt (GitLab's UI): list the target now and then; a missing current token is replaced.
      let checkDue: number | undefined
      if (options.revocationCheckIntervalMs > 0 && report.currentTokenId !== undefined) {
        const last = lastListCheck.get(c.key)
        if (last === undefined) lastListCheck.set(c.key, nowMs)
        else if (nowMs - last >= options.revocationCheckIntervalMs) {
          lastListCheck.set(c.key, nowMs)
          const alive = yield* listedAlive(lists, resolved, report.currentTokenId, nowMs, options.revocationCheckIntervalMs)
          if (!alive) {
            yield* Effect.logWarning("the current token was revoked outside gldt; replacing it").pipe(
              Effect.annotateLogs({ key: c.key, tokenId: report.currentTokenId }),
            )
            yield* warn(c, "TokenRevokedOutside", `deploy token ${report.currentTokenId} was revoked or deleted in GitLab outside gldt; minting a replacement`)
            const again = yield* rotate(job, nowMs + 1).pipe(
              Effect.provide(layers),
              Effect.provideService(GitLab, deps.gitlab),
              Effect.mapError((e) => classify(e, resolved, c)),
            )
            recordOutcome(again)
          }
        }
        checkDue = (lastListCheck.get(c.key) ?? nowMs) + options.revocationCheckIntervalMs
      }
      const next = [report.nextAt, checkDue].filter((t): t is number => t !== undefined)
      const nextAt = next.length === 0 ? undefined : Math.min(...next)
      return nextAt === undefined ? undefined : Math.max(1_000, nextAt - (yield* Clock.currentTimeMillis))
    })

  /** One reconcile of a queue key. */
  const run = (kind: ConsumerKind, namespace: string, name: string): Effect.Effect<Outcome> =>
    Effect.gen(function* () {
      const c = consumerOf(kind, namespace, name)
      if (c === "not-ours") return { _tag: "Done", requeueAfterMs: undefined } as Outcome
      if (c === "gone") {
        // The consumer is gone without our finalizer having run (removed by hand): revoke what its record still holds.
        const key = stateKey(kind, namespace, name)
        const state = cache.informed.states.list(namespace).find((s) => (s.spec as { key?: string } | undefined)?.key === key)
        if (state === undefined) return { _tag: "Done", requeueAfterMs: undefined } as Outcome
        const { nextAt } = yield* revokeEverything(namespace, key, undefined)
        const now = yield* Clock.currentTimeMillis
        return { _tag: "Done", requeueAfterMs: nextAt === undefined ? undefined : Math.max(1_000, nextAt - now) } as Outcome
      }
      if (kind === "ExternalSecret" && !options.serveExternalSecrets() && !(c.obj.metadata.finalizers ?? []).includes(CONSUMER_FINALIZER)) {
        return { _tag: "Done", requeueAfterMs: undefined } as Outcome
      }
      if (c.obj.metadata.deletionTimestamp !== undefined) {
        yield* finalize(c).pipe(Effect.tapError((e) => warn(c, "RevocationFailed", e.message)))
        return { _tag: "Done", requeueAfterMs: undefined } as Outcome
      }
      if (kind === "ExternalSecret" && !options.serveExternalSecrets()) return { _tag: "Done", requeueAfterMs: undefined } as Outcome
      const requeueAfterMs = yield* sync(c).pipe(Effect.tapError((e) => failStatus(c, e.message)))
      return { _tag: "Done", requeueAfterMs } as Outcome
    }).pipe(
      Effect.catch((e: BadInputError | RetryError) =>
        Effect.map(
          Clock.currentTimeMillis,
          (now): Outcome =>
            e._tag === "BadInputError"
              ? { _tag: "BadInput", message: e.message }
              : { _tag: "Retry", message: e.message, retryAfterMs: e.retryAt === undefined ? undefined : retryDelayMs(e.retryAt, now) },
        ),
      ),
    )

  /** The auth Secret is being deleted: let it go once no token needs it. */
  const runAuth = (namespace: string, name: string): Effect.Effect<Outcome> =>
    releaseAuthSecret(namespace, name).pipe(
      Effect.as<Outcome>({ _tag: "Done", requeueAfterMs: undefined }),
      Effect.catch((e) => Effect.succeed<Outcome>({ _tag: "Retry", message: e.message })),
    )

  /** A caProvider ConfigMap is being deleted (or its generators changed): let it go once no token needs it. */
  const runCa = (namespace: string, name: string): Effect.Effect<Outcome> =>
    releaseCaConfigMap(namespace, name).pipe(
      Effect.as<Outcome>({ _tag: "Done", requeueAfterMs: undefined }),
      Effect.catch((e) => Effect.succeed<Outcome>({ _tag: "Retry", message: e.message })),
    )

  /** A generator is being deleted: let it go once no token needs it. */
  const runGenerators = (namespace: string): Effect.Effect<Outcome> =>
    releaseGenerators(namespace).pipe(
      Effect.as<Outcome>({ _tag: "Done", requeueAfterMs: undefined }),
      Effect.catch((e) => Effect.succeed<Outcome>({ _tag: "Retry", message: e.message })),
    )

  const runClusterGenerator = (name: string): Effect.Effect<Outcome> =>
    releaseClusterGenerator(name).pipe(
      Effect.as<Outcome>({ _tag: "Done", requeueAfterMs: undefined }),
      Effect.catch((e) => Effect.succeed<Outcome>({ _tag: "Retry", message: e.message })),
    )

  return { run, runAuth, runCa, runGenerators, runClusterGenerator, fromStateKey }
}

type Listed = ReadonlyArray<{ readonly id: number; readonly revoked: boolean; readonly expired: boolean }>

/**
 * One list of a GitLab target shared by every consumer of that target for a while: concurrent
 * callers wait for the same requests. A failed list is remembered as undefined for its lifetime.
 */
class SharedLists {
  private readonly entries = new Map<string, { readonly at: number; readonly tokens: Promise<Listed | undefined> }>()
  private readonly gitlab: GitLab["Service"]
  constructor(gitlab: GitLab["Service"]) {
    this.gitlab = gitlab
  }
  get(r: Resolved, nowMs: number, maxAgeMs: number): Effect.Effect<Listed | undefined> {
    // Per access token too: another token may see another list, or none at all.
    const k = `${r.spec.url}|${r.spec.target.kind}|${r.spec.target.id}|${createHash("sha256").update(Redacted.value(r.connection.accessToken)).digest("hex")}`
    let entry = this.entries.get(k)
    if (entry === undefined || nowMs - entry.at >= maxAgeMs) {
      entry = { at: nowMs, tokens: Effect.runPromise(this.gitlab.list(r.connection, r.spec.target).pipe(Effect.orElseSucceed(() => undefined))) }
      this.entries.set(k, entry)
    }
    const tokens = entry.tokens
    return Effect.promise(() => tokens)
  }

  private readonly resolved = new Map<string, Promise<string | undefined>>()

  /** The numeric id of the spec's target (a path's never changes but by a move, which core detects). */
  resolve(r: Resolved): Effect.Effect<string | undefined> {
    const k = `${r.spec.url}|${r.spec.target.kind}|${r.spec.target.id}|${createHash("sha256").update(Redacted.value(r.connection.accessToken)).digest("hex")}`
    let entry = this.resolved.get(k)
    if (entry === undefined) {
      entry = Effect.runPromise(
        this.gitlab.resolveTarget(r.connection, r.spec.target).pipe(
          Effect.map((t) => t.id),
          Effect.orElseSucceed(() => undefined),
        ),
      )
      this.resolved.set(k, entry)
      // A failure is not remembered.
      entry.then((id) => {
        if (id === undefined) this.resolved.delete(k)
      })
    }
    const found = entry
    return Effect.promise(() => found)
  }

  private readonly probes = new Map<string, { readonly at: number; readonly outcome: Promise<GitLabError | undefined> }>()

  /**
   * Whether this access token may create and delete deploy tokens on the target, without changing
   * anything: `DELETE …/deploy_tokens/0` answers 404 when allowed and 401/403 when not (no token
   * has id 0). Shared like the lists.
   */
  canManage(r: Resolved, nowMs: number, maxAgeMs: number): Effect.Effect<GitLabError | undefined> {
    const k = `${r.spec.url}|${r.spec.target.kind}|${r.spec.target.id}|${createHash("sha256").update(Redacted.value(r.connection.accessToken)).digest("hex")}`
    let entry = this.probes.get(k)
    if (entry === undefined || nowMs - entry.at >= maxAgeMs) {
      const outcome = Effect.runPromise(
        this.gitlab.revoke(r.connection, r.spec.target, 0).pipe(
          Effect.as(undefined),
          Effect.catch((e: GitLabError) => Effect.succeed(e._tag === "TokenNotFound" ? undefined : e)),
        ),
      )
      entry = { at: nowMs, outcome }
      this.probes.set(k, entry)
    }
    const outcome = entry.outcome
    return Effect.promise(() => outcome)
  }
}

/**
 * Whether the current token still appears, live, in the target's list. A token newer than every
 * listed id was minted after the list and counts as alive; so does any token when the list failed
 * (the next check tries again).
 */
const listedAlive = (lists: SharedLists, r: Resolved, tokenId: number, nowMs: number, intervalMs: number) =>
  Effect.gen(function* () {
    const found = yield* lists.get(r, nowMs, intervalMs)
    if (found === undefined) return true
    const maxId = found.reduce((m, t) => Math.max(m, t.id), 0)
    if (tokenId > maxId) return true
    return found.some((t) => t.id === tokenId && !t.revoked && !t.expired)
  })
