/**
 * The OpenAPI v3 schema of the `GitlabDeployToken` spec, built from the same constants and field
 * docs the validator uses, so the CRD and `validateSpec` cannot drift apart. Upstream ESO's fields
 * keep ESO's exact schema (same constraints and CEL rule and message); gldt's extensions are added as
 * optional fields with CEL rules of their own.
 */
import { FIELD_DOCS, SCOPES } from "./Spec.ts"

export type OpenApiSchema = { readonly [k: string]: unknown }

/** A Go duration ("15m", "1h30m"); checked before the CEL rules so a typo gets a clear message. */
const GO_DURATION_PATTERN = "^(0|([0-9]+(\\.[0-9]+)?(ns|us|µs|ms|s|m|h))+)$"

const secretKeySelector = (description: string): OpenApiSchema => ({
  description,
  type: "object",
  properties: {
    key: {
      description: "A key in the referenced Secret.\nSome instances of this field may be defaulted, in others it may be required.",
      type: "string",
      maxLength: 253,
      minLength: 1,
      pattern: "^[-._a-zA-Z0-9]+$",
    },
    name: {
      description: "The name of the Secret resource being referred to.",
      type: "string",
      maxLength: 253,
      minLength: 1,
      pattern: "^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$",
    },
    namespace: {
      description:
        "The namespace of the Secret resource being referred to.\nIgnored if referent is not cluster-scoped, otherwise defaults to the namespace of the referent.",
      type: "string",
      maxLength: 63,
      minLength: 1,
      pattern: "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
    },
  },
})

/** ESO's CEL rule for the target, with ESO's message. */
export const TARGET_RULE = { rule: "has(self.projectID) != has(self.groupID)", message: "exactly one of projectID or groupID must be set" }
/** gldt's rules for its extensions. */
export const EXTENSION_RULES = [
  { rule: "!(has(self.expiresAt) && has(self.expiresAfter))", message: "expiresAt and expiresAfter are mutually exclusive" },
] as const

/** The spec schema (`openAPIV3Schema.properties.spec`). */
export const specOpenApiSchema = (): OpenApiSchema => ({
  description: "GitlabDeployTokenSpec defines the desired state to generate a GitLab deploy token.",
  type: "object",
  required: ["auth", "name", "scopes"],
  properties: {
    auth: {
      description: "Auth configures how ESO authenticates with the GitLab API.",
      type: "object",
      required: ["token"],
      properties: {
        token: {
          description:
            "Token references a secret containing a GitLab access token (personal, group, or\nproject) with the api scope and at least the Maintainer role on the target.",
          type: "object",
          required: ["secretRef"],
          properties: {
            secretRef: secretKeySelector(
              "SecretKeySelector is a reference to a specific 'key' within a Secret resource.\nIn some instances, `key` is a required field.",
            ),
          },
        },
      },
    },
    expiresAt: { description: FIELD_DOCS.expiresAt, type: "string", format: "date-time" },
    groupID: { description: FIELD_DOCS.groupID, type: "string", minLength: 1 },
    name: { description: FIELD_DOCS.name, type: "string", minLength: 1, maxLength: 255 },
    projectID: { description: FIELD_DOCS.projectID, type: "string", minLength: 1 },
    scopes: {
      description: FIELD_DOCS.scopes,
      type: "array",
      minItems: 1,
      items: { description: "GitlabDeployTokenScope is a scope that can be granted to a GitLab deploy token.", type: "string", enum: [...SCOPES] },
    },
    url: { description: FIELD_DOCS.url, type: "string" },
    username: { description: FIELD_DOCS.username, type: "string", maxLength: 255, pattern: "^[a-zA-Z0-9.+_-]*$" },
    // gldt extensions
    expiresAfter: {
      description: FIELD_DOCS.expiresAfter,
      type: "string",
      pattern: GO_DURATION_PATTERN,
      "x-kubernetes-validations": [{ rule: "duration(self) >= duration('24h')", message: "expiresAfter must be at least 24h" }],
    },
    revokeGracePeriod: {
      description: FIELD_DOCS.revokeGracePeriod,
      type: "string",
      pattern: GO_DURATION_PATTERN,
      "x-kubernetes-validations": [{ rule: "duration(self) >= duration('0s')", message: "revokeGracePeriod must be a duration like 15m" }],
    },
    renewBeforeExpiry: {
      description: FIELD_DOCS.renewBeforeExpiry,
      type: "string",
      pattern: GO_DURATION_PATTERN,
      "x-kubernetes-validations": [{ rule: "duration(self) >= duration('0s')", message: "renewBeforeExpiry must be a duration like 24h" }],
    },
    caBundle: { description: FIELD_DOCS.caBundle, type: "string", format: "byte" },
    caProvider: {
      description: FIELD_DOCS.caProvider,
      type: "object",
      required: ["type", "name", "key"],
      properties: {
        type: { type: "string", enum: ["Secret", "ConfigMap"] },
        name: { type: "string", minLength: 1, maxLength: 253 },
        key: { type: "string", minLength: 1, maxLength: 253 },
        namespace: { type: "string", minLength: 1, maxLength: 63 },
      },
    },
  },
  "x-kubernetes-validations": [TARGET_RULE, ...EXTENSION_RULES],
})
