/**
 * The `GitlabDeployToken` spec: one field table that validates manifests (every problem, each naming
 * the field and the fix), normalises them into a `DeployTokenSpec`, and describes the CRD schema.
 */
import { formatGoDuration, parseGoDuration } from "./GoDuration.ts"

export const GENERATOR_API_VERSION = "generators.external-secrets.io/v1alpha1"
export const GENERATOR_KIND = "GitlabDeployToken"

/** Scopes in GitLab's canonical order (`DeployToken::AVAILABLE_SCOPES`). */
export const SCOPES = [
  "read_repository",
  "read_registry",
  "write_registry",
  "read_package_registry",
  "write_package_registry",
  "read_virtual_registry",
  "write_virtual_registry",
] as const
export type Scope = (typeof SCOPES)[number]

export const DEFAULT_URL = "https://gitlab.com"
/** Registry JWTs outlive a deleted token by 5 min (15 on gitlab.com); running jobs hold old values. */
export const DEFAULT_GRACE_MS = 15 * 60_000
/** expiresAfter below one day is refused: older GitLab versions round expiry to a date. */
export const MIN_EXPIRES_AFTER_MS = 24 * 3_600_000
/** expiresAfter above 100 years is refused: dates must stay below the no-expiry fingerprint range. */
export const MAX_EXPIRES_AFTER_MS = 100 * 365 * 24 * 3_600_000
/**
 * Dates from here on are reserved: gldt gives tokens without an expiry a fingerprint expiry in
 * 2999, and GitLab reports its "forever" date 3000-01-01 as no expiry at all.
 */
export const LATEST_EXPIRES_AT_MS = Date.UTC(2999, 0, 1)
export const USERNAME_PATTERN = /^[a-zA-Z0-9.+_-]+$/
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/
const SECRET_KEY = /^[-._a-zA-Z0-9]+$/
const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/i

export interface Problem {
  /** Dotted path of the field, e.g. `spec.projectID`. */
  readonly path: string
  /** What is wrong and how to fix it. */
  readonly message: string
}

export type Target = { readonly kind: "project" | "group"; readonly id: string }

export type Expiry =
  | { readonly kind: "none" }
  | { readonly kind: "at"; readonly at: number }
  | { readonly kind: "after"; readonly ms: number }

export interface SecretKeyRef {
  readonly name: string
  readonly key: string
  readonly namespace?: string
}

export interface CaProvider {
  readonly type: "Secret" | "ConfigMap"
  readonly name: string
  readonly key: string
  readonly namespace?: string
}

/** A validated, normalised spec: what the lifecycle needs to mint and to recognise its tokens. */
export interface DeployTokenSpec {
  readonly url: string
  readonly target: Target
  readonly name: string
  readonly scopes: ReadonlyArray<Scope>
  readonly username: string | undefined
  readonly expiry: Expiry
  readonly auth: { readonly secretRef: SecretKeyRef }
  readonly revokeGracePeriodMs: number | undefined
  readonly renewBeforeExpiryMs: number | undefined
  readonly caBundle: string | undefined
  readonly caProvider: CaProvider | undefined
}

export interface ValidateOptions {
  /** Accept `http://` URLs (local tests only). */
  readonly allowHttp?: boolean
  /** Current time in ms, to refuse an `expiresAt` in the past. */
  readonly now?: number
}

type Obj = Record<string, unknown>
const isObj = (u: unknown): u is Obj => typeof u === "object" && u !== null && !Array.isArray(u)

/** Field descriptions, shared by validation messages, docs and the CRD's OpenAPI schema. */
export const FIELD_DOCS = {
  url: "URL of the GitLab instance. Defaults to https://gitlab.com. https only unless plain HTTP is explicitly allowed.",
  projectID:
    "Numeric ID or unescaped path (e.g. group/project) of the project. Do not pre-encode. Mutually exclusive with groupID.",
  groupID:
    "Numeric ID or unescaped path (e.g. parent/group) of the group. Do not pre-encode. Mutually exclusive with projectID.",
  name: "Name of the deploy token (at most 255 characters). The same name is reused on every rotation.",
  scopes: "Scopes granted to the deploy token. At least one scope is required.",
  expiresAt: "Optional absolute expiry (RFC 3339). Must be in the future and before 2999-01-01. Mutually exclusive with expiresAfter.",
  expiresAfter:
    "Optional relative expiry (Go duration, at least 24h, at most 876000h = 100 years): each token expires this long after it is minted. Mutually exclusive with expiresAt.",
  username:
    "Optional username (letters, digits, '_', '-', '+', '.'; at most 255). Set it so rotation changes only the password; GitLab defaults to gitlab+deploy-token-{n}.",
  revokeGracePeriod:
    "Optional Go duration: how long a replaced token stays valid after its successor was delivered. Default 15m.",
  renewBeforeExpiry:
    "Optional Go duration: rotate this long before a token's own expiry; at most half of expiresAfter. Default: a third of its lifetime, at most 24h.",
  caBundle: "Optional base64-encoded PEM bundle of CAs to trust for a self-managed GitLab.",
  caProvider: "Optional reference to a Secret or ConfigMap key holding a PEM CA bundle.",
  auth: "How to authenticate to the GitLab API: a Secret key holding an access token with the api scope.",
} as const

const KNOWN_SPEC_FIELDS = new Set([...Object.keys(FIELD_DOCS)])

const checkString = (
  problems: Problem[],
  path: string,
  value: unknown,
  opts: { required?: boolean; minLength?: number; maxLength?: number; pattern?: RegExp; patternHint?: string },
): string | undefined => {
  if (value === undefined || value === null) {
    if (opts.required) problems.push({ path, message: "is required" })
    return undefined
  }
  if (typeof value !== "string") {
    problems.push({ path, message: `must be a string, got ${typeof value}${typeof value === "number" ? ` (quote it: "${value}")` : ""}` })
    return undefined
  }
  if (opts.minLength !== undefined && value.length < opts.minLength) {
    problems.push({ path, message: "must not be empty" })
    return undefined
  }
  if (opts.maxLength !== undefined && value.length > opts.maxLength) {
    problems.push({ path, message: `is ${value.length} characters long; shorten it to at most ${opts.maxLength}` })
    return undefined
  }
  if (opts.pattern && !opts.pattern.test(value)) {
    problems.push({ path, message: opts.patternHint ?? `must match ${opts.pattern.source}` })
    return undefined
  }
  return value
}

const checkDuration = (problems: Problem[], path: string, value: unknown): number | undefined => {
  const text = checkString(problems, path, value, { minLength: 1 })
  if (text === undefined) return undefined
  const ms = parseGoDuration(text)
  if (ms === undefined) {
    problems.push({ path, message: `"${text}" is not a duration; write it like 15m, 1h30m or 720h` })
  }
  return ms
}

/** Validates a GitLab URL: https (or http when allowed), no credentials, query or fragment. */
export const checkGitlabUrl = (
  problems: Problem[],
  path: string,
  value: string,
  allowHttp: boolean,
): string | undefined => {
  let parsed: URL
  try {
    parsed = new URL(value)
  } catch {
    problems.push({ path, message: `"${value}" is not a URL; write it like https://gitlab.example.com` })
    return undefined
  }
  if (parsed.protocol !== "https:" && !(allowHttp && parsed.protocol === "http:")) {
    problems.push({
      path,
      message:
        parsed.protocol === "http:"
          ? "uses plain http; use https (plain HTTP is allowed only with --allow-http, for local tests)"
          : `has scheme ${parsed.protocol.replace(":", "")}; use https://`,
    })
    return undefined
  }
  if (parsed.username !== "" || parsed.password !== "") {
    problems.push({
      path,
      message: "must not carry credentials; remove user:password@ and put the access token in the auth secret",
    })
    return undefined
  }
  if (parsed.search !== "" || parsed.hash !== "") {
    problems.push({ path, message: "must not have a query or fragment; give the instance base URL only" })
    return undefined
  }
  return `${parsed.origin}${parsed.pathname.replace(/\/+$/, "")}`
}

const checkTarget = (problems: Problem[], spec: Obj): Target | undefined => {
  const hasProject = spec.projectID !== undefined && spec.projectID !== null
  const hasGroup = spec.groupID !== undefined && spec.groupID !== null
  if (hasProject && hasGroup) {
    problems.push({ path: "spec", message: "set exactly one of projectID or groupID, not both" })
    return undefined
  }
  if (!hasProject && !hasGroup) {
    problems.push({ path: "spec", message: "set exactly one of projectID or groupID (neither is set)" })
    return undefined
  }
  const kind = hasProject ? "project" : "group"
  const path = hasProject ? "spec.projectID" : "spec.groupID"
  const raw = checkString(problems, path, hasProject ? spec.projectID : spec.groupID, { minLength: 1 })
  if (raw === undefined) return undefined
  const id = raw.trim()
  if (id !== raw || id.length === 0) {
    problems.push({ path, message: "must not have leading or trailing spaces" })
    return undefined
  }
  if (/%2f/i.test(id)) {
    problems.push({ path, message: `is URL-encoded; write the plain path (e.g. ${decodeURIComponent(id)}), gldt escapes it` })
    return undefined
  }
  if (id.startsWith("/") || id.endsWith("/") || id.includes("//")) {
    problems.push({ path, message: "is not a valid path; write it like group/project without leading or trailing '/'" })
    return undefined
  }
  if (id.split("/").some((segment) => segment === "." || segment === "..")) {
    // `..` would climb out of the API path (groupID ".." lists every token of the instance).
    problems.push({ path, message: `"${id}" has a '.' or '..' segment; write the real path, e.g. mygroup/myproject, or the numeric ID` })
    return undefined
  }
  if (kind === "project" && !/^\d+$/.test(id) && !id.includes("/")) {
    problems.push({
      path,
      message: `"${id}" is neither a numeric ID nor a full path; write the namespace too, e.g. mygroup/${id}`,
    })
    return undefined
  }
  return { kind, id }
}

const checkScopes = (problems: Problem[], value: unknown): ReadonlyArray<Scope> | undefined => {
  if (value === undefined || value === null) {
    problems.push({ path: "spec.scopes", message: `is required; list at least one of ${SCOPES.join(", ")}` })
    return undefined
  }
  if (!Array.isArray(value)) {
    problems.push({ path: "spec.scopes", message: "must be a list, e.g. [read_registry]" })
    return undefined
  }
  if (value.length === 0) {
    problems.push({ path: "spec.scopes", message: `must not be empty; list at least one of ${SCOPES.join(", ")}` })
    return undefined
  }
  let ok = true
  value.forEach((s, i) => {
    if (typeof s !== "string" || !(SCOPES as ReadonlyArray<string>).includes(s)) {
      ok = false
      problems.push({ path: `spec.scopes[${i}]`, message: `"${String(s)}" is not a deploy-token scope; use one of ${SCOPES.join(", ")}` })
    }
  })
  if (!ok) return undefined
  return SCOPES.filter((s) => value.includes(s))
}

const checkExpiry = (problems: Problem[], spec: Obj, now: number | undefined): Expiry | undefined => {
  const hasAt = spec.expiresAt !== undefined && spec.expiresAt !== null
  const hasAfter = spec.expiresAfter !== undefined && spec.expiresAfter !== null
  if (hasAt && hasAfter) {
    problems.push({ path: "spec", message: "expiresAt and expiresAfter are mutually exclusive; keep one" })
    return undefined
  }
  if (hasAt) {
    const raw = spec.expiresAt instanceof Date ? spec.expiresAt.toISOString() : spec.expiresAt
    const text = checkString(problems, "spec.expiresAt", raw, { minLength: 1 })
    if (text === undefined) return undefined
    const at = Date.parse(text)
    if (!RFC3339.test(text) || Number.isNaN(at)) {
      problems.push({ path: "spec.expiresAt", message: `"${text}" is not an RFC 3339 date-time; write it like 2027-01-01T00:00:00Z` })
      return undefined
    }
    if (now !== undefined && at <= now) {
      problems.push({
        path: "spec.expiresAt",
        message: `${text} is in the past; set a future date or use expiresAfter (e.g. 720h) for a relative expiry`,
      })
      return undefined
    }
    if (at >= LATEST_EXPIRES_AT_MS) {
      problems.push({
        path: "spec.expiresAt",
        message: `${text} is too far away; use a date before 2999-01-01, or leave expiresAt out for a token without expiry`,
      })
      return undefined
    }
    return { kind: "at", at }
  }
  if (hasAfter) {
    const ms = checkDuration(problems, "spec.expiresAfter", spec.expiresAfter)
    if (ms === undefined) return undefined
    if (ms < MIN_EXPIRES_AFTER_MS) {
      problems.push({ path: "spec.expiresAfter", message: `${formatGoDuration(ms)} is too short; use at least 24h` })
      return undefined
    }
    if (ms > MAX_EXPIRES_AFTER_MS) {
      problems.push({
        path: "spec.expiresAfter",
        message: `"${String(spec.expiresAfter)}" is too long; use at most 876000h (100 years), or leave it out for a token without expiry`,
      })
      return undefined
    }
    return { kind: "after", ms }
  }
  return { kind: "none" }
}

const checkSecretKeyRef = (problems: Problem[], path: string, value: unknown): SecretKeyRef | undefined => {
  if (!isObj(value)) {
    problems.push({ path, message: "is required: name the Secret and key holding the GitLab access token" })
    return undefined
  }
  const name = checkString(problems, `${path}.name`, value.name, {
    required: true,
    minLength: 1,
    maxLength: 253,
    pattern: DNS_SUBDOMAIN,
    patternHint: "must be a Kubernetes object name (lowercase letters, digits, '-' and '.')",
  })
  const key = checkString(problems, `${path}.key`, value.key, {
    required: true,
    minLength: 1,
    maxLength: 253,
    pattern: SECRET_KEY,
    patternHint: "may contain only letters, digits, '-', '_' and '.'",
  })
  const namespace = checkString(problems, `${path}.namespace`, value.namespace, {
    minLength: 1,
    maxLength: 63,
    pattern: DNS_LABEL,
    patternHint: "must be a Kubernetes namespace name",
  })
  if (name === undefined || key === undefined) return undefined
  return namespace === undefined ? { name, key } : { name, key, namespace }
}

const checkCaProvider = (problems: Problem[], value: unknown): CaProvider | undefined => {
  if (!isObj(value)) {
    problems.push({ path: "spec.caProvider", message: "must be an object {type, name, key}" })
    return undefined
  }
  if (value.type !== "Secret" && value.type !== "ConfigMap") {
    problems.push({ path: "spec.caProvider.type", message: "must be Secret or ConfigMap" })
  }
  const ref = checkSecretKeyRef(problems, "spec.caProvider", value)
  if (ref === undefined || (value.type !== "Secret" && value.type !== "ConfigMap")) return undefined
  return { type: value.type, ...ref }
}

const checkCaBundle = (problems: Problem[], value: unknown): string | undefined => {
  const text = checkString(problems, "spec.caBundle", value, { minLength: 1 })
  if (text === undefined) return undefined
  const pem = /-----BEGIN CERTIFICATE-----/.test(text) ? text : Buffer.from(text, "base64").toString("utf8")
  if (!/-----BEGIN CERTIFICATE-----/.test(pem)) {
    problems.push({ path: "spec.caBundle", message: "is not a PEM certificate bundle (plain or base64-encoded)" })
    return undefined
  }
  return pem
}

/** Validates a `GitlabDeployToken` spec object; returns the normalised spec or every problem found. */
export const validateSpec = (
  input: unknown,
  options: ValidateOptions = {},
): { readonly spec: DeployTokenSpec; readonly problems: readonly [] } | { readonly spec: undefined; readonly problems: ReadonlyArray<Problem> } => {
  const problems: Problem[] = []
  if (!isObj(input)) {
    return { spec: undefined, problems: [{ path: "spec", message: "is required: a GitlabDeployToken needs a spec" }] }
  }
  for (const key of Object.keys(input)) {
    if (!KNOWN_SPEC_FIELDS.has(key) && key !== "projectID" && key !== "groupID") {
      problems.push({ path: `spec.${key}`, message: `is not a field of GitlabDeployToken; known fields: ${[...KNOWN_SPEC_FIELDS].join(", ")}` })
    }
  }
  let url: string | undefined = DEFAULT_URL
  if (input.url !== undefined && input.url !== null && input.url !== "") {
    const raw = checkString(problems, "spec.url", input.url, {})
    url = raw === undefined ? undefined : checkGitlabUrl(problems, "spec.url", raw, options.allowHttp ?? false)
  }
  const target = checkTarget(problems, input)
  const name = checkString(problems, "spec.name", input.name, { required: true, minLength: 1, maxLength: 255 })
  const scopes = checkScopes(problems, input.scopes)
  const expiry = checkExpiry(problems, input, options.now)
  const rawUsername = checkString(problems, "spec.username", input.username, {
    maxLength: 255,
    pattern: /^$|^[a-zA-Z0-9.+_-]+$/,
    patternHint: "may contain only letters, digits, '_', '-', '+' and '.' (GitLab rejects anything else)",
  })
  const username = rawUsername === "" ? undefined : rawUsername
  let secretRef: SecretKeyRef | undefined
  if (!isObj(input.auth) || !isObj(input.auth.token)) {
    problems.push({ path: "spec.auth.token.secretRef", message: "is required: name the Secret and key holding the GitLab access token" })
  } else {
    secretRef = checkSecretKeyRef(problems, "spec.auth.token.secretRef", input.auth.token.secretRef)
  }
  const grace = input.revokeGracePeriod === undefined ? undefined : checkDuration(problems, "spec.revokeGracePeriod", input.revokeGracePeriod)
  const renew = input.renewBeforeExpiry === undefined ? undefined : checkDuration(problems, "spec.renewBeforeExpiry", input.renewBeforeExpiry)
  if (renew !== undefined && expiry?.kind === "after" && renew > expiry.ms / 2) {
    // A margin at or above the lifetime makes every fresh token "due" at once: a mint loop.
    problems.push({
      path: "spec.renewBeforeExpiry",
      message: `${formatGoDuration(renew)} is not well below the token lifetime (expiresAfter ${formatGoDuration(expiry.ms)}); use at most half of it (${formatGoDuration(Math.floor(expiry.ms / 2))}) or leave it out for the default`,
    })
  }
  const caBundle = input.caBundle === undefined ? undefined : checkCaBundle(problems, input.caBundle)
  const caProvider = input.caProvider === undefined ? undefined : checkCaProvider(problems, input.caProvider)
  if (
    problems.length > 0 ||
    url === undefined ||
    target === undefined ||
    name === undefined ||
    scopes === undefined ||
    expiry === undefined ||
    secretRef === undefined
  ) {
    return { spec: undefined, problems }
  }
  return {
    spec: {
      url,
      target,
      name,
      scopes,
      username,
      expiry,
      auth: { secretRef },
      revokeGracePeriodMs: grace,
      renewBeforeExpiryMs: renew,
      caBundle,
      caProvider,
    },
    problems: [],
  }
}

/** A stable identity of everything that shapes a minted token; a change means rotation. */
export const specFingerprint = (spec: DeployTokenSpec): string =>
  JSON.stringify([
    spec.url,
    spec.target.kind,
    spec.target.id,
    spec.name,
    spec.username ?? null,
    spec.scopes,
    spec.expiry.kind === "at" ? spec.expiry.at : spec.expiry.kind === "after" ? `+${spec.expiry.ms}` : null,
  ])

export const formatProblem = (p: Problem): string => `${p.path}: ${p.message}`
