/**
 * `Sink` as the target Secret of an ExternalSecret, written the way ESO writes it (labels,
 * data-hash annotation, owner reference per creation policy) plus `gldt.dev/token-id`, the GitLab id
 * of the token it holds, so `inspect` can tell which token the Secret holds without reading a secret
 * into State.
 *
 * `check` answers before any mint whether `deliver` could succeed: it validates the target and its
 * template, reads the Secret, applies the creation policy (None, Merge without a Secret, an immutable
 * Secret, a Secret owned by another ExternalSecret, a type change all fail) and finally asks the
 * apiserver with a dry-run write of the Secret filled with placeholder values (RBAC, admission, the
 * Secret type's own validation).
 */
import { SinkError } from "@gldt/core/Errors"
import { type Credential, type Held, revealToken, Sink } from "@gldt/core/Sink"
import { CoreV1Api, type KubeConfig, type V1Secret } from "@kubernetes/client-node"
import { shareConnections } from "./Connections.ts"
import { Effect, Layer } from "effect"
import { type KubeCallError, kubeCall, type Owner, orNotFound } from "./internal/kube.ts"
import {
  ANNOTATION_DATA_HASH,
  ANNOTATION_TOKEN_ID,
  type CompiledTarget,
  compileTarget,
  heldTokenId,
  LABEL_CREATED_BY,
  LABEL_MANAGED,
  otherExternalSecret,
  ownKeys,
  PLACEHOLDER,
  planWrite,
  type SecretObject,
  type Target,
  createdByLabel,
} from "./Target.ts"
import { secretDataHash } from "./internal/hash.ts"

export interface KubeSinkOptions {
  /** Namespace of the Secret (the consumer's namespace). */
  readonly namespace: string
  readonly kubeConfig: KubeConfig
  /** ESO's `spec.target` (name, creationPolicy, deletionPolicy, immutable, template). */
  readonly target: Target
  /** The consumer (ExternalSecret): controller owner of the Secret under creationPolicy Owner. */
  readonly owner?: Owner | undefined
  /** Field manager of gldt's writes. Default `gldt`. */
  readonly fieldManager?: string | undefined
  /**
   * For an instance that lives for one short unit of work (the controller makes one per
   * reconcile): the Secret is read once and then known from this instance's own writes. A write
   * that conflicts reads it again. Leave it off for a long-lived instance.
   */
  readonly reuseReads?: boolean | undefined
  /**
   * With `reuseReads`: the caller knows of no such Secret (say, its informer has none and the
   * consumer never synced), so the first read is skipped and the Secret is taken as absent. A wrong
   * guess costs a round trip, not a wrong write: creating a Secret that exists fails with 409, which
   * reads it and plans again.
   */
  readonly absent?: boolean | undefined
  /**
   * An informer's view of the namespace's managed Secrets (label
   * `reconcile.external-secrets.io/managed=true`), or only those labelled as created by this owner:
   * with it, finding the Secrets of a previous target name costs no list call. A lagging view only
   * delays that clean-up to the next delivery.
   */
  readonly view?: { list(): ReadonlyArray<SecretObject> } | undefined
}

const ATTEMPTS = 4

/** Removes any secret value from a message before it leaves the sink (the apiserver redacts them too). */
const scrub = (message: string, secrets: ReadonlyArray<string>): string =>
  secrets.filter((s) => s.length >= 4).reduce((m, s) => m.split(s).join("[redacted]"), message)

/** The sink service itself, for embedding without a Layer. */
export const make = (options: KubeSinkOptions) =>
  Effect.sync(() => {
    const api = shareConnections(options.kubeConfig).makeApiClient(CoreV1Api)
    const { namespace, owner } = options
    const fieldManager = options.fieldManager ?? "gldt"
    const compiled = compileTarget(options.target)
    const name = options.target.name
    const where = `Secret ${namespace}/${name}`

    const fail = (key: string, message: string) => new SinkError({ key, message })
    const apiFail =
      (key: string, what: string, secrets: ReadonlyArray<string> = []) =>
      (e: KubeCallError) =>
        fail(key, scrub(`${what} ${where}: ${e.toString()}`, secrets))

    const target = (key: string): Effect.Effect<CompiledTarget, SinkError> =>
      compiled.target !== undefined ? Effect.succeed(compiled.target) : Effect.fail(fail(key, `the target cannot be written: ${compiled.problems.join("; ")}`))

    /** The Secret as this instance last read or wrote it (with `reuseReads`); undefined: not known yet. */
    let known: { readonly secret: SecretObject | undefined } | undefined =
      options.reuseReads === true && options.absent === true ? { secret: undefined } : undefined
    const copy = (s: SecretObject | undefined) => (s === undefined ? undefined : (JSON.parse(JSON.stringify(s)) as SecretObject))

    const read = (key: string, fresh = false) =>
      !fresh && options.reuseReads === true && known !== undefined
        ? Effect.succeed(copy(known.secret))
        : orNotFound(kubeCall(() => api.readNamespacedSecret({ name, namespace }))).pipe(
            Effect.map((s) => copy(s as SecretObject | undefined)),
            Effect.tap((s) =>
              Effect.sync(() => {
                known = { secret: copy(s) }
              }),
            ),
            Effect.mapError(apiFail(key, "cannot read")),
          )

    const write = (op: "create" | "replace", secret: SecretObject, dryRun: boolean) =>
      kubeCall(() => {
        const body = secret as V1Secret
        const common = { namespace, body, fieldManager, ...(dryRun ? { dryRun: "All" } : {}) }
        return op === "create" ? api.createNamespacedSecret(common) : api.replaceNamespacedSecret({ ...common, name })
      }).pipe(
        Effect.tap((written) =>
          Effect.sync(() => {
            if (!dryRun) known = { secret: copy(written as SecretObject) }
          }),
        ),
        Effect.tapError(() =>
          Effect.sync(() => {
            known = undefined
          }),
        ),
      )

    /** Plans against the current Secret and writes; retries when the Secret changed meanwhile. */
    const planAndWrite = (key: string, values: typeof PLACEHOLDER, tokenId: number, dryRun: boolean) =>
      Effect.gen(function* () {
        const t = yield* target(key)
        const secrets = dryRun ? [] : [values.token, ...Object.values(t.render(values))]
        for (let attempt = 1; ; attempt++) {
          const existing = yield* read(key, attempt > 1)
          const plan = planWrite(t, namespace, owner, existing, values, tokenId)
          if (plan.op === "refuse") return yield* Effect.fail(fail(key, plan.reason))
          const written = yield* Effect.result(write(plan.op, plan.secret, dryRun))
          if (written._tag === "Success") return t
          const e = written.failure
          if (e.code === 409 && attempt < ATTEMPTS) continue
          return yield* Effect.fail(
            apiFail(key, dryRun ? "the API server would refuse to write" : `cannot ${plan.op === "create" ? "create" : "update"}`, secrets)(e),
          )
        }
      })

    /** creationPolicy Owner: Secrets this owner created under an earlier target name are deleted (ESO does the same). */
    const deleteRenamed = (key: string) =>
      Effect.gen(function* () {
        if (owner === undefined) return
        const label = createdByLabel(namespace, owner.name)
        const items =
          options.view !== undefined
            ? options.view.list().filter((s) => s.metadata?.labels?.[LABEL_CREATED_BY] === label)
            : (yield* kubeCall(() => api.listNamespacedSecret({ namespace, labelSelector: `${LABEL_CREATED_BY}=${label}` }))).items
        for (const s of items) {
          const ours = s.metadata?.ownerReferences?.some((r) => r.controller === true && r.uid === owner.uid) ?? false
          if (!ours || s.metadata?.name === name || s.metadata?.name === undefined) continue
          yield* kubeCall(() => api.deleteNamespacedSecret({ name: s.metadata!.name!, namespace, body: { preconditions: { uid: s.metadata!.uid! } } })).pipe(
            Effect.catchIf(
              (e) => e.code === 404 || e.code === 409,
              () => Effect.void,
            ),
          )
          yield* Effect.logInfo("deleted the Secret of a previous target name").pipe(Effect.annotateLogs({ key, secret: s.metadata.name }))
        }
      }).pipe(
        Effect.catch((e) => Effect.logWarning("could not delete the Secrets of previous target names").pipe(Effect.annotateLogs({ key, error: e.toString() }))),
      )

    const check = (key: string) => planAndWrite(key, PLACEHOLDER, 0, true).pipe(Effect.asVoid)

    const deliver = (key: string, credential: Credential) =>
      Effect.gen(function* () {
        const values = { username: credential.username, token: revealToken(credential) }
        const t = yield* planAndWrite(key, values, credential.tokenId, false)
        if (t.creationPolicy === "Owner") yield* deleteRenamed(key)
      })

    const inspect = (key: string) =>
      Effect.map(read(key), (secret): Held => {
        if (secret === undefined) return { _tag: "Empty" }
        // Not gldt's (or someone else's now): holds no token gldt knows.
        if (otherExternalSecret(secret, namespace, owner) !== undefined) return { _tag: "Holds", tokenId: 0 }
        return { _tag: "Holds", tokenId: heldTokenId(secret) }
      })

    /**
     * The consumer is gone: Owner → delete the Secret if it is this owner's; Orphan/CreateOrMerge →
     * deletionPolicy Delete deletes it, Merge removes gldt's keys, Retain keeps it; Merge → gldt's
     * keys are removed (Retain keeps them); None → nothing.
     */
    const remove = (key: string) =>
      Effect.gen(function* () {
        const t = yield* target(key)
        if (t.creationPolicy === "None") return
        const secret = yield* read(key)
        if (secret === undefined) return
        const annotations = secret.metadata?.annotations ?? {}
        if (annotations[ANNOTATION_TOKEN_ID] === undefined && secret.metadata?.labels?.[LABEL_MANAGED] !== "true") return
        const controller = secret.metadata?.ownerReferences?.find((r) => r.controller === true)
        const foreign = controller !== undefined && controller.uid !== owner?.uid
        const action = t.creationPolicy === "Owner" ? "Delete" : t.deletionPolicy
        if (action === "Retain" || foreign) return
        if (action === "Delete") {
          if (t.creationPolicy === "Owner" && (owner === undefined || controller?.uid !== owner.uid)) return
          yield* kubeCall(() =>
            api.deleteNamespacedSecret({
              name,
              namespace,
              body: { preconditions: { uid: secret.metadata!.uid!, resourceVersion: secret.metadata!.resourceVersion! } },
            }),
          ).pipe(
            Effect.catchIf(
              (e) => e.code === 404,
              () => Effect.void,
            ),
            Effect.mapError(apiFail(key, "cannot delete")),
            Effect.ensuring(
              Effect.sync(() => {
                known = undefined
              }),
            ),
          )
          return
        }
        // Merge: take gldt's keys (and its bookkeeping) out, keep everything else.
        const data = { ...(secret.data ?? {}) }
        for (const k of ownKeys(t)) delete data[k]
        const { [ANNOTATION_TOKEN_ID]: _id, ...rest } = annotations
        const { managedFields: _m, ...metadata } = secret.metadata ?? {}
        const updated: SecretObject = {
          ...secret,
          metadata: { ...metadata, annotations: { ...rest, [ANNOTATION_DATA_HASH]: secretDataHash(data) } },
          data,
        }
        yield* write("replace", updated, false).pipe(Effect.mapError(apiFail(key, "cannot remove gldt's keys from")))
      })

    return Sink.of({ check, deliver, inspect, remove })
  })

/** `Sink` writing the ExternalSecret's target Secret (see the module comment and README). */
export const layer = (options: KubeSinkOptions): Layer.Layer<Sink> => Layer.effect(Sink, make(options))

/** Validates a target (and its template) without any API call: the problems, each naming the field. */
export const validateTarget = (target: Target): ReadonlyArray<string> => compileTarget(target).problems
