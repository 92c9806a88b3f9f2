/**
 * A consumer: what asks for a deploy token and names the Secret to write. Two kinds read the same
 * way: ESO's `ExternalSecret` (a `dataFrom[].sourceRef.generatorRef` to a GitlabDeployToken or a
 * ClusterGenerator of that kind) and gldt's own `GitlabDeployTokenConsumer`, which ESO ignores.
 */
import { createHash } from "node:crypto"
import { parseGoDuration } from "@gldt/core/GoDuration"
import { DEFAULT_REFRESH_INTERVAL_MS } from "@gldt/core/Manifest"
import type { Target } from "@gldt/adapter-kubernetes/Target"
import type { Obj } from "./Cache.ts"
import type { Kind } from "./KubeApi.ts"

export const EXTERNAL_SECRET: Kind = { group: "external-secrets.io", version: "v1", plural: "externalsecrets", kind: "ExternalSecret" }
export const CONSUMER: Kind = { group: "gldt.dev", version: "v1alpha1", plural: "gitlabdeploytokenconsumers", kind: "GitlabDeployTokenConsumer" }
export const GENERATOR: Kind = { group: "generators.external-secrets.io", version: "v1alpha1", plural: "gitlabdeploytokens", kind: "GitlabDeployToken" }
export const CLUSTER_GENERATOR: Kind = {
  group: "generators.external-secrets.io",
  version: "v1alpha1",
  plural: "clustergenerators",
  kind: "ClusterGenerator",
}

/** Held on a consumer until every token it had is revoked. */
export const CONSUMER_FINALIZER = "gldt.dev/revoke-tokens"
/** Held on an auth Secret while a token that needs it for revocation exists. */
export const AUTH_FINALIZER = "gldt.dev/auth-secret-in-use"
/** Held on a namespaced GitlabDeployToken while a token minted from it exists: revocation needs its URL and CA. */
export const GENERATOR_FINALIZER = "gldt.dev/generator-in-use"
/** Marks auth Secrets so one label-selected informer sees their deletion. */
export const AUTH_LABEL = "gldt.dev/auth-secret"
/** Held on a caProvider ConfigMap while a token whose revocation may need its CA exists. */
export const CA_FINALIZER = "gldt.dev/ca-in-use"
/** Marks caProvider ConfigMaps so one label-selected informer sees their deletion (and serves their CA). */
export const CA_LABEL = "gldt.dev/ca-configmap"

export type ConsumerKind = "ExternalSecret" | "GitlabDeployTokenConsumer"

export interface GeneratorRef {
  readonly kind: "GitlabDeployToken" | "ClusterGenerator"
  readonly name: string
  /** Field path of the reference, for messages. */
  readonly path: string
}

export interface Consumer {
  readonly kind: ConsumerKind
  readonly api: Kind
  readonly obj: Obj
  readonly namespace: string
  readonly name: string
  /** The State key: `ns/name` for an ExternalSecret, `ns/GitlabDeployTokenConsumer/name` for gldt's kind. */
  readonly key: string
  readonly refreshIntervalMs: number
  readonly refreshPolicy: "Periodic" | "CreatedOnce" | "OnChange"
  readonly target: Target
  readonly generatorRef: GeneratorRef | undefined
  /** Problems found in the consumer itself (field: message). */
  readonly problems: ReadonlyArray<string>
  /** `<generation>-<hash of labels and annotations>`: a change asks for a new token (ESO's force-sync). */
  readonly resourceVersionHash: string
}

type O = Record<string, unknown>
const isObj = (u: unknown): u is O => typeof u === "object" && u !== null && !Array.isArray(u)

/** The queue key of a consumer. */
export const queueKey = (kind: ConsumerKind, namespace: string, name: string) => `${kind === "ExternalSecret" ? "es" : "gdtc"}/${namespace}/${name}`

export const stateKey = (kind: ConsumerKind, namespace: string, name: string) =>
  kind === "ExternalSecret" ? `${namespace}/${name}` : `${namespace}/${kind}/${name}`

/** The consumer a State key belongs to. */
export const fromStateKey = (key: string): { kind: ConsumerKind; namespace: string; name: string } | undefined => {
  const parts = key.split("/")
  if (parts.length === 2) return { kind: "ExternalSecret", namespace: parts[0]!, name: parts[1]! }
  if (parts.length === 3 && parts[1] === "GitlabDeployTokenConsumer") return { kind: "GitlabDeployTokenConsumer", namespace: parts[0]!, name: parts[2]! }
  return undefined
}

export const parseQueueKey = (key: string): { kind: ConsumerKind; namespace: string; name: string } | undefined => {
  const [k, namespace, name] = key.split("/")
  if (namespace === undefined || name === undefined) return undefined
  if (k === "es") return { kind: "ExternalSecret", namespace, name }
  if (k === "gdtc") return { kind: "GitlabDeployTokenConsumer", namespace, name }
  return undefined
}

const hashOf = (labels: unknown, annotations: unknown) =>
  createHash("sha256")
    .update(JSON.stringify([sorted(labels), sorted(annotations)]))
    .digest("hex")
    .slice(0, 32)

const sorted = (m: unknown) => (isObj(m) ? Object.fromEntries(Object.entries(m).sort(([a], [b]) => a.localeCompare(b))) : {})

/** Generator references of an ExternalSecret that gldt serves (kind GitlabDeployToken, or a ClusterGenerator). */
export const gldtRefs = (es: Obj): Array<{ kind: string; name: string; apiVersion: string | undefined; index: number }> => {
  const spec = isObj(es.spec) ? es.spec : {}
  const dataFrom = Array.isArray(spec.dataFrom) ? spec.dataFrom : []
  const out: Array<{ kind: string; name: string; apiVersion: string | undefined; index: number }> = []
  dataFrom.forEach((d, index) => {
    if (!isObj(d) || !isObj(d.sourceRef) || !isObj(d.sourceRef.generatorRef)) return
    const r = d.sourceRef.generatorRef
    if (r.kind === "GitlabDeployToken" || r.kind === "ClusterGenerator") {
      out.push({ kind: String(r.kind), name: String(r.name ?? ""), apiVersion: typeof r.apiVersion === "string" ? r.apiVersion : undefined, index })
    }
  })
  return out
}

const readTarget = (spec: O, name: string, problems: Array<string>): Target => {
  const t = isObj(spec.target) ? spec.target : {}
  const creationPolicy = (t.creationPolicy ?? "Owner") as Target["creationPolicy"]
  const deletionPolicy = (t.deletionPolicy ?? "Retain") as NonNullable<Target["deletionPolicy"]>
  if (!["Owner", "Orphan", "Merge", "None", "CreateOrMerge"].includes(creationPolicy)) {
    problems.push(`spec.target.creationPolicy: "${String(creationPolicy)}" is not one of Owner, Orphan, Merge, None, CreateOrMerge`)
  }
  if (!["Delete", "Merge", "Retain"].includes(deletionPolicy)) {
    problems.push(`spec.target.deletionPolicy: "${String(deletionPolicy)}" is not one of Delete, Merge, Retain`)
  }
  return {
    name: typeof t.name === "string" && t.name !== "" ? t.name : name,
    creationPolicy,
    deletionPolicy,
    ...(t.immutable === true ? { immutable: true } : {}),
    ...(isObj(t.template) ? { template: t.template as Target["template"] } : {}),
  }
}

const readRefresh = (spec: O, problems: Array<string>) => {
  let refreshIntervalMs = DEFAULT_REFRESH_INTERVAL_MS
  if (spec.refreshInterval !== undefined && spec.refreshInterval !== null) {
    const ms = typeof spec.refreshInterval === "string" ? parseGoDuration(spec.refreshInterval) : undefined
    if (ms === undefined)
      problems.push(`spec.refreshInterval: "${String(spec.refreshInterval)}" is not a duration; write it like 1h or 30m (0 = never refresh)`)
    else refreshIntervalMs = ms
  }
  const policy = spec.refreshPolicy ?? "Periodic"
  if (policy !== "Periodic" && policy !== "CreatedOnce" && policy !== "OnChange") {
    problems.push(`spec.refreshPolicy: "${String(policy)}" must be Periodic, CreatedOnce or OnChange`)
  }
  return { refreshIntervalMs, refreshPolicy: (policy === "CreatedOnce" || policy === "OnChange" ? policy : "Periodic") as Consumer["refreshPolicy"] }
}

/**
 * Reads an ExternalSecret that references a gldt generator. Returns undefined when it references
 * none (it is not gldt's business).
 */
export const fromExternalSecret = (es: Obj): Consumer | undefined => {
  const refs = gldtRefs(es)
  if (refs.length === 0) return undefined
  const spec = isObj(es.spec) ? es.spec : {}
  const name = es.metadata.name
  const namespace = es.metadata.namespace ?? "default"
  const problems: Array<string> = []
  if (refs.length > 1) {
    problems.push(`spec.dataFrom: references ${refs.length} generators; gldt delivers one deploy token per ExternalSecret — keep one generatorRef`)
  }
  const dataFrom = Array.isArray(spec.dataFrom) ? spec.dataFrom : []
  if (dataFrom.length > refs.length || (Array.isArray(spec.data) && spec.data.length > 0)) {
    problems.push(
      "spec.data / spec.dataFrom: mixes the GitlabDeployToken with other sources; gldt serves an ExternalSecret only when its single source is the generator — move the other data to another ExternalSecret",
    )
  }
  const ref = refs[0]!
  if (ref.apiVersion !== undefined && ref.apiVersion !== "generators.external-secrets.io/v1alpha1") {
    problems.push(`spec.dataFrom[${ref.index}].sourceRef.generatorRef.apiVersion: must be generators.external-secrets.io/v1alpha1`)
  }
  return {
    kind: "ExternalSecret",
    api: EXTERNAL_SECRET,
    obj: es,
    namespace,
    name,
    key: stateKey("ExternalSecret", namespace, name),
    ...readRefresh(spec, problems),
    target: readTarget(spec, name, problems),
    generatorRef: { kind: ref.kind as GeneratorRef["kind"], name: ref.name, path: `spec.dataFrom[${ref.index}].sourceRef.generatorRef` },
    problems,
    resourceVersionHash: `${es.metadata.generation ?? 0}-${hashOf(es.metadata.labels, es.metadata.annotations)}`,
  }
}

/** Reads gldt's own consumer kind (`spec.generatorRef {kind, name}`, `spec.target`, `spec.refreshInterval`, `spec.refreshPolicy`). */
export const fromConsumer = (c: Obj): Consumer => {
  const spec = isObj(c.spec) ? c.spec : {}
  const name = c.metadata.name
  const namespace = c.metadata.namespace ?? "default"
  const problems: Array<string> = []
  const ref = isObj(spec.generatorRef) ? spec.generatorRef : undefined
  let generatorRef: GeneratorRef | undefined
  if (ref === undefined || typeof ref.name !== "string" || ref.name === "") {
    problems.push("spec.generatorRef: is required: name the GitlabDeployToken (kind GitlabDeployToken or ClusterGenerator, name)")
  } else {
    const kind = ref.kind ?? "GitlabDeployToken"
    if (kind !== "GitlabDeployToken" && kind !== "ClusterGenerator")
      problems.push(`spec.generatorRef.kind: "${String(kind)}" must be GitlabDeployToken or ClusterGenerator`)
    else generatorRef = { kind, name: ref.name, path: "spec.generatorRef" }
  }
  return {
    kind: "GitlabDeployTokenConsumer",
    api: CONSUMER,
    obj: c,
    namespace,
    name,
    key: stateKey("GitlabDeployTokenConsumer", namespace, name),
    ...readRefresh(spec, problems),
    target: readTarget(spec, name, problems),
    generatorRef,
    problems,
    resourceVersionHash: `${c.metadata.generation ?? 0}-${hashOf(c.metadata.labels, c.metadata.annotations)}`,
  }
}
