/**
 * The `GitlabDeployToken` spec, defined once as an Effect `Schema`. Everything about a field lives
 * on its schema node:
 *
 * - its description (the CRD's `description`, the README's field table);
 * - its constraints as Effect checks (`isMinLength`, `isMaxLength`, `isPattern`): the CRD's
 *   OpenAPI is walked from them (`@gldt/adapter-kubernetes`'s `openApiOf`) and the validator words
 *   their failures;
 * - run-time rules the CRD cannot express (URL shape, a path that is URL-encoded, a date in the past,
 *   a duration that is too short, a CA bundle that is not PEM) as filters that return the message;
 * - the messages a person reads (`messageMissingKey` on the key; the `messages` annotation: of the wrong type,
 *   empty, not matching, not one of the allowed values), each naming the fix;
 * - the cross-field rules (`rules` annotation), each with its CEL twin for the CRD.
 *
 * Upstream ESO's fields keep ESO's exact constraints and CEL rule and message; gldt's extensions are
 * optional fields with CEL rules of their own.
 */
import { Schema } from "effect"
import { formatGoDuration, parseGoDuration } from "./GoDuration.ts"

export type OpenApiSchema = { readonly [k: string]: unknown }

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

/**
 * The top-level fields' descriptions: the schema's, and so the CRD's, the validator's list of known
 * fields and the README's field tables (`scripts/render-docs.ts`).
 */
export const FIELD_DOCS = {
  url: "URL of the GitLab instance. Defaults to https://gitlab.com. https only unless plain HTTP is explicitly allowed.",
  projectID: "Numeric ID or unescaped path (e.g. group/project) of the project. Do not pre-encode. Mutually exclusive with groupID.",
  groupID: "Numeric ID or unescaped path (e.g. parent/group) of the group. Do not pre-encode. Mutually exclusive with projectID.",
  name: "Name of the deploy token (at most 255 characters). The same name is reused on every rotation.",
  scopes: "Scopes granted to the deploy token. At least one scope is required.",
  expiresAt: "Optional absolute expiry (RFC 3339). Must be in the future and before 2999-01-01. Mutually exclusive with expiresAfter.",
  expiresAfter:
    "Optional relative expiry (Go duration, at least 24h, at most 876000h = 100 years): each token expires this long after it is minted. Mutually exclusive with expiresAt.",
  username:
    "Optional username (letters, digits, '_', '-', '+', '.'; at most 255). Set it so rotation changes only the password; GitLab defaults to gitlab+deploy-token-{n}.",
  revokeGracePeriod: "Optional Go duration: how long a replaced token stays valid after its successor was delivered. Default 15m.",
  renewBeforeExpiry:
    "Optional Go duration: rotate this long before a token's own expiry; at most half of expiresAfter (a larger margin is clamped to half the token's lifetime). Default: a third of its lifetime, at most 24h.",
  caBundle: "Optional base64-encoded PEM bundle of CAs to trust for a self-managed GitLab (the CLI also takes it unencoded).",
  caProvider: "Optional reference to a Secret or ConfigMap key holding a PEM CA bundle, in the consumer's namespace.",
  auth: "How to authenticate to the GitLab API: a Secret key holding an access token with the api scope and at least the Maintainer role on the target.",
} as const

/** A CEL rule of the CRD (`x-kubernetes-validations`). */
export interface CelRule {
  readonly rule: string
  readonly message: string
}

/** What the validator says about a field; each names the fix. */
export interface FieldMessages {
  /** The value has the wrong JSON type. */
  readonly type?: string
  /** A string or list that is empty (`isMinLength`). */
  readonly empty?: string
  /** A string that fails `isPattern`. */
  readonly pattern?: string | ((value: string) => string)
  /** A value that is not one of the allowed literals. */
  readonly member?: (value: unknown) => string
  /** Report the problem at this path below `spec` instead of the field's own. */
  readonly path?: string
}

/** A rule over several fields: the validator's check and, where CEL can say it, the CRD's rule. */
export interface CrossFieldRule {
  readonly cel?: CelRule | undefined
  /** Where the validator reports it, below `spec` (default: `spec` itself). */
  readonly path?: string | undefined
  /** The problem with `spec` (raw, as written), or undefined. */
  readonly check: (spec: { readonly [k: string]: unknown }) => string | undefined
}

/** Options of the run-time rules: what may differ between the CLI, the controller and a test. */
export interface SpecRuleOptions {
  /** Accept `http://` URLs (local tests only). */
  readonly allowHttp?: boolean
  /** Current time in ms, to refuse an `expiresAt` in the past. */
  readonly now?: number | undefined
}

const set = (v: unknown) => v !== undefined && v !== null

/** ESO's CEL rule for the target, with ESO's message. */
export const TARGET_RULE: CelRule = { rule: "has(self.projectID) != has(self.groupID)", message: "exactly one of projectID or groupID must be set" }

/** The spec's cross-field rules; the first is ESO's, the others gldt's. */
export const CROSS_FIELD_RULES: ReadonlyArray<CrossFieldRule> = [
  {
    cel: TARGET_RULE,
    check: (s) => {
      if (set(s.projectID) && set(s.groupID)) return "set exactly one of projectID or groupID, not both"
      if (!set(s.projectID) && !set(s.groupID)) return "set exactly one of projectID or groupID (neither is set)"
      return undefined
    },
  },
  {
    cel: { rule: "!(has(self.expiresAt) && has(self.expiresAfter))", message: "expiresAt and expiresAfter are mutually exclusive" },
    check: (s) => (set(s.expiresAt) && set(s.expiresAfter) ? "expiresAt and expiresAfter are mutually exclusive; keep one" : undefined),
  },
  {
    // No CEL twin: CEL cannot halve a duration. A margin at or above the lifetime makes every
    // fresh token "due" at once: a mint loop.
    path: "renewBeforeExpiry",
    check: (s) => {
      const renew = typeof s.renewBeforeExpiry === "string" ? parseGoDuration(s.renewBeforeExpiry) : undefined
      const lifetime = typeof s.expiresAfter === "string" ? parseGoDuration(s.expiresAfter) : undefined
      if (renew === undefined || lifetime === undefined || lifetime < MIN_EXPIRES_AFTER_MS || renew <= lifetime / 2) return undefined
      return `${formatGoDuration(renew)} is not well below the token lifetime (expiresAfter ${formatGoDuration(lifetime)}); use at most half of it (${formatGoDuration(Math.floor(lifetime / 2))}) or leave it out for the default`
    },
  },
]
/** The CRD's CEL rules for the spec, ESO's first. */
const CEL_RULES: ReadonlyArray<CelRule> = CROSS_FIELD_RULES.flatMap((r) => (r.cel === undefined ? [] : [r.cel]))
/** gldt's CEL rules for its extensions. */
export const EXTENSION_RULES: ReadonlyArray<CelRule> = CEL_RULES.slice(1)

/** Validates a GitLab URL: https (or http when allowed), no credentials, query or fragment. Returns the problem. */
export const gitlabUrlProblem = (value: string, allowHttp: boolean): string | undefined => {
  let parsed: URL
  try {
    parsed = new URL(value)
  } catch {
    return `"${value}" is not a URL; write it like https://gitlab.example.com`
  }
  if (parsed.protocol !== "https:" && !(allowHttp && parsed.protocol === "http:")) {
    return parsed.protocol === "http:"
      ? "uses plain http; use https (plain HTTP is allowed only with --allow-http, for local tests)"
      : `has scheme ${parsed.protocol.replace(":", "")}; use https://`
  }
  if (parsed.username !== "" || parsed.password !== "") {
    return "must not carry credentials; remove user:password@ and put the access token in the auth secret"
  }
  if (parsed.search !== "" || parsed.hash !== "") return "must not have a query or fragment; give the instance base URL only"
  return undefined
}

/** A project or group id: numeric, or a plain (not URL-encoded) path; a project path needs its namespace. */
const targetIdProblem =
  (kind: "project" | "group") =>
  (raw: string): string | undefined => {
    if (raw === "") return undefined // isMinLength says it
    const id = raw.trim()
    if (id !== raw || id.length === 0) return "must not have leading or trailing spaces"
    if (/%2f/i.test(id)) return `is URL-encoded; write the plain path (e.g. ${decodeURIComponent(id)}), gldt escapes it`
    if (id.startsWith("/") || id.endsWith("/") || id.includes("//")) {
      return "is not a valid path; write it like group/project without leading or trailing '/'"
    }
    // `..` would climb out of the API path (groupID ".." lists every token of the instance).
    if (id.split("/").some((segment) => segment === "." || segment === "..")) {
      return `"${id}" has a '.' or '..' segment; write the real path, e.g. mygroup/myproject, or the numeric ID`
    }
    if (kind === "project" && !/^\d+$/.test(id) && !id.includes("/")) {
      return `"${id}" is neither a numeric ID nor a full path; write the namespace too, e.g. mygroup/${id}`
    }
    return undefined
  }

const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/i

/** A Go duration ("15m", "1h30m"); checked before the CEL rules so a typo gets a clear message. */
const GO_DURATION = /^(0|([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+)$/
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/
const SECRET_KEY = /^[-._a-zA-Z0-9]+$/
const USERNAME_OR_EMPTY = /^[a-zA-Z0-9.+_-]*$/

const scopeList = SCOPES.join(", ")
const notADuration = (v: string) => `"${v}" is not a duration; write it like 15m, 1h30m or 720h`

/** A filter that only the validator runs (no OpenAPI form): `problem` returns the message. */
const rule = <T>(problem: (value: T) => string | undefined) => Schema.makeFilter<T>((value) => problem(value))

const described = (description: string, messages?: FieldMessages) =>
  Schema.String.annotate(messages === undefined ? { description } : { description, messages })

const duration = (
  description: string,
  cel: CelRule,
  bounds?: { readonly min: { readonly ms: number; readonly text: string }; readonly maxMs: number; readonly max: string },
) =>
  Schema.String.annotate({ description, "x-kubernetes-validations": [cel], messages: { pattern: notADuration } }).pipe(
    Schema.check(
      Schema.isPattern(GO_DURATION),
      rule<string>((v) => {
        if (!GO_DURATION.test(v)) return undefined // the pattern says it
        const ms = parseGoDuration(v)
        if (ms === undefined) return notADuration(v)
        if (bounds !== undefined && ms < bounds.min.ms) return `${formatGoDuration(ms)} is too short; use at least ${bounds.min.text}`
        if (bounds !== undefined && ms > bounds.maxMs) return `"${v}" is too long; use at most ${bounds.max}, or leave it out for a token without expiry`
        return undefined
      }),
    ),
  )

const SECRET_REF_MISSING = "is required: name the Secret and key holding the GitLab access token"
/** `auth`, `auth.token` and `auth.token.secretRef` missing or not a mapping: one problem, at the selector. */
const secretRefMissing = { messageMissingKey: SECRET_REF_MISSING, messages: { path: "auth.token.secretRef" } } as const

/** ESO's `SecretKeySelector`: every field optional in the CRD, as upstream. */
const secretKeySelector = (description: string, messages?: FieldMessages) =>
  Schema.Struct({
    key: Schema.optionalKey(
      described("A key in the referenced Secret.\nSome instances of this field may be defaulted, in others it may be required.", {
        pattern: "may contain only letters, digits, '-', '_' and '.'",
      }).pipe(Schema.check(Schema.isMaxLength(253), Schema.isMinLength(1), Schema.isPattern(SECRET_KEY))),
    ),
    name: Schema.optionalKey(
      described("The name of the Secret resource being referred to.", {
        pattern: "must be a Kubernetes object name (lowercase letters, digits, '-' and '.')",
      }).pipe(Schema.check(Schema.isMaxLength(253), Schema.isMinLength(1), Schema.isPattern(DNS_SUBDOMAIN))),
    ),
    namespace: Schema.optionalKey(
      described(
        "The namespace of the Secret resource being referred to.\nIgnored if referent is not cluster-scoped, otherwise defaults to the namespace of the referent.",
        { pattern: "must be a Kubernetes namespace name" },
      ).pipe(Schema.check(Schema.isMaxLength(63), Schema.isMinLength(1), Schema.isPattern(DNS_LABEL))),
    ),
  }).annotate(messages === undefined ? { description } : { description, messages })

/** An optional field gldt adds to upstream ESO's spec (the README lists them apart). */
const extension = <S extends Schema.Top>(schema: S) => Schema.optionalKey(schema).pipe(Schema.annotateKey({ extension: true }))

/** gldt needs the Secret's name and key, which ESO's selector leaves optional. */
const nameAndKey = Schema.makeFilter<{ readonly name?: string; readonly key?: string }>((ref) => [
  ...(ref.name === undefined ? [{ path: ["name"], issue: "is required" }] : []),
  ...(ref.key === undefined ? [{ path: ["key"], issue: "is required" }] : []),
])

const kubeName = rule<string>((v) =>
  v === "" || DNS_SUBDOMAIN.test(v) ? undefined : "must be a Kubernetes object name (lowercase letters, digits, '-' and '.')",
)
const secretKey = rule<string>((v) => (v === "" || SECRET_KEY.test(v) ? undefined : "may contain only letters, digits, '-', '_' and '.'"))
const namespaceName = rule<string>((v) => (v === "" || DNS_LABEL.test(v) ? undefined : "must be a Kubernetes namespace name"))

/**
 * The spec schema with the run-time rules bound to `options`. `GitlabDeployTokenSpec` is this with
 * the defaults; the CRD is walked from it (run-time rules have no OpenAPI form and are skipped).
 */
export const makeGitlabDeployTokenSpec = (options: SpecRuleOptions = {}) =>
  Schema.Struct({
    auth: Schema.Struct({
      token: Schema.Struct({
        secretRef: secretKeySelector(
          "SecretKeySelector is a reference to a specific 'key' within a Secret resource.\nIn some instances, `key` is a required field.",
          { type: SECRET_REF_MISSING },
        ).pipe(Schema.check(nameAndKey), Schema.annotateKey(secretRefMissing)),
      })
        .annotate({
          description:
            "Token references a secret containing a GitLab access token (personal, group, or\nproject) with the api scope and at least the Maintainer role on the target.",
          messages: { type: SECRET_REF_MISSING, path: "auth.token.secretRef" },
        })
        .pipe(Schema.annotateKey(secretRefMissing)),
    })
      .annotate({
        description: FIELD_DOCS.auth,
        messages: { type: SECRET_REF_MISSING, path: "auth.token.secretRef" },
      })
      .pipe(Schema.annotateKey(secretRefMissing)),
    expiresAt: Schema.optionalKey(
      Schema.String.annotate({ description: FIELD_DOCS.expiresAt, format: "date-time" }).pipe(
        Schema.check(
          rule<string>((v) => {
            if (v === "") return "must not be empty"
            if (!RFC3339.test(v) || Number.isNaN(Date.parse(v))) return `"${v}" is not an RFC 3339 date-time; write it like 2027-01-01T00:00:00Z`
            if (options.now !== undefined && Date.parse(v) <= options.now) {
              return `${v} is in the past; set a future date or use expiresAfter (e.g. 720h) for a relative expiry`
            }
            if (Date.parse(v) >= LATEST_EXPIRES_AT_MS) {
              return `${v} is too far away; use a date before 2999-01-01, or leave expiresAt out for a token without expiry`
            }
            return undefined
          }),
        ),
      ),
    ),
    groupID: Schema.optionalKey(described(FIELD_DOCS.groupID).pipe(Schema.check(Schema.isMinLength(1), rule(targetIdProblem("group"))))),
    name: described(FIELD_DOCS.name).pipe(Schema.check(Schema.isMinLength(1), Schema.isMaxLength(255))),
    projectID: Schema.optionalKey(described(FIELD_DOCS.projectID).pipe(Schema.check(Schema.isMinLength(1), rule(targetIdProblem("project"))))),
    scopes: Schema.Array(
      Schema.Literals(SCOPES).annotate({
        description: "GitlabDeployTokenScope is a scope that can be granted to a GitLab deploy token.",
        messages: { member: (v: unknown) => `"${String(v)}" is not a deploy-token scope; use one of ${scopeList}` },
      }),
    )
      .annotate({
        description: FIELD_DOCS.scopes,
        messages: { type: "must be a list, e.g. [read_registry]", empty: `must not be empty; list at least one of ${scopeList}` },
      })
      .pipe(Schema.check(Schema.isMinLength(1)), Schema.annotateKey({ messageMissingKey: `is required; list at least one of ${scopeList}` })),
    url: Schema.optionalKey(
      described(FIELD_DOCS.url).pipe(Schema.check(rule<string>((v) => (v === "" ? undefined : gitlabUrlProblem(v, options.allowHttp ?? false))))),
    ),
    username: Schema.optionalKey(
      described(FIELD_DOCS.username, { pattern: "may contain only letters, digits, '_', '-', '+' and '.' (GitLab rejects anything else)" }).pipe(
        Schema.check(Schema.isMaxLength(255), Schema.isPattern(USERNAME_OR_EMPTY)),
      ),
    ),
    // gldt's extensions
    expiresAfter: extension(
      duration(
        FIELD_DOCS.expiresAfter,
        { rule: "duration(self) >= duration('24h')", message: "expiresAfter must be at least 24h" },
        {
          min: { ms: MIN_EXPIRES_AFTER_MS, text: "24h" },
          maxMs: MAX_EXPIRES_AFTER_MS,
          max: "876000h (100 years)",
        },
      ),
    ),
    revokeGracePeriod: extension(
      duration(FIELD_DOCS.revokeGracePeriod, { rule: "duration(self) >= duration('0s')", message: "revokeGracePeriod must be a duration like 15m" }),
    ),
    renewBeforeExpiry: extension(
      duration(FIELD_DOCS.renewBeforeExpiry, { rule: "duration(self) >= duration('0s')", message: "renewBeforeExpiry must be a duration like 24h" }),
    ),
    caBundle: extension(
      Schema.String.annotate({ description: FIELD_DOCS.caBundle, format: "byte" }).pipe(
        Schema.check(
          rule<string>((v) =>
            v === "" ? "must not be empty" : pemOf(v) === undefined ? "is not a PEM certificate bundle (plain or base64-encoded)" : undefined,
          ),
        ),
      ),
    ),
    caProvider: extension(
      Schema.Struct({
        type: Schema.Literals(["Secret", "ConfigMap"])
          .annotate({ description: "Kind of the object holding the CA bundle.", messages: { member: () => "must be Secret or ConfigMap" } })
          .pipe(Schema.annotateKey({ messageMissingKey: "must be Secret or ConfigMap" })),
        name: described("Name of the Secret or ConfigMap.").pipe(Schema.check(Schema.isMinLength(1), Schema.isMaxLength(253), kubeName)),
        key: described("Key in it that holds the PEM CA bundle.").pipe(Schema.check(Schema.isMinLength(1), Schema.isMaxLength(253), secretKey)),
        namespace: Schema.optionalKey(
          described("Its namespace: the consumer's own (the default when unset); another namespace is refused.").pipe(
            Schema.check(Schema.isMinLength(1), Schema.isMaxLength(63), namespaceName),
          ),
        ),
      }).annotate({ description: FIELD_DOCS.caProvider, messages: { type: "must be an object {type, name, key}" } }),
    ),
  }).annotate({
    description: "GitlabDeployTokenSpec defines the desired state to generate a GitLab deploy token.",
    "x-kubernetes-validations": CEL_RULES,
    rules: CROSS_FIELD_RULES,
  })

/** The `spec` of a `GitlabDeployToken` (and of a ClusterGenerator's `gitlabDeployTokenSpec`). */
export const GitlabDeployTokenSpec = makeGitlabDeployTokenSpec()
export type GitlabDeployTokenSpec = typeof GitlabDeployTokenSpec.Type

/** The PEM text of a CA bundle written plain or base64-encoded, or undefined when it holds no certificate. */
export const pemOf = (text: string): string | undefined => {
  const pem = /-----BEGIN CERTIFICATE-----/.test(text) ? text : Buffer.from(text, "base64").toString("utf8")
  return /-----BEGIN CERTIFICATE-----/.test(pem) ? pem : undefined
}
