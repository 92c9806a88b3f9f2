/**
 * The `GitlabDeployToken` spec: validated with the one schema in `SpecSchema.ts` (every problem,
 * each naming the field and the fix, worded from the schema's checks and messages) and normalised
 * into a `DeployTokenSpec`.
 */
import { Result, Schema, type SchemaAST, type SchemaIssue } from "effect"
import { parseGoDuration } from "./GoDuration.ts"
import {
  CROSS_FIELD_RULES,
  FIELD_DOCS,
  type FieldMessages,
  type GitlabDeployTokenSpec,
  makeGitlabDeployTokenSpec,
  pemOf,
  SCOPES,
  type Scope,
  type SpecRuleOptions,
} from "./SpecSchema.ts"

export {
  FIELD_DOCS,
  LATEST_EXPIRES_AT_MS,
  MAX_EXPIRES_AFTER_MS,
  MIN_EXPIRES_AFTER_MS,
  SCOPES,
  type Scope,
  USERNAME_PATTERN,
} from "./SpecSchema.ts"

export const GENERATOR_API_VERSION = "generators.external-secrets.io/v1alpha1"
export const GENERATOR_KIND = "GitlabDeployToken"

export const DEFAULT_URL = "https://gitlab.com"
/** Registry JWTs outlive a deleted token by 5 min (15 on gitlab.com); running jobs hold old values. */
export const DEFAULT_GRACE_MS = 15 * 60_000

export interface Problem {
  /** Dotted path of the field, e.g. `spec.projectID`. */
  readonly path: string
  /** What is wrong and how to fix it. */
  readonly message: string
}

export type Target = { readonly kind: "project" | "group"; readonly id: string }

export type Expiry = { readonly kind: "none" } | { readonly kind: "at"; readonly at: number } | { readonly kind: "after"; readonly ms: number }

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

export type ValidateOptions = SpecRuleOptions

type Obj = Record<string, unknown>
const isObj = (u: unknown): u is Obj => typeof u === "object" && u !== null && !Array.isArray(u) && !(u instanceof Date)

/**
 * What YAML hands over, as the schema reads it: a key with no value (null) is an absent key, as the
 * Kubernetes API treats it, and a date the YAML parser already read is its RFC 3339 text.
 */
const plain = (u: unknown): unknown => {
  if (u instanceof Date) return u.toISOString()
  if (Array.isArray(u)) return u.map(plain)
  if (!isObj(u)) return u
  return Object.fromEntries(Object.entries(u).flatMap(([k, v]) => (v === null || v === undefined ? [] : [[k, plain(v)]])))
}

const messagesOf = (ast: SchemaAST.AST | undefined): FieldMessages =>
  ((ast?.annotations as { readonly messages?: FieldMessages } | undefined)?.messages ?? {}) as FieldMessages

const pathText = (path: ReadonlyArray<PropertyKey>): string =>
  path.reduce<string>((out, k) => (typeof k === "number" ? `${out}[${k}]` : `${out}.${String(k)}`), "spec")

const typeName = (v: unknown) => (v === null ? "null" : Array.isArray(v) ? "list" : typeof v)

/** The generic wording of a wrong type, by what the schema expected. */
const typeMessage = (ast: SchemaAST.AST, input: unknown): string => {
  const custom = messagesOf(ast).type
  if (custom !== undefined) return custom
  switch (ast._tag) {
    case "String":
      return `must be a string, got ${typeName(input)}${typeof input === "number" ? ` (quote it: "${input}")` : ""}`
    case "Arrays":
      return `must be a list, got ${typeName(input)}`
    case "Objects":
      return `must be a mapping, got ${typeName(input)}`
    default:
      return `has the wrong type (${typeName(input)})`
  }
}

/** The wording of a failed check: from Effect's representation of it, or the rule's own message. */
const filterMessage = (ast: SchemaAST.AST | undefined, issue: SchemaIssue.Filter): string => {
  const representation = (issue.filter.annotations as { readonly representation?: { id?: string; payload?: Obj } } | undefined)?.representation
  const input = issue.issue.input
  const messages = messagesOf(ast)
  switch (representation?.id) {
    case "effect/schema/isMinLength":
      return messages.empty ?? "must not be empty"
    case "effect/schema/isMaxLength": {
      const max = Number(representation.payload?.maxLength)
      const length = typeof input === "string" || Array.isArray(input) ? input.length : Number.NaN
      return Array.isArray(input) ? `has ${length} entries; keep at most ${max}` : `is ${length} characters long; shorten it to at most ${max}`
    }
    case "effect/schema/isPattern": {
      const pattern = messages.pattern
      if (typeof pattern === "function") return pattern(String(input))
      return pattern ?? `must match ${String(representation.payload?.source)}`
    }
  }
  const own = (issue.issue as { readonly annotations?: { readonly message?: unknown } }).annotations?.message
  return typeof own === "string" ? own : "is not valid"
}

/** Every problem in a decoding issue, each at the field it names. */
const problemsOf = (issue: SchemaIssue.Issue, path: ReadonlyArray<PropertyKey>, ast: SchemaAST.AST | undefined): ReadonlyArray<Problem> => {
  const at = (message: string, node?: SchemaAST.AST, override = messagesOf(node).path): ReadonlyArray<Problem> => [
    { path: override === undefined ? pathText(path) : `spec.${override}`, message },
  ]
  switch (issue._tag) {
    case "Pointer":
      return problemsOf(issue.issue, [...path, ...issue.path], undefined)
    case "Composite":
      return issue.issues.flatMap((inner) => problemsOf(inner, path, issue.ast))
    case "Filter":
      if (issue.issue._tag === "Pointer" || issue.issue._tag === "Composite") return problemsOf(issue.issue, path, ast)
      return at(filterMessage(ast, issue))
    case "MissingKey": {
      const key = issue.annotations as { readonly messageMissingKey?: string; readonly messages?: FieldMessages } | undefined
      return at(key?.messageMissingKey ?? "is required", undefined, key?.messages?.path)
    }
    case "InvalidType":
      return at(typeMessage(issue.ast, issue.input), issue.ast)
    case "AnyOf":
      return at(messagesOf(issue.ast).member?.(issue.input) ?? `${JSON.stringify(issue.input)} is not allowed`, issue.ast)
    case "UnexpectedKey":
      // Only the spec's own keys: ESO's nested objects are pruned by the API server, not refused.
      return path.length === 1 ? at(`is not a field of GitlabDeployToken; known fields: ${Object.keys(FIELD_DOCS).join(", ")}`) : []
    case "InvalidValue": {
      const message = (issue.annotations as { readonly message?: unknown } | undefined)?.message
      return at(typeof message === "string" ? message : "is not valid")
    }
    default:
      return at("is not valid")
  }
}

type Decoded = GitlabDeployTokenSpec

/** The instance base URL, without a trailing slash (already checked by the schema). */
const baseUrl = (url: string | undefined): string => {
  if (url === undefined || url === "") return DEFAULT_URL
  const parsed = new URL(url)
  return `${parsed.origin}${parsed.pathname.replace(/\/+$/, "")}`
}

const normalise = (d: Decoded): DeployTokenSpec => {
  const ref = d.auth.token.secretRef
  return {
    url: baseUrl(d.url),
    target: d.projectID !== undefined ? { kind: "project", id: d.projectID } : { kind: "group", id: d.groupID ?? "" },
    name: d.name,
    scopes: SCOPES.filter((s) => (d.scopes as ReadonlyArray<Scope>).includes(s)),
    username: d.username === "" ? undefined : d.username,
    expiry:
      d.expiresAt !== undefined
        ? { kind: "at", at: Date.parse(d.expiresAt) }
        : d.expiresAfter !== undefined
          ? { kind: "after", ms: parseGoDuration(d.expiresAfter) ?? 0 }
          : { kind: "none" },
    auth: { secretRef: { name: ref.name ?? "", key: ref.key ?? "", ...(ref.namespace === undefined ? {} : { namespace: ref.namespace }) } },
    revokeGracePeriodMs: d.revokeGracePeriod === undefined ? undefined : parseGoDuration(d.revokeGracePeriod),
    renewBeforeExpiryMs: d.renewBeforeExpiry === undefined ? undefined : parseGoDuration(d.renewBeforeExpiry),
    caBundle: d.caBundle === undefined ? undefined : pemOf(d.caBundle),
    caProvider:
      d.caProvider === undefined
        ? undefined
        : {
            type: d.caProvider.type,
            name: d.caProvider.name,
            key: d.caProvider.key,
            ...(d.caProvider.namespace === undefined ? {} : { namespace: d.caProvider.namespace }),
          },
  }
}

/**
 * One schema and decoder per `allowHttp`, built on first use: building them costs far more than a
 * decode, and the controller validates a spec on every reconcile. `now` changes per call, so the
 * cached schema reads it through a getter from `clock`, set just before the (synchronous) decode.
 */
const clock: { now: number | undefined } = { now: undefined }
const decoders = new Map<boolean, ReturnType<typeof Schema.decodeUnknownResult<ReturnType<typeof makeGitlabDeployTokenSpec>>>>()
const decoderFor = (options: ValidateOptions) => {
  const allowHttp = options.allowHttp ?? false
  let decode = decoders.get(allowHttp)
  if (decode === undefined) {
    decode = Schema.decodeUnknownResult(
      makeGitlabDeployTokenSpec({
        allowHttp,
        get now() {
          return clock.now
        },
      }),
    )
    decoders.set(allowHttp, decode)
  }
  const cached = decode
  return (raw: unknown, parseOptions: Parameters<typeof cached>[1]) => {
    clock.now = options.now
    try {
      return cached(raw, parseOptions)
    } finally {
      clock.now = undefined
    }
  }
}

/** Validates a `GitlabDeployToken` spec object; returns the normalised spec or every problem found. */
export const validateSpec = (
  input: unknown,
  options: ValidateOptions = {},
): { readonly spec: DeployTokenSpec; readonly problems: readonly [] } | { readonly spec: undefined; readonly problems: ReadonlyArray<Problem> } => {
  if (!isObj(input)) {
    return { spec: undefined, problems: [{ path: "spec", message: "is required: a GitlabDeployToken needs a spec" }] }
  }
  const raw = plain(input) as Obj
  const problems: Problem[] = []
  for (const r of CROSS_FIELD_RULES) {
    const message = r.check(raw)
    if (message !== undefined) problems.push({ path: r.path === undefined ? "spec" : `spec.${r.path}`, message })
  }
  const decoded = decoderFor(options)(raw, { errors: "all", onExcessProperty: "error", reportInput: true })
  if (Result.isFailure(decoded)) problems.push(...problemsOf(decoded.failure.issue, [], undefined))
  if (problems.length > 0 || Result.isFailure(decoded)) return { spec: undefined, problems }
  return { spec: normalise(decoded.success), problems: [] }
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
