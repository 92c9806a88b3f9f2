/**
 * `State` in the cluster: one `GitlabDeployTokenState` object (gldt.dev/v1alpha1) per consumer key in
 * the consumer's namespace, next to it.
 *
 *   metadata.name         <slug of the key>-<12 hex of its SHA-256>   (DNS-1123 label, ≤ 53 chars)
 *   metadata.labels       app.kubernetes.io/managed-by: gldt, gldt.dev/key-hash: <32 hex>
 *   metadata.annotations  gldt.dev/key: <the full key>
 *   metadata.finalizers   [gldt.dev/revoke-tokens]
 *   metadata.ownerReferences  the consumer (ExternalSecret), when given
 *   spec.key              the key
 *   spec.record           core's StateRecord (token ids and metadata, never a token value)
 *   status                a summary for kubectl (current id, retiring, suspects), rewritten on every save
 *
 * Compare-and-set is `metadata.resourceVersion`: create with expected null (409 AlreadyExists →
 * StateConflict), replace with the expected resourceVersion (409 Conflict → StateConflict).
 * The finalizer keeps a deleted object (Terminating) until `remove` finds its record empty:
 * deleting it by hand, by namespace deletion or by garbage collection of its owner never loses a
 * token record. While an object is Terminating, saves that would start a new mint are refused.
 * `withLock` takes no lock: the controller's leader election is the lock, compare-and-set the guard.
 */
import { checkRecordToSave, withoutLock } from "@gldt/core/CompareAndSet"
import { StateConflict, StateError } from "@gldt/core/Errors"
import { State, StateRecord } from "@gldt/core/State"
import { CustomObjectsApi, type KubeConfig } from "@kubernetes/client-node"
import { shareConnections } from "./Connections.ts"
import { Effect, Layer, Option, Schema } from "effect"
import { STATE_GROUP, STATE_KIND, STATE_PLURAL, STATE_VERSION } from "./Crds.ts"
import { sha256Hex } from "./internal/hash.ts"
import { type KubeCallError, kubeCall, type Owner, type OwnerReference, orNotFound } from "./internal/kube.ts"

export interface KubeStateOptions {
  /** Namespace of the state objects (the consumer's namespace). */
  readonly namespace: string
  readonly kubeConfig: KubeConfig
  /** The consumer (e.g. the ExternalSecret): owner of every state object this layer creates. */
  readonly owner?: Owner | undefined
  /** Field manager of gldt's writes. Default `gldt`. */
  readonly fieldManager?: string | undefined
  /**
   * An informer's view of the namespace's state objects (the controller keeps one). With it,
   * `snapshot` costs no API call. Loads never read it: recovery compares keys, and must not act on
   * a view that lags behind.
   */
  readonly view?: StateObjectsView | undefined
  /**
   * For an instance that lives for one short unit of work (the controller makes one per
   * reconcile): a load returns what this instance last read or wrote for the key, without a call.
   * Another writer's change since then makes the next save conflict, and the key is read again.
   * Leave it off for a long-lived instance, whose loads must see other writers' changes.
   */
  readonly reuseReads?: boolean | undefined
  /**
   * With `reuseReads`: keys the caller knows to have no state object yet (the controller: a consumer
   * never synced whose object its informer does not have). Their first load costs no call. A wrong
   * guess decides nothing: the first save then creates an object that exists, conflicts (409), and
   * the key is read from the API before anything is decided again.
   */
  readonly absent?: ReadonlyArray<string> | undefined
}

/** Read-only access to state objects as an informer holds them (never mutated by KubeState). */
export interface StateObjectsView {
  list(): ReadonlyArray<StateObject>
}

/** Holds a state object until every token in its record is revoked. */
export const STATE_FINALIZER = "gldt.dev/revoke-tokens"
export const LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
export const LABEL_KEY_HASH = "gldt.dev/key-hash"
export const ANNOTATION_KEY = "gldt.dev/key"

/** The object name for a key: readable, DNS-1123 label safe, and distinct for distinct keys. */
export const stateObjectName = (key: string): string => {
  const slug = key
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^-+/, "")
    .slice(0, 40)
    .replace(/-+$/, "")
  const hash = sha256Hex(key).slice(0, 12)
  return slug === "" ? `gldt-${hash}` : `${slug}-${hash}`
}

/** The label value selecting a key's object (`-l gldt.dev/key-hash=…`); keys themselves do not fit in a label. */
export const keyHashLabel = (key: string): string => sha256Hex(key).slice(0, 32)

/** A state object as stored. */
export interface StateObject {
  apiVersion: string
  kind: string
  metadata: {
    name: string
    namespace: string
    resourceVersion?: string
    uid?: string
    labels?: Record<string, string>
    annotations?: Record<string, string>
    finalizers?: Array<string>
    ownerReferences?: Array<OwnerReference>
    deletionTimestamp?: string
    [k: string]: unknown
  }
  spec: { key: string; record: unknown }
  status?: Record<string, unknown>
}

/** The kubectl summary of a record. */
export const summarize = (r: StateRecord) => ({
  generation: r.generation,
  ...(r.current ? { currentTokenId: r.current.id } : {}),
  ...(r.pending ? { pendingTokenId: r.pending.id } : {}),
  retiring: r.retiring.length,
  suspects: r.suspects.length,
  openIntent: r.intent !== undefined,
  ...(r.lastError ? { lastError: r.lastError } : {}),
})

/** Token ids the record still answers for (intent counts: its create may have happened). */
const heldTokens = (r: StateRecord): ReadonlyArray<string> => [
  ...(r.current ? [`${r.current.id} (current)`] : []),
  ...(r.pending ? [`${r.pending.id} (pending)`] : []),
  ...r.retiring.map((t) => `${t.id} (retiring)`),
  ...r.suspects.map((s) => `${s.id} (suspect)`),
  ...(r.intent ? [`an unresolved create of generation ${r.intent.generation}`] : []),
]

const decodeRecord = Schema.decodeUnknownEffect(StateRecord)
const decodeRecordOption = Schema.decodeUnknownOption(StateRecord)

/** Records decoded from view objects: an informer replaces an object on every change, so one decode per version. */
const decodedFromView = new WeakMap<StateObject, StateRecord | null>()

/** The state service itself, for embedding without a Layer. */
export const make = (options: KubeStateOptions) =>
  Effect.sync(() => {
    const api = shareConnections(options.kubeConfig).makeApiClient(CustomObjectsApi)
    const { namespace, owner } = options
    const fieldManager = options.fieldManager ?? "gldt"
    const base = { group: STATE_GROUP, version: STATE_VERSION, namespace, plural: STATE_PLURAL }
    /**
     * The last object read or written per key by this instance: a save after it needs no read (and
     * with `reuseReads`, neither does a load). Someone else's write since then makes the save
     * conflict (resourceVersion), and the key is then read from the API.
     */
    const seen = new Map<string, StateObject | null>(options.reuseReads === true ? (options.absent ?? []).map((k) => [k, null] as const) : [])

    const ref = (key: string) => `${STATE_PLURAL}.${STATE_GROUP} ${namespace}/${stateObjectName(key)}`
    const apiError = (key: string, what: string) => (e: KubeCallError) => new StateError({ key, message: `cannot ${what} ${ref(key)}: ${e.toString()}` })

    const get = (key: string) =>
      orNotFound(kubeCall(() => api.getNamespacedCustomObject({ ...base, name: stateObjectName(key) }) as Promise<StateObject>)).pipe(
        Effect.mapError(apiError(key, "read")),
      )

    /** Validates an object read from the cluster; a broken one is a StateError naming it (never overwritten). */
    const parse = (key: string, obj: StateObject) =>
      Effect.gen(function* () {
        const hint = "fix or delete it by hand (its finalizer must then be removed by hand too) — gldt never overwrites a state object it cannot read"
        if (obj.spec?.key !== key) {
          return yield* Effect.fail(
            new StateError({ key, message: `${ref(key)} holds the state of key ${JSON.stringify(obj.spec?.key)}, not ${JSON.stringify(key)}; ${hint}` }),
          )
        }
        const record = yield* decodeRecord(obj.spec.record).pipe(
          Effect.mapError((e) => new StateError({ key, message: `${ref(key)} is not a gldt state record: ${e.message}; ${hint}` })),
        )
        if (record.key !== key) {
          return yield* Effect.fail(
            new StateError({ key, message: `${ref(key)} has a record of key ${JSON.stringify(record.key)}, not ${JSON.stringify(key)}; ${hint}` }),
          )
        }
        return record
      })

    const load = (key: string) =>
      Effect.gen(function* () {
        const remembered = options.reuseReads === true ? seen.get(key) : undefined
        const obj = remembered === null ? undefined : (remembered ?? (yield* get(key)))
        if (obj === undefined) {
          // Absent: with reuseReads, so until this instance creates it (or a save conflicts).
          seen.set(key, null)
          return Option.none()
        }
        const record = yield* parse(key, obj)
        seen.set(key, obj)
        return Option.some({ record, version: obj.metadata.resourceVersion ?? "" })
      })

    const conflict = (key: string) => (e: KubeCallError) => {
      if (e.code !== 409 && e.code !== 404) return apiError(key, "write")(e)
      seen.delete(key)
      return new StateConflict({ key })
    }

    const save = (key: string, record: StateRecord, expected: string | null) =>
      Effect.gen(function* () {
        const checked = yield* checkRecordToSave(key, record)
        const spec = { key, record: JSON.parse(JSON.stringify(checked)) as unknown }
        if (expected === null) {
          const body: StateObject = {
            apiVersion: `${STATE_GROUP}/${STATE_VERSION}`,
            kind: STATE_KIND,
            metadata: {
              name: stateObjectName(key),
              namespace,
              labels: { [LABEL_MANAGED_BY]: "gldt", [LABEL_KEY_HASH]: keyHashLabel(key) },
              annotations: { [ANNOTATION_KEY]: key },
              finalizers: [STATE_FINALIZER],
              ...(owner ? { ownerReferences: [{ apiVersion: owner.apiVersion, kind: owner.kind, name: owner.name, uid: owner.uid }] } : {}),
            },
            spec,
            status: summarize(checked),
          }
          const created = yield* kubeCall(() => api.createNamespacedCustomObject({ ...base, body, fieldManager }) as Promise<StateObject>).pipe(
            Effect.mapError(conflict(key)),
          )
          seen.set(key, created)
          return created.metadata.resourceVersion ?? ""
        }
        let current = seen.get(key) ?? undefined
        if (current?.metadata.resourceVersion !== expected) {
          current = yield* get(key)
          if (current === undefined) seen.delete(key)
          else seen.set(key, current)
        }
        if (current === undefined || current.metadata.resourceVersion !== expected) return yield* Effect.fail(new StateConflict({ key }))
        // A broken object is reported, never overwritten.
        const stored = yield* parse(key, current)
        const terminating = current.metadata.deletionTimestamp !== undefined
        if (terminating) {
          if (checked.generation > stored.generation) {
            return yield* Effect.fail(
              new StateError({ key, message: `${ref(key)} is being deleted: no new token is minted for it (revoke its tokens with revokeAll)` }),
            )
          }
        }
        const finalizers = current.metadata.finalizers ?? []
        const { managedFields: _m, ...metadata } = current.metadata
        const body: StateObject = {
          ...current,
          metadata: {
            ...metadata,
            resourceVersion: expected,
            // Put the finalizer back if someone removed it (not possible once the object is being deleted).
            ...(!terminating && !finalizers.includes(STATE_FINALIZER) ? { finalizers: [...finalizers, STATE_FINALIZER] } : {}),
          },
          spec,
          status: summarize(checked),
        }
        const replaced = yield* kubeCall(
          () => api.replaceNamespacedCustomObject({ ...base, name: stateObjectName(key), body, fieldManager }) as Promise<StateObject>,
        ).pipe(Effect.mapError(conflict(key)))
        seen.set(key, replaced)
        return replaced.metadata.resourceVersion ?? ""
      })

    /** Drops gldt's finalizer once the (deleted) object's record holds nothing; retries on conflicts. */
    const release = (key: string, start: StateObject) =>
      Effect.gen(function* () {
        let obj: StateObject | undefined = start
        for (let attempt = 0; attempt < 8 && obj !== undefined; attempt++) {
          const finalizers: ReadonlyArray<string> = obj.metadata.finalizers ?? []
          if (!finalizers.includes(STATE_FINALIZER)) return
          const record = yield* parse(key, obj)
          // Someone recorded a token meanwhile: the object must stay (Terminating) until it is revoked.
          if (heldTokens(record).length > 0) return yield* Effect.fail(new StateConflict({ key }))
          const { managedFields: _m, ...metadata } = obj.metadata
          const body: StateObject = { ...obj, metadata: { ...metadata, finalizers: finalizers.filter((f) => f !== STATE_FINALIZER) } }
          const done = yield* Effect.result(kubeCall(() => api.replaceNamespacedCustomObject({ ...base, name: stateObjectName(key), body, fieldManager })))
          if (done._tag === "Success" || done.failure.code === 404) return
          if (done.failure.code !== 409) return yield* Effect.fail(apiError(key, "remove the finalizer of")(done.failure))
          obj = yield* get(key)
        }
        if (obj !== undefined) return yield* Effect.fail(new StateConflict({ key }))
      })

    const remove = (key: string, expected: string) =>
      Effect.gen(function* () {
        const current = yield* get(key)
        seen.delete(key)
        if (current === undefined || current.metadata.resourceVersion !== expected) return yield* Effect.fail(new StateConflict({ key }))
        const record = yield* parse(key, current)
        const held = heldTokens(record)
        if (held.length > 0) {
          return yield* Effect.fail(
            new StateError({ key, message: `${ref(key)} still answers for ${held.join(", ")}; it is removed only once every token is revoked` }),
          )
        }
        let terminating = current
        if (current.metadata.deletionTimestamp === undefined) {
          const deleted = yield* kubeCall(
            () =>
              api.deleteNamespacedCustomObject({
                ...base,
                name: stateObjectName(key),
                body: { preconditions: { resourceVersion: expected, ...(current.metadata.uid ? { uid: current.metadata.uid } : {}) } },
              }) as Promise<StateObject | { kind: "Status" }>,
          ).pipe(Effect.mapError(conflict(key)))
          // Without finalizers the object is gone at once and the answer is a Status.
          if (deleted.kind !== STATE_KIND) return
          terminating = deleted as StateObject
        }
        yield* release(key, terminating)
      })

    const list = () =>
      Effect.gen(function* () {
        const found = yield* kubeCall(
          () => api.listNamespacedCustomObject({ ...base, labelSelector: `${LABEL_MANAGED_BY}=gldt` }) as Promise<{ items: Array<StateObject> }>,
        ).pipe(Effect.mapError((e) => new StateError({ key: "*", message: `cannot list ${STATE_PLURAL}.${STATE_GROUP} in ${namespace}: ${e.toString()}` })))
        const keys: string[] = []
        for (const obj of found.items) {
          const key = obj.spec?.key
          if (typeof key !== "string" || key === "") {
            return yield* Effect.fail(new StateError({ key: "*", message: `${STATE_PLURAL}.${STATE_GROUP} ${namespace}/${obj.metadata.name} has no spec.key` }))
          }
          keys.push(key)
        }
        return keys.sort()
      })

    /** Every record in the view, decoded once per object version; objects that do not decode are left out. */
    const snapshot = (view: StateObjectsView) => () =>
      Effect.sync(() => {
        const records: Array<StateRecord> = []
        for (const obj of view.list()) {
          let record = decodedFromView.get(obj)
          if (record === undefined) {
            record = Option.getOrNull(decodeRecordOption(obj.spec?.record))
            decodedFromView.set(obj, record)
          }
          if (record !== null) records.push(record)
        }
        return records
      })

    // The controller's leader election is the lock; compare-and-set on resourceVersion guards every write.
    return withoutLock({ load, save, remove, list, snapshot: options.view === undefined ? undefined : snapshot(options.view) })
  })

/** `State` backed by one GitlabDeployTokenState object per key in `options.namespace`. */
export const layer = (options: KubeStateOptions): Layer.Layer<State> => Layer.effect(State, make(options))

/** The state object's name for a key (see the README). */
export const objectName = (key: string): string => stateObjectName(key)
