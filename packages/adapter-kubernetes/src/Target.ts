/**
 * The target Secret of an ExternalSecret (`spec.target`): validation, the template subset, and the
 * Secret gldt writes for a credential under each creation policy. Pure: no API calls here.
 */
import { compileTemplate, type TemplateValues, TemplateError } from "./Template.ts"
import { esoObjectHash, secretDataHash } from "./internal/hash.ts"
import type { Owner, OwnerReference } from "./internal/kube.ts"

export type CreationPolicy = "Owner" | "Orphan" | "Merge" | "None" | "CreateOrMerge"
export type DeletionPolicy = "Delete" | "Merge" | "Retain"

export const CREATION_POLICIES: ReadonlyArray<CreationPolicy> = ["Owner", "Orphan", "Merge", "None", "CreateOrMerge"]
export const DELETION_POLICIES: ReadonlyArray<DeletionPolicy> = ["Delete", "Merge", "Retain"]

/** ESO's `spec.target.template` (only the subset described in the README is accepted). */
export interface TargetTemplate {
  readonly type?: string | undefined
  readonly engineVersion?: string | undefined
  readonly mergePolicy?: "Replace" | "Merge" | undefined
  readonly metadata?:
    | {
        readonly labels?: Readonly<Record<string, string>> | undefined
        readonly annotations?: Readonly<Record<string, string>> | undefined
        readonly finalizers?: ReadonlyArray<string> | undefined
      }
    | undefined
  readonly data?: Readonly<Record<string, string>> | undefined
  readonly templateFrom?: ReadonlyArray<unknown> | undefined
}

/** ESO's `spec.target`. */
export interface Target {
  readonly name: string
  readonly creationPolicy: CreationPolicy
  readonly deletionPolicy?: DeletionPolicy | undefined
  readonly immutable?: boolean | undefined
  readonly template?: TargetTemplate | undefined
}

/** ESO's label and annotations (same names and values, so ESO and gldt read each other's Secrets). */
export const LABEL_MANAGED = "reconcile.external-secrets.io/managed"
export const LABEL_CREATED_BY = "reconcile.external-secrets.io/created-by"
export const ANNOTATION_DATA_HASH = "reconcile.external-secrets.io/data-hash"
/** gldt's annotation: the GitLab id of the token the Secret holds (no secret). */
export const ANNOTATION_TOKEN_ID = "gldt.dev/token-id"

const RESERVED_PREFIXES = ["reconcile.external-secrets.io/", "gldt.dev/"]
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/
const SECRET_KEY = /^[-._a-zA-Z0-9]+$/
/** Secret types ESO refuses as template types; gldt too. */
const FORBIDDEN_TYPES = new Set(["kubernetes.io/service-account-token", "bootstrap.kubernetes.io/token"])
const TEMPLATE_FIELDS = new Set(["type", "engineVersion", "mergePolicy", "metadata", "data", "templateFrom"])

/** Values used to prove a template renders before any token exists. */
export const PLACEHOLDER: TemplateValues = { username: "gldt-check-username", token: "gldt-check-token" }

/** A validated target, ready to render Secrets. */
export interface CompiledTarget {
  readonly name: string
  readonly creationPolicy: CreationPolicy
  /** Effective: the given one, else Delete for Owner, Merge for Merge/CreateOrMerge, Retain otherwise. */
  readonly deletionPolicy: DeletionPolicy
  readonly immutable: boolean
  /** `template.type`, if any. */
  readonly type: string | undefined
  readonly labels: Readonly<Record<string, string>>
  readonly annotations: Readonly<Record<string, string>>
  /** The Secret data (plain strings) for a credential. */
  render(values: TemplateValues): Record<string, string>
}

const isObj = (u: unknown): u is Record<string, unknown> => typeof u === "object" && u !== null && !Array.isArray(u)

const stringMap = (problems: string[], path: string, value: unknown, keys: (k: string) => string | undefined): Record<string, string> => {
  if (value === undefined || value === null) return {}
  if (!isObj(value)) {
    problems.push(`${path}: must be a map of strings`)
    return {}
  }
  const out: Record<string, string> = {}
  for (const [k, v] of Object.entries(value)) {
    if (typeof v !== "string") problems.push(`${path}[${JSON.stringify(k)}]: must be a string`)
    const bad = keys(k)
    if (bad !== undefined) problems.push(`${path}[${JSON.stringify(k)}]: ${bad}`)
    if (typeof v === "string" && bad === undefined) out[k] = v
  }
  return out
}

const reservedKey = (k: string) =>
  RESERVED_PREFIXES.some((p) => k.startsWith(p)) ? `is reserved for ExternalSecret/gldt bookkeeping; choose another key` : undefined

/**
 * Validates `target` (as found in an ExternalSecret) and compiles its template. Every problem is
 * listed, each naming the field; nothing is minted for a target with problems.
 */
export const compileTarget = (
  target: Target,
): { readonly target: CompiledTarget; readonly problems: readonly [] } | { readonly target: undefined; readonly problems: ReadonlyArray<string> } => {
  const problems: string[] = []
  const raw = target as unknown as Record<string, unknown>
  if (typeof raw.name !== "string" || raw.name.length === 0 || raw.name.length > 253 || !DNS_SUBDOMAIN.test(raw.name)) {
    problems.push(`target.name: ${JSON.stringify(raw.name)} is not a Secret name (lowercase letters, digits, '-' and '.', at most 253)`)
  }
  const creationPolicy = raw.creationPolicy as CreationPolicy
  if (!CREATION_POLICIES.includes(creationPolicy)) problems.push(`target.creationPolicy: must be one of ${CREATION_POLICIES.join(", ")}`)
  const given = raw.deletionPolicy as DeletionPolicy | undefined
  if (given !== undefined && !DELETION_POLICIES.includes(given)) problems.push(`target.deletionPolicy: must be one of ${DELETION_POLICIES.join(", ")}`)
  if (given === "Delete" && (creationPolicy === "Merge" || creationPolicy === "None")) {
    problems.push("target.deletionPolicy: Delete must not be used when the controller doesn't own the secret; set creationPolicy Owner")
  }
  if (given === "Merge" && creationPolicy === "None") problems.push("target.deletionPolicy: Merge must not be used with creationPolicy None")
  if (raw.immutable !== undefined && typeof raw.immutable !== "boolean") problems.push("target.immutable: must be true or false")
  const deletionPolicy: DeletionPolicy =
    given ?? (creationPolicy === "Owner" ? "Delete" : creationPolicy === "Merge" || creationPolicy === "CreateOrMerge" ? "Merge" : "Retain")

  let type: string | undefined
  let labels: Record<string, string> = {}
  let annotations: Record<string, string> = {}
  let merge = false
  const templates: Array<{ readonly key: string; readonly render: (v: TemplateValues) => string }> = []
  const tpl = raw.template
  if (tpl !== undefined && tpl !== null) {
    if (!isObj(tpl)) {
      problems.push("target.template: must be an object")
    } else {
      for (const k of Object.keys(tpl)) {
        if (!TEMPLATE_FIELDS.has(k))
          problems.push(
            `target.template.${k}: is not supported by gldt (supported: type, engineVersion v2, mergePolicy, metadata.labels, metadata.annotations, data)`,
          )
      }
      if (tpl.type !== undefined) {
        if (typeof tpl.type !== "string" || tpl.type === "") problems.push("target.template.type: must be a Secret type such as kubernetes.io/dockerconfigjson")
        else if (FORBIDDEN_TYPES.has(tpl.type)) problems.push(`target.template.type: ${tpl.type} is not allowed for a generated Secret`)
        else type = tpl.type
      }
      if (tpl.engineVersion !== undefined && tpl.engineVersion !== "v2")
        problems.push(`target.template.engineVersion: only v2 is supported, got ${JSON.stringify(tpl.engineVersion)}`)
      if (tpl.mergePolicy !== undefined && tpl.mergePolicy !== "Replace" && tpl.mergePolicy !== "Merge") {
        problems.push("target.template.mergePolicy: must be Replace or Merge")
      }
      merge = tpl.mergePolicy === "Merge"
      if (Array.isArray(tpl.templateFrom) ? tpl.templateFrom.length > 0 : tpl.templateFrom !== undefined && tpl.templateFrom !== null) {
        problems.push("target.template.templateFrom: is not supported by gldt; put the templates in target.template.data")
      }
      const meta = tpl.metadata
      if (meta !== undefined && meta !== null) {
        if (!isObj(meta)) problems.push("target.template.metadata: must be an object")
        else {
          for (const k of Object.keys(meta)) {
            if (k !== "labels" && k !== "annotations" && k !== "finalizers")
              problems.push(`target.template.metadata.${k}: is not supported (labels and annotations only)`)
          }
          if (Array.isArray(meta.finalizers) ? meta.finalizers.length > 0 : meta.finalizers !== undefined && meta.finalizers !== null) {
            problems.push("target.template.metadata.finalizers: is not supported by gldt")
          }
          labels = stringMap(problems, "target.template.metadata.labels", meta.labels, reservedKey)
          annotations = stringMap(problems, "target.template.metadata.annotations", meta.annotations, reservedKey)
        }
      }
      const data = stringMap(problems, "target.template.data", tpl.data, (k) =>
        SECRET_KEY.test(k) && k.length <= 253 ? undefined : "is not a valid Secret key (letters, digits, '-', '_' and '.')",
      )
      for (const [key, source] of Object.entries(data)) {
        try {
          const compiled = compileTemplate(source)
          compiled.render(PLACEHOLDER)
          templates.push({ key, render: compiled.render })
        } catch (e) {
          problems.push(`target.template.data[${JSON.stringify(key)}]: ${e instanceof TemplateError ? e.message : String(e)}`)
        }
      }
    }
  }

  const render = (values: TemplateValues): Record<string, string> => {
    const generated = { username: values.username, token: values.token }
    if (templates.length === 0) return generated
    const rendered = Object.fromEntries(templates.map((t) => [t.key, t.render(values)]))
    return merge ? { ...generated, ...rendered } : rendered
  }

  if (problems.length === 0 && type === "kubernetes.io/dockerconfigjson") {
    const sample = render(PLACEHOLDER)[".dockerconfigjson"]
    if (sample === undefined) problems.push('target.template.data: type kubernetes.io/dockerconfigjson needs the key ".dockerconfigjson"')
    else {
      try {
        const parsed = JSON.parse(sample) as unknown
        if (!isObj(parsed) || !isObj(parsed.auths)) throw new Error('no "auths" object')
      } catch (e) {
        problems.push(`target.template.data[".dockerconfigjson"]: does not render a docker config JSON (${e instanceof Error ? e.message : String(e)})`)
      }
    }
  }

  if (problems.length > 0) return { target: undefined, problems }
  return {
    target: { name: raw.name as string, creationPolicy, deletionPolicy, immutable: raw.immutable === true, type, labels, annotations, render },
    problems: [],
  }
}

/** A Secret as gldt reads and writes it (the JSON of the API; `data` values base64). */
export interface SecretObject {
  apiVersion?: string
  kind?: string
  metadata?: {
    name?: string
    namespace?: string
    uid?: string
    resourceVersion?: string
    labels?: Record<string, string>
    annotations?: Record<string, string>
    ownerReferences?: Array<OwnerReference>
    [k: string]: unknown
  }
  type?: string
  data?: Record<string, string>
  immutable?: boolean
  [k: string]: unknown
}

/** `reconcile.external-secrets.io/created-by` for an owner: ESO's hash of `namespace/name`. */
export const createdByLabel = (namespace: string, ownerName: string): string => esoObjectHash(`${namespace}/${ownerName}`)

const b64 = (s: string) => Buffer.from(s, "utf8").toString("base64")

/** Which other ExternalSecret owns the Secret (controller reference or ESO's created-by label), if any. */
export const otherExternalSecret = (existing: SecretObject, namespace: string, owner: Owner | undefined): string | undefined => {
  const controller = existing.metadata?.ownerReferences?.find((r) => r.controller === true)
  if (controller !== undefined && controller.uid !== owner?.uid && controller.kind === "ExternalSecret") return controller.name
  const createdBy = existing.metadata?.labels?.[LABEL_CREATED_BY]
  if (createdBy !== undefined && (owner === undefined || createdBy !== createdByLabel(namespace, owner.name))) return `label ${LABEL_CREATED_BY}=${createdBy}`
  return undefined
}

/** Why gldt must not write into an existing Secret, or undefined. */
export const conflictWith = (existing: SecretObject, t: CompiledTarget, namespace: string, owner: Owner | undefined): string | undefined => {
  const where = `target Secret ${namespace}/${t.name}`
  const other = otherExternalSecret(existing, namespace, owner)
  if (other !== undefined) return `${where} is owned by another ExternalSecret (${other}); gldt will not overwrite it`
  const controller = existing.metadata?.ownerReferences?.find((r) => r.controller === true)
  if (controller !== undefined && controller.uid !== owner?.uid && t.creationPolicy === "Owner") {
    return `${where} is controlled by ${controller.kind}/${controller.name}; failed to take ownership of target secret`
  }
  if (existing.immutable === true) {
    return `${where} is immutable: could not update secret, target is immutable (delete it to let gldt write a new token, or drop target.immutable)`
  }
  if (t.type !== undefined && existing.type !== undefined && existing.type !== t.type) {
    return `${where} has type ${existing.type} but the template asks for ${t.type}; a Secret's type cannot change: delete the Secret`
  }
  return undefined
}

export type Plan = { readonly op: "create" | "replace"; readonly secret: SecretObject } | { readonly op: "refuse"; readonly reason: string }

/**
 * The Secret to write for `values` (and `tokenId`) given what exists now, or why it cannot be written.
 * Owner/Orphan replace the data; Merge/CreateOrMerge merge it into an existing Secret.
 */
export const planWrite = (
  t: CompiledTarget,
  namespace: string,
  owner: Owner | undefined,
  existing: SecretObject | undefined,
  values: TemplateValues,
  tokenId: number,
): Plan => {
  const where = `target Secret ${namespace}/${t.name}`
  if (t.creationPolicy === "None") {
    return { op: "refuse", reason: `creationPolicy None: gldt never writes ${where}, so a new token could not be delivered` }
  }
  if (t.creationPolicy === "Owner" && owner === undefined) {
    return { op: "refuse", reason: "creationPolicy Owner needs the owner (the ExternalSecret) to set the Secret's owner reference" }
  }
  if (existing === undefined && t.creationPolicy === "Merge") {
    return {
      op: "refuse",
      reason: `${where} does not exist and creationPolicy is Merge (gldt only merges into an existing Secret): create it, or use Owner or Orphan`,
    }
  }
  if (existing !== undefined) {
    const conflict = conflictWith(existing, t, namespace, owner)
    if (conflict !== undefined) return { op: "refuse", reason: conflict }
  }
  const rendered = Object.fromEntries(Object.entries(t.render(values)).map(([k, v]) => [k, b64(v)]))
  const merging = existing !== undefined && (t.creationPolicy === "Merge" || t.creationPolicy === "CreateOrMerge")
  const data = merging ? { ...(existing.data ?? {}), ...rendered } : rendered
  const createdBy = owner === undefined ? undefined : createdByLabel(namespace, owner.name)
  const labels: Record<string, string> = { ...(existing?.metadata?.labels ?? {}), ...t.labels, [LABEL_MANAGED]: "true" }
  if (t.creationPolicy === "Owner" && createdBy !== undefined) labels[LABEL_CREATED_BY] = createdBy
  else if (createdBy !== undefined && labels[LABEL_CREATED_BY] === createdBy) delete labels[LABEL_CREATED_BY]
  const annotations: Record<string, string> = {
    ...(existing?.metadata?.annotations ?? {}),
    ...t.annotations,
    [ANNOTATION_DATA_HASH]: secretDataHash(data),
    [ANNOTATION_TOKEN_ID]: String(tokenId),
  }
  let ownerReferences = existing?.metadata?.ownerReferences ?? []
  if (owner !== undefined && (t.creationPolicy === "Owner" || t.creationPolicy === "Orphan")) {
    ownerReferences = ownerReferences.filter((r) => r.uid !== owner.uid)
  }
  if (t.creationPolicy === "Owner" && owner !== undefined) {
    ownerReferences = [
      ...ownerReferences,
      { apiVersion: owner.apiVersion, kind: owner.kind, name: owner.name, uid: owner.uid, controller: true, blockOwnerDeletion: true },
    ]
  }
  const type = t.type ?? existing?.type ?? "Opaque"
  const immutable = t.immutable ? true : existing?.immutable
  if (existing === undefined) {
    return {
      op: "create",
      secret: {
        apiVersion: "v1",
        kind: "Secret",
        metadata: { name: t.name, namespace, labels, annotations, ...(ownerReferences.length > 0 ? { ownerReferences } : {}) },
        type,
        data,
        ...(immutable ? { immutable: true } : {}),
      },
    }
  }
  const { managedFields: _m, ...metadata } = existing.metadata ?? {}
  return {
    op: "replace",
    secret: {
      ...existing,
      apiVersion: "v1",
      kind: "Secret",
      metadata: { ...metadata, labels, annotations, ownerReferences },
      type,
      data,
      ...(immutable === undefined ? {} : { immutable }),
    },
  }
}

/** The token id the Secret holds: from gldt's annotation, if the data is still what was written. */
export const heldTokenId = (secret: SecretObject): number => {
  const annotations = secret.metadata?.annotations ?? {}
  const id = Number(annotations[ANNOTATION_TOKEN_ID])
  if (!Number.isSafeInteger(id) || id <= 0) return 0
  return annotations[ANNOTATION_DATA_HASH] === secretDataHash(secret.data) ? id : 0
}

/** The keys gldt writes for this target (the generated keys or the template's). */
export const ownKeys = (t: CompiledTarget): ReadonlyArray<string> => Object.keys(t.render(PLACEHOLDER))
