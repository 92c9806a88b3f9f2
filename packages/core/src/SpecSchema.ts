/**
 * The `GitlabDeployToken` spec as one Effect `Schema`: field descriptions, constraints and the CEL
 * rules of the CRD live here, once. `@gldt/adapter-kubernetes` walks this schema to build the CRD's
 * OpenAPI (`openApiOf(GitlabDeployTokenSpec, { preserveUnknownFields: false })`), and the field
 * descriptions are the `FIELD_DOCS` the validator and the READMEs use. Upstream ESO's fields keep
 * ESO's exact constraints and CEL rule and message; gldt's extensions are optional fields with CEL
 * rules of their own. A filter carries its OpenAPI form through Effect's own representation
 * (`isMinLength` → `minLength`/`minItems`, `isMaxLength` → `maxLength`, `isPattern` → `pattern`).
 */
import { Schema } from "effect"
import { FIELD_DOCS, SCOPES } from "./Spec.ts"

export type OpenApiSchema = { readonly [k: string]: unknown }

/** A CEL rule of the CRD (`x-kubernetes-validations`). */
export interface CelRule {
  readonly rule: string
  readonly message: string
}

/** ESO's CEL rule for the target, with ESO's message. */
export const TARGET_RULE: CelRule = { rule: "has(self.projectID) != has(self.groupID)", message: "exactly one of projectID or groupID must be set" }
/** gldt's rules for its extensions. */
export const EXTENSION_RULES: ReadonlyArray<CelRule> = [
  { rule: "!(has(self.expiresAt) && has(self.expiresAfter))", message: "expiresAt and expiresAfter are mutually exclusive" },
]

/** A Go duration ("15m", "1h30m"); checked before the CEL rules so a typo gets a clear message. */
const GO_DURATION = /^(0|([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+)$/
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/
const SECRET_KEY = /^[-._a-zA-Z0-9]+$/
const USERNAME = /^[a-zA-Z0-9.+_-]*$/

const text = (description: string | undefined) => (description === undefined ? Schema.String : Schema.String.annotate({ description }))

const duration = (description: string, rule: CelRule) =>
  Schema.String.annotate({ description, "x-kubernetes-validations": [rule] }).pipe(Schema.check(Schema.isPattern(GO_DURATION)))

/** ESO's `SecretKeySelector` (every field optional, as upstream). */
const SecretKeySelector = (description: string) =>
  Schema.Struct({
    key: Schema.optionalKey(
      text("A key in the referenced Secret.\nSome instances of this field may be defaulted, in others it may be required.").pipe(
        Schema.check(Schema.isMaxLength(253), Schema.isMinLength(1), Schema.isPattern(SECRET_KEY)),
      ),
    ),
    name: Schema.optionalKey(
      text("The name of the Secret resource being referred to.").pipe(
        Schema.check(Schema.isMaxLength(253), Schema.isMinLength(1), Schema.isPattern(DNS_SUBDOMAIN)),
      ),
    ),
    namespace: Schema.optionalKey(
      text(
        "The namespace of the Secret resource being referred to.\nIgnored if referent is not cluster-scoped, otherwise defaults to the namespace of the referent.",
      ).pipe(Schema.check(Schema.isMaxLength(63), Schema.isMinLength(1), Schema.isPattern(DNS_LABEL))),
    ),
  }).annotate({ description })

/** The `spec` of a `GitlabDeployToken` (and of a ClusterGenerator's `gitlabDeployTokenSpec`). */
export const GitlabDeployTokenSpec = Schema.Struct({
  auth: Schema.Struct({
    token: Schema.Struct({
      secretRef: SecretKeySelector(
        "SecretKeySelector is a reference to a specific 'key' within a Secret resource.\nIn some instances, `key` is a required field.",
      ),
    }).annotate({
      description:
        "Token references a secret containing a GitLab access token (personal, group, or\nproject) with the api scope and at least the Maintainer role on the target.",
    }),
  }).annotate({ description: "Auth configures how ESO authenticates with the GitLab API." }),
  expiresAt: Schema.optionalKey(Schema.String.annotate({ description: FIELD_DOCS.expiresAt, format: "date-time" })),
  groupID: Schema.optionalKey(text(FIELD_DOCS.groupID).pipe(Schema.check(Schema.isMinLength(1)))),
  name: text(FIELD_DOCS.name).pipe(Schema.check(Schema.isMinLength(1), Schema.isMaxLength(255))),
  projectID: Schema.optionalKey(text(FIELD_DOCS.projectID).pipe(Schema.check(Schema.isMinLength(1)))),
  scopes: Schema.Array(
    Schema.Literals(SCOPES).annotate({ description: "GitlabDeployTokenScope is a scope that can be granted to a GitLab deploy token." }),
  )
    .annotate({ description: FIELD_DOCS.scopes })
    .pipe(Schema.check(Schema.isMinLength(1))),
  url: Schema.optionalKey(text(FIELD_DOCS.url)),
  username: Schema.optionalKey(text(FIELD_DOCS.username).pipe(Schema.check(Schema.isMaxLength(255), Schema.isPattern(USERNAME)))),
  // gldt's extensions
  expiresAfter: Schema.optionalKey(duration(FIELD_DOCS.expiresAfter, { rule: "duration(self) >= duration('24h')", message: "expiresAfter must be at least 24h" })),
  revokeGracePeriod: Schema.optionalKey(
    duration(FIELD_DOCS.revokeGracePeriod, { rule: "duration(self) >= duration('0s')", message: "revokeGracePeriod must be a duration like 15m" }),
  ),
  renewBeforeExpiry: Schema.optionalKey(
    duration(FIELD_DOCS.renewBeforeExpiry, { rule: "duration(self) >= duration('0s')", message: "renewBeforeExpiry must be a duration like 24h" }),
  ),
  caBundle: Schema.optionalKey(Schema.String.annotate({ description: FIELD_DOCS.caBundle, format: "byte" })),
  caProvider: Schema.optionalKey(
    Schema.Struct({
      type: Schema.Literals(["Secret", "ConfigMap"]),
      name: Schema.String.pipe(Schema.check(Schema.isMinLength(1), Schema.isMaxLength(253))),
      key: Schema.String.pipe(Schema.check(Schema.isMinLength(1), Schema.isMaxLength(253))),
      namespace: Schema.optionalKey(Schema.String.pipe(Schema.check(Schema.isMinLength(1), Schema.isMaxLength(63)))),
    }).annotate({ description: FIELD_DOCS.caProvider }),
  ),
}).annotate({
  description: "GitlabDeployTokenSpec defines the desired state to generate a GitLab deploy token.",
  "x-kubernetes-validations": [TARGET_RULE, ...EXTENSION_RULES],
})

export type GitlabDeployTokenSpec = typeof GitlabDeployTokenSpec.Type
