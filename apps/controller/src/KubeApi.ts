/**
 * The few API writes the controller makes besides State and Sink: finalizers (JSON patch guarded by
 * a `test` op, so a concurrent change makes it fail instead of clobbering), status (merge patch on the
 * status subresource), Events, and reads of auth Secrets, CA Secrets and CA ConfigMaps.
 */
import { existsSync } from "node:fs"
import { homedir } from "node:os"
import { join } from "node:path"
import { shareConnections } from "@gldt/adapter-kubernetes/Connections"
import {
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  PatchStrategy,
  setHeaderOptions,
  type CoreV1Event,
  type V1ConfigMap,
  type V1Secret,
} from "@kubernetes/client-node"
import { Context, Effect, Layer } from "effect"
import type { Obj } from "./Cache.ts"

/** A failed API call reduced to status code and the apiserver's message (never the library's dump). */
export class ApiError extends Error {
  override readonly name = "ApiError"
  readonly code: number
  constructor(code: number, message: string) {
    super(message)
    this.code = code
  }
}

export const toApiError = (e: unknown): ApiError => {
  const o = e as { code?: unknown; body?: unknown; message?: unknown }
  if (typeof o?.code === "number") {
    let message = `HTTP ${o.code}`
    try {
      const body = typeof o.body === "string" ? (JSON.parse(o.body) as { message?: unknown }) : (o.body as { message?: unknown })
      if (typeof body?.message === "string") message = body.message
    } catch {
      // keep the status line
    }
    return new ApiError(o.code, message)
  }
  return new ApiError(0, `cannot reach the Kubernetes API: ${e instanceof Error ? e.message.split("\n")[0] : String(e)}`)
}

export const call = <A>(f: () => Promise<A>): Effect.Effect<A, ApiError> => Effect.tryPromise({ try: f, catch: toApiError })

/** Resource coordinates of a custom kind. */
export interface Kind {
  readonly group: string
  readonly version: string
  readonly plural: string
  readonly kind: string
}

/** $KUBECONFIG, then in-cluster, then ~/.kube/config (or the explicit file); reusing connections across calls. */
export const loadKubeConfig = (explicit: string | undefined, env: NodeJS.ProcessEnv = process.env): KubeConfig => {
  const kc = new KubeConfig()
  if (explicit !== undefined) {
    if (!existsSync(explicit)) throw new Error(`--kubeconfig: ${explicit} does not exist`)
    kc.loadFromFile(explicit)
    return shareConnections(kc)
  }
  if (env.KUBECONFIG !== undefined && env.KUBECONFIG !== "") {
    kc.loadFromDefault()
    return shareConnections(kc)
  }
  if (env.KUBERNETES_SERVICE_HOST !== undefined && existsSync("/var/run/secrets/kubernetes.io/serviceaccount/token")) {
    kc.loadFromCluster()
    return shareConnections(kc)
  }
  const home = join(homedir(), ".kube", "config")
  if (existsSync(home)) {
    kc.loadFromFile(home)
    return shareConnections(kc)
  }
  throw new Error("no kubeconfig: pass --kubeconfig PATH, set KUBECONFIG, run in a cluster, or create ~/.kube/config")
}

const jsonPatch = setHeaderOptions("Content-Type", PatchStrategy.JsonPatch)
const mergePatch = setHeaderOptions("Content-Type", PatchStrategy.MergePatch)

export interface KubeApiShape {
  readonly kubeConfig: KubeConfig
  readonly identity: string
  /** Adds `finalizer` unless present. Fails with 409/422 when the object changed meanwhile. */
  addFinalizer(kind: Kind | CoreKind, obj: Obj, finalizer: string, labels?: Record<string, string>): Effect.Effect<void, ApiError>
  /** Removes `finalizer` if present (404 = already gone). */
  removeFinalizer(kind: Kind | CoreKind, obj: Obj, finalizer: string): Effect.Effect<void, ApiError>
  patchStatus(kind: Kind, obj: Obj, status: Record<string, unknown>): Effect.Effect<void, ApiError>
  event(
    involved: { apiVersion: string; kind: string; name: string; namespace: string; uid?: string | undefined },
    type: "Normal" | "Warning",
    reason: string,
    message: string,
  ): Effect.Effect<void>
  readSecret(namespace: string, name: string): Effect.Effect<V1Secret | undefined, ApiError>
  readConfigMap(namespace: string, name: string): Effect.Effect<V1ConfigMap | undefined, ApiError>
  listStates(namespace: string): Effect.Effect<ReadonlyArray<Obj>, ApiError>
  getCustom(kind: Kind, namespace: string | undefined, name: string): Effect.Effect<Obj | undefined, ApiError>
}

/** The core kinds the controller puts finalizers on: auth and CA Secrets, CA ConfigMaps. */
export type CoreKind = "Secret" | "ConfigMap"

export class KubeApi extends Context.Service<KubeApi, KubeApiShape>()("@gldt/controller/KubeApi") {}

const escapePointer = (s: string) => s.replace(/~/g, "~0").replace(/\//g, "~1")

export const make = (kc: KubeConfig, identity: string): KubeApiShape => {
  const core = kc.makeApiClient(CoreV1Api)
  const custom = kc.makeApiClient(CustomObjectsApi)
  const notFound = <A>(e: Effect.Effect<A, ApiError>) =>
    Effect.catchIf(
      e,
      (x) => x.code === 404,
      () => Effect.succeed(undefined),
    )

  const patch = (kind: Kind | CoreKind, obj: Obj, ops: ReadonlyArray<unknown>) =>
    call(() =>
      kind === "Secret"
        ? core.patchNamespacedSecret({ name: obj.metadata.name, namespace: obj.metadata.namespace!, body: ops }, jsonPatch)
        : kind === "ConfigMap"
          ? core.patchNamespacedConfigMap({ name: obj.metadata.name, namespace: obj.metadata.namespace!, body: ops }, jsonPatch)
          : kind.group === ""
            ? Promise.reject(new Error("no group"))
            : obj.metadata.namespace === undefined
              ? custom.patchClusterCustomObject(
                  { group: kind.group, version: kind.version, plural: kind.plural, name: obj.metadata.name, body: ops },
                  jsonPatch,
                )
              : custom.patchNamespacedCustomObject(
                  { group: kind.group, version: kind.version, plural: kind.plural, namespace: obj.metadata.namespace, name: obj.metadata.name, body: ops },
                  jsonPatch,
                ),
    ).pipe(Effect.asVoid)

  return {
    kubeConfig: kc,
    identity,
    addFinalizer: (kind, obj, finalizer, labels) => {
      const have = obj.metadata.finalizers ?? []
      const labelOps = Object.entries(labels ?? {})
        .filter(([k, v]) => obj.metadata.labels?.[k] !== v)
        .map(([k, v]) =>
          obj.metadata.labels === undefined
            ? { op: "add", path: "/metadata/labels", value: { [k]: v } }
            : { op: "add", path: `/metadata/labels/${escapePointer(k)}`, value: v },
        )
      if (have.includes(finalizer) && labelOps.length === 0) return Effect.void
      const ops: Array<unknown> = [{ op: "test", path: "/metadata/uid", value: obj.metadata.uid }]
      if (!have.includes(finalizer)) {
        ops.push(
          obj.metadata.finalizers === undefined
            ? { op: "add", path: "/metadata/finalizers", value: [finalizer] }
            : { op: "add", path: "/metadata/finalizers/-", value: finalizer },
        )
      }
      // A label map that did not exist is added once with its first key.
      if (obj.metadata.labels === undefined && labelOps.length > 1) {
        ops.push({ op: "add", path: "/metadata/labels", value: labels })
      } else ops.push(...labelOps)
      return patch(kind, obj, ops)
    },
    removeFinalizer: (kind, obj, finalizer) => {
      const have = obj.metadata.finalizers ?? []
      const i = have.indexOf(finalizer)
      if (i < 0) return Effect.void
      return patch(kind, obj, [
        { op: "test", path: `/metadata/finalizers/${i}`, value: finalizer },
        { op: "remove", path: `/metadata/finalizers/${i}` },
      ]).pipe(
        Effect.catchIf(
          (e) => e.code === 404,
          () => Effect.void,
        ),
      )
    },
    patchStatus: (kind, obj, status) =>
      call(() =>
        custom.patchNamespacedCustomObjectStatus(
          {
            group: kind.group,
            version: kind.version,
            plural: kind.plural,
            namespace: obj.metadata.namespace!,
            name: obj.metadata.name,
            body: { status },
          },
          mergePatch,
        ),
      ).pipe(Effect.asVoid),
    event: (involved, type, reason, message) => {
      const now = new Date()
      const body: CoreV1Event = {
        metadata: { generateName: `${involved.name}.`, namespace: involved.namespace },
        involvedObject: {
          apiVersion: involved.apiVersion,
          kind: involved.kind,
          name: involved.name,
          namespace: involved.namespace,
          ...(involved.uid === undefined ? {} : { uid: involved.uid }),
        },
        type,
        reason,
        message: message.slice(0, 1024),
        source: { component: "gldt-controller" },
        reportingComponent: "gldt.dev/gldt-controller",
        reportingInstance: identity,
        firstTimestamp: now,
        lastTimestamp: now,
        count: 1,
      }
      return call(() => core.createNamespacedEvent({ namespace: involved.namespace, body })).pipe(
        Effect.asVoid,
        Effect.catch((e) => Effect.logWarning("could not record an event").pipe(Effect.annotateLogs({ reason, error: e.message }))),
      )
    },
    readSecret: (namespace, name) => notFound(call(() => core.readNamespacedSecret({ namespace, name }))),
    readConfigMap: (namespace, name) => notFound(call(() => core.readNamespacedConfigMap({ namespace, name }))),
    listStates: (namespace) =>
      call(
        () =>
          custom.listNamespacedCustomObject({ group: "gldt.dev", version: "v1alpha1", plural: "gitlabdeploytokenstates", namespace }) as Promise<{
            items: Array<Obj>
          }>,
      ).pipe(Effect.map((l) => l.items)),
    getCustom: (kind, namespace, name) =>
      notFound(
        call(
          () =>
            (namespace === undefined
              ? custom.getClusterCustomObject({ group: kind.group, version: kind.version, plural: kind.plural, name })
              : custom.getNamespacedCustomObject({ group: kind.group, version: kind.version, plural: kind.plural, namespace, name })) as Promise<Obj>,
        ),
      ),
  }
}

export const layer = (kc: KubeConfig, identity: string) => Layer.succeed(KubeApi, make(kc, identity))
