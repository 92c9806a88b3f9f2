/**
 * The CustomResourceDefinitions gldt serves, built from core's schemas so they cannot drift:
 *
 * - `gitlabdeploytokens.generators.external-secrets.io` — spec = core's `GitlabDeployTokenSpec` schema;
 * - `clustergenerators.generators.external-secrets.io` — `spec.generator.gitlabDeployTokenSpec` = the same;
 * - `externalsecrets.external-secrets.io` — the fields gldt reads, typed as in ESO; the rest preserved;
 * - `gitlabdeploytokenstates.gldt.dev` — gldt's own state object, `spec.record` = core's `StateRecord`.
 *
 * `crdFiles()` renders them as the YAML committed under `apps/controller/crds/`
 * (`scripts/gen-crds.ts` writes them; a test fails when the committed files differ).
 */
import { GitlabDeployTokenSpec, type OpenApiSchema } from "@gldt/core/SpecSchema"
import { StateRecord } from "@gldt/core/State"
import { stringify } from "yaml"
import { openApiOf } from "./OpenApi.ts"

export const GENERATOR_GROUP = "generators.external-secrets.io"
export const GENERATOR_VERSION = "v1alpha1"
export const EXTERNAL_SECRET_GROUP = "external-secrets.io"
export const EXTERNAL_SECRET_VERSION = "v1"
export const STATE_GROUP = "gldt.dev"
export const STATE_VERSION = "v1alpha1"
export const STATE_KIND = "GitlabDeployTokenState"
export const STATE_PLURAL = "gitlabdeploytokenstates"

/** A CustomResourceDefinition as plain JSON. */
export interface Crd {
  readonly apiVersion: "apiextensions.k8s.io/v1"
  readonly kind: "CustomResourceDefinition"
  readonly metadata: { readonly name: string; readonly labels?: Record<string, string>; readonly annotations?: Record<string, string> }
  readonly spec: OpenApiSchema
}

const DNS_SUBDOMAIN = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
const GENERATED_BY = { "gldt.dev/generated-by": "packages/adapter-kubernetes/scripts/gen-crds.ts" }

/** The generator spec's OpenAPI, walked from core's one `GitlabDeployTokenSpec` schema (ESO's shape: no preserved unknown fields). */
export const specOpenApiSchema = (): OpenApiSchema => openApiOf(GitlabDeployTokenSpec, { preserveUnknownFields: false })

const str = (description: string, extra: OpenApiSchema = {}): OpenApiSchema => ({ description, type: "string", ...extra })
/** An object whose fields gldt does not read: kept as written (never pruned), not validated here. */
const opaque = (description: string): OpenApiSchema => ({ description, type: "object", "x-kubernetes-preserve-unknown-fields": true })
const stringMap = (description: string): OpenApiSchema => ({ description, type: "object", additionalProperties: { type: "string" } })

/** `apiVersion`, `kind`, `metadata` of a top-level object. */
const objectMeta = {
  apiVersion: str("APIVersion of this representation of the object (group/version)."),
  kind: str("Kind of the REST resource this object represents, in CamelCase."),
  metadata: { type: "object" },
} as const

/** ESO's generator kinds (ClusterGenerator `spec.kind`), with GitlabDeployToken. */
export const GENERATOR_KINDS = [
  "ACRAccessToken",
  "BeyondtrustWorkloadCredentialsDynamicSecret",
  "CloudsmithAccessToken",
  "CodeArtifactAuthorizationToken",
  "ECRAuthorizationToken",
  "Fake",
  "GCRAccessToken",
  "GithubAccessToken",
  "GitlabDeployToken",
  "QuayAccessToken",
  "Password",
  "SSHKey",
  "STSSessionToken",
  "UUID",
  "VaultDynamicSecret",
  "Webhook",
  "Grafana",
  "MFA",
] as const

/** ClusterGenerator `spec.generator` members of ESO's other generators: kept as written, not validated by gldt. */
const OTHER_GENERATOR_SPECS = [
  "acrAccessTokenSpec",
  "beyondtrustWorkloadCredentialsDynamicSecretSpec",
  "cloudsmithAccessTokenSpec",
  "codeArtifactAuthorizationTokenSpec",
  "ecrAuthorizationTokenSpec",
  "fakeSpec",
  "gcrAccessTokenSpec",
  "githubAccessTokenSpec",
  "quayAccessTokenSpec",
  "passwordSpec",
  "sshKeySpec",
  "stsSessionTokenSpec",
  "uuidSpec",
  "vaultDynamicSecretSpec",
  "webhookSpec",
  "grafanaSpec",
  "mfaSpec",
] as const

/** `generatorRef.kind` of an ExternalSecret: every generator kind plus ClusterGenerator. */
export const GENERATOR_REF_KINDS = [...GENERATOR_KINDS, "ClusterGenerator"] as const

const GENERATOR_CATEGORIES = ["external-secrets", "external-secrets-generators"]
const ESO_LABELS = { "external-secrets.io/component": "controller" }

/** `gitlabdeploytokens.generators.external-secrets.io`: ESO's CRD with core's (superset) spec schema. */
export const gitlabDeployTokenCrd = (): Crd => ({
  apiVersion: "apiextensions.k8s.io/v1",
  kind: "CustomResourceDefinition",
  metadata: { name: `gitlabdeploytokens.${GENERATOR_GROUP}`, labels: ESO_LABELS, annotations: GENERATED_BY },
  spec: {
    group: GENERATOR_GROUP,
    names: {
      categories: GENERATOR_CATEGORIES,
      kind: "GitlabDeployToken",
      listKind: "GitlabDeployTokenList",
      plural: "gitlabdeploytokens",
      singular: "gitlabdeploytoken",
    },
    scope: "Namespaced",
    versions: [
      {
        name: GENERATOR_VERSION,
        served: true,
        storage: true,
        subresources: { status: {} },
        schema: {
          openAPIV3Schema: {
            description: "GitlabDeployToken generates a GitLab deploy token.",
            type: "object",
            properties: {
              ...objectMeta,
              spec: specOpenApiSchema(),
              status: opaque("Observed state, written by the controller (token ids and times, never a token value)."),
            },
          },
        },
      },
    ],
  },
})

/** `clustergenerators.generators.external-secrets.io` (cluster-scoped), ESO's shape. */
export const clusterGeneratorCrd = (): Crd => ({
  apiVersion: "apiextensions.k8s.io/v1",
  kind: "CustomResourceDefinition",
  metadata: { name: `clustergenerators.${GENERATOR_GROUP}`, labels: ESO_LABELS, annotations: GENERATED_BY },
  spec: {
    group: GENERATOR_GROUP,
    names: {
      categories: GENERATOR_CATEGORIES,
      kind: "ClusterGenerator",
      listKind: "ClusterGeneratorList",
      plural: "clustergenerators",
      singular: "clustergenerator",
    },
    scope: "Cluster",
    versions: [
      {
        name: GENERATOR_VERSION,
        served: true,
        storage: true,
        subresources: { status: {} },
        schema: {
          openAPIV3Schema: {
            description: "ClusterGenerator represents a cluster-wide generator which can be referenced as part of `generatorRef` fields.",
            type: "object",
            properties: {
              ...objectMeta,
              spec: {
                description: "ClusterGeneratorSpec defines the desired state of a ClusterGenerator.",
                type: "object",
                required: ["generator", "kind"],
                properties: {
                  generator: {
                    description: "Generator the spec for this generator, must match the kind.",
                    type: "object",
                    maxProperties: 1,
                    minProperties: 1,
                    properties: {
                      ...Object.fromEntries(OTHER_GENERATOR_SPECS.map((k) => [k, opaque("Spec of another ESO generator; not served by gldt.")])),
                      gitlabDeployTokenSpec: specOpenApiSchema(),
                    },
                  },
                  kind: { description: "Kind the kind of this generator.", type: "string", enum: [...GENERATOR_KINDS] },
                },
                "x-kubernetes-validations": [
                  {
                    rule: "self.kind != 'GitlabDeployToken' || has(self.generator.gitlabDeployTokenSpec)",
                    message: "kind GitlabDeployToken needs spec.generator.gitlabDeployTokenSpec",
                  },
                ],
              },
              status: opaque("Observed state, written by the controller."),
            },
          },
        },
      },
    ],
  },
})

const generatorRef: OpenApiSchema = {
  description: "GeneratorRef points to a generator custom resource.",
  type: "object",
  required: ["kind", "name"],
  properties: {
    apiVersion: str("Specify the apiVersion of the generator resource", { default: `${GENERATOR_GROUP}/${GENERATOR_VERSION}` }),
    kind: str("Specify the Kind of the generator resource", { enum: [...GENERATOR_REF_KINDS] }),
    name: str("Specify the name of the generator resource", { maxLength: 253, minLength: 1, pattern: DNS_SUBDOMAIN }),
  },
}

const storeRef = (description: string): OpenApiSchema => ({
  description,
  type: "object",
  "x-kubernetes-preserve-unknown-fields": true,
  properties: {
    kind: str("Kind of the SecretStore resource (SecretStore or ClusterSecretStore).", { enum: ["SecretStore", "ClusterSecretStore"] }),
    name: str("Name of the SecretStore resource.", { maxLength: 253, minLength: 1, pattern: DNS_SUBDOMAIN }),
  },
})

const template: OpenApiSchema = {
  description: "Template defines a blueprint for the created Secret resource.",
  type: "object",
  "x-kubernetes-preserve-unknown-fields": true,
  properties: {
    type: str("Type of the Secret (e.g. kubernetes.io/dockerconfigjson)."),
    engineVersion: str("EngineVersion of the template engine.", { enum: ["v2"], default: "v2" }),
    mergePolicy: str("Replace: the Secret holds only the templated keys; Merge: templated keys over the generated ones.", {
      enum: ["Replace", "Merge"],
      default: "Replace",
    }),
    metadata: {
      description: "Labels and annotations added to the Secret.",
      type: "object",
      "x-kubernetes-preserve-unknown-fields": true,
      properties: {
        annotations: stringMap("Annotations added to the Secret."),
        labels: stringMap("Labels added to the Secret."),
        finalizers: { type: "array", items: { type: "string" } },
      },
    },
    data: stringMap("Secret keys and the templates that render their values."),
    templateFrom: { type: "array", items: opaque("Template source (ConfigMap, Secret or literal); not supported by gldt.") },
  },
}

const target: OpenApiSchema = {
  description: "ExternalSecretTarget defines the Kubernetes Secret to be created.",
  type: "object",
  default: { creationPolicy: "Owner", deletionPolicy: "Retain" },
  "x-kubernetes-preserve-unknown-fields": true,
  properties: {
    name: str("The name of the Secret resource to be managed. Defaults to the .metadata.name of the ExternalSecret resource.", {
      maxLength: 253,
      minLength: 1,
      pattern: DNS_SUBDOMAIN,
    }),
    creationPolicy: str("CreationPolicy defines rules on how to create the resulting Secret.", {
      enum: ["Owner", "Orphan", "Merge", "None", "CreateOrMerge"],
      default: "Owner",
    }),
    deletionPolicy: str("DeletionPolicy defines rules on how to delete the resulting Secret.", { enum: ["Delete", "Merge", "Retain"], default: "Retain" }),
    immutable: { description: "Immutable defines if the final secret will be immutable.", type: "boolean" },
    template,
  },
  "x-kubernetes-validations": [
    {
      rule: "!has(self.deletionPolicy) || self.deletionPolicy != 'Delete' || !has(self.creationPolicy) || (self.creationPolicy != 'Merge' && self.creationPolicy != 'None')",
      message: "deletionPolicy=Delete must not be used when the controller doesn't own the secret. Please set creationPolicy=Owner",
    },
    {
      rule: "!has(self.deletionPolicy) || self.deletionPolicy != 'Merge' || !has(self.creationPolicy) || self.creationPolicy != 'None'",
      message: "deletionPolicy=Merge must not be used with creationPolicy=None. There is no Secret to merge with",
    },
  ],
}

const dataFromItem: OpenApiSchema = {
  type: "object",
  "x-kubernetes-preserve-unknown-fields": true,
  properties: {
    extract: opaque("Extract a secret from a provider (not served by gldt)."),
    find: opaque("Find secrets in a provider (not served by gldt)."),
    rewrite: { type: "array", items: opaque("Rewrite keys of the fetched data.") },
    sourceRef: {
      description: "SourceRef points to a store or generator which contains secret values ready to use.",
      type: "object",
      maxProperties: 1,
      minProperties: 1,
      "x-kubernetes-preserve-unknown-fields": true,
      properties: { generatorRef, storeRef: storeRef("SecretStoreRef defines which SecretStore to fetch the ExternalSecret data.") },
    },
  },
  "x-kubernetes-validations": [
    {
      rule: "!has(self.sourceRef) || !has(self.sourceRef.generatorRef) || (!has(self.extract) && !has(self.find))",
      message: "extract, find, or generatorRef cannot be set at the same time",
    },
  ],
}

const condition: OpenApiSchema = {
  type: "object",
  required: ["status", "type"],
  properties: {
    lastTransitionTime: { type: "string", format: "date-time" },
    message: { type: "string" },
    reason: { type: "string" },
    status: { type: "string" },
    type: { type: "string", enum: ["Ready", "Deleted"] },
  },
}

/** `externalsecrets.external-secrets.io` v1: ESO-compatible for every field gldt reads; the rest kept as written. */
export const externalSecretCrd = (): Crd => ({
  apiVersion: "apiextensions.k8s.io/v1",
  kind: "CustomResourceDefinition",
  metadata: { name: `externalsecrets.${EXTERNAL_SECRET_GROUP}`, labels: ESO_LABELS, annotations: GENERATED_BY },
  spec: {
    group: EXTERNAL_SECRET_GROUP,
    names: {
      categories: ["external-secrets"],
      kind: "ExternalSecret",
      listKind: "ExternalSecretList",
      plural: "externalsecrets",
      shortNames: ["es"],
      singular: "externalsecret",
    },
    scope: "Namespaced",
    versions: [
      {
        name: EXTERNAL_SECRET_VERSION,
        served: true,
        storage: true,
        subresources: { status: {} },
        additionalPrinterColumns: [
          { jsonPath: ".spec.secretStoreRef.kind", name: "StoreType", type: "string" },
          { jsonPath: ".spec.secretStoreRef.name", name: "Store", type: "string" },
          { jsonPath: ".spec.refreshInterval", name: "Refresh Interval", type: "string" },
          { jsonPath: '.status.conditions[?(@.type=="Ready")].reason', name: "Status", type: "string" },
          { jsonPath: '.status.conditions[?(@.type=="Ready")].status', name: "Ready", type: "string" },
          { jsonPath: ".status.refreshTime", name: "Last Sync", type: "date" },
        ],
        selectableFields: [
          { jsonPath: ".spec.secretStoreRef.name" },
          { jsonPath: ".spec.secretStoreRef.kind" },
          { jsonPath: ".spec.target.name" },
          { jsonPath: ".spec.refreshInterval" },
        ],
        schema: {
          openAPIV3Schema: {
            description: "ExternalSecret is the schema for the external-secrets API.",
            type: "object",
            properties: {
              ...objectMeta,
              spec: {
                description: "ExternalSecretSpec defines the desired state of ExternalSecret.",
                type: "object",
                "x-kubernetes-preserve-unknown-fields": true,
                properties: {
                  refreshInterval: str('RefreshInterval is the amount of time before the values are read again (Go duration, e.g. "1h"); "0s" syncs once.', {
                    default: "1h0m0s",
                  }),
                  refreshPolicy: str("RefreshPolicy: CreatedOnce, Periodic (the default when unset) or OnChange.", {
                    enum: ["CreatedOnce", "Periodic", "OnChange"],
                  }),
                  secretStoreRef: storeRef("SecretStoreRef defines which SecretStore to fetch the ExternalSecret data."),
                  target,
                  data: { type: "array", items: opaque("Data from a SecretStore (not served by gldt).") },
                  dataFrom: { type: "array", items: dataFromItem },
                },
              },
              status: {
                type: "object",
                "x-kubernetes-preserve-unknown-fields": true,
                properties: {
                  binding: {
                    description: "Binding represents a servicebinding.io Provisioned Service reference to the secret.",
                    type: "object",
                    properties: { name: { type: "string", default: "" } },
                    "x-kubernetes-map-type": "atomic",
                  },
                  conditions: { type: "array", items: condition },
                  refreshTime: { description: "The last time the secret was refreshed.", type: "string", format: "date-time", nullable: true },
                  syncedResourceVersion: { description: "SyncedResourceVersion keeps track of the last synced version.", type: "string" },
                },
              },
            },
          },
        },
      },
    ],
  },
})

/**
 * `gitlabdeploytokenstates.gldt.dev`: one object per consumer key (written by `KubeState`). `spec.record`
 * is core's `StateRecord` (token ids and metadata, never a token value); `status` is a summary for
 * `kubectl get`, rewritten with every save. No status subresource: record and summary change in one
 * compare-and-set write.
 */
export const stateCrd = (): Crd => ({
  apiVersion: "apiextensions.k8s.io/v1",
  kind: "CustomResourceDefinition",
  metadata: { name: `${STATE_PLURAL}.${STATE_GROUP}`, annotations: GENERATED_BY },
  spec: {
    group: STATE_GROUP,
    names: {
      categories: ["gldt"],
      kind: STATE_KIND,
      listKind: `${STATE_KIND}List`,
      plural: STATE_PLURAL,
      shortNames: ["gldts"],
      singular: "gitlabdeploytokenstate",
    },
    scope: "Namespaced",
    versions: [
      {
        name: STATE_VERSION,
        served: true,
        storage: true,
        additionalPrinterColumns: [
          { jsonPath: ".spec.key", name: "Key", type: "string" },
          { jsonPath: ".status.currentTokenId", name: "Current", type: "integer", description: "GitLab id of the delivered token" },
          { jsonPath: ".status.retiring", name: "Retiring", type: "integer", description: "Replaced tokens waiting for revocation" },
          { jsonPath: ".status.suspects", name: "Suspects", type: "integer", description: "Possible orphans left for a person to decide" },
          { jsonPath: ".status.openIntent", name: "Open Intent", type: "boolean", priority: 1 },
          { jsonPath: ".metadata.creationTimestamp", name: "Age", type: "date" },
        ],
        schema: {
          openAPIV3Schema: {
            description:
              "GitlabDeployTokenState is gldt's record of every deploy token it made for one consumer (token ids and metadata, never a token value). Its finalizer holds it until each token is revoked.",
            type: "object",
            properties: {
              ...objectMeta,
              spec: {
                type: "object",
                required: ["key", "record"],
                properties: {
                  key: str("The consumer key (e.g. namespace/externalsecret).", {
                    minLength: 1,
                    "x-kubernetes-validations": [{ rule: "self == oldSelf", message: "spec.key is immutable" }],
                  }),
                  record: { ...openApiOf(StateRecord), description: "@gldt/core StateRecord." },
                },
              },
              status: {
                description: "Summary of spec.record for kubectl (derived; rewritten on every save).",
                type: "object",
                properties: {
                  generation: { type: "integer" },
                  currentTokenId: { type: "integer" },
                  pendingTokenId: { type: "integer" },
                  retiring: { type: "integer" },
                  suspects: { type: "integer" },
                  openIntent: { type: "boolean" },
                  lastError: { type: "string" },
                },
              },
            },
          },
        },
      },
    ],
  },
})

export const CONSUMER_KIND = "GitlabDeployTokenConsumer"
export const CONSUMER_PLURAL = "gitlabdeploytokenconsumers"

/**
 * `gitlabdeploytokenconsumers.gldt.dev`: gldt's own consumer kind, which ESO does not know and so
 * never touches. It names a generator and a target like an ExternalSecret with one generatorRef;
 * the controller serves it whether or not ESO runs in the cluster.
 */
export const consumerCrd = (): Crd => ({
  apiVersion: "apiextensions.k8s.io/v1",
  kind: "CustomResourceDefinition",
  metadata: { name: `${CONSUMER_PLURAL}.${STATE_GROUP}`, annotations: GENERATED_BY },
  spec: {
    group: STATE_GROUP,
    names: {
      categories: ["gldt"],
      kind: CONSUMER_KIND,
      listKind: `${CONSUMER_KIND}List`,
      plural: CONSUMER_PLURAL,
      shortNames: ["gldtc"],
      singular: "gitlabdeploytokenconsumer",
    },
    scope: "Namespaced",
    versions: [
      {
        name: STATE_VERSION,
        served: true,
        storage: true,
        subresources: { status: {} },
        additionalPrinterColumns: [
          { jsonPath: ".spec.generatorRef.name", name: "Generator", type: "string" },
          { jsonPath: ".spec.refreshInterval", name: "Refresh Interval", type: "string" },
          { jsonPath: '.status.conditions[?(@.type=="Ready")].reason', name: "Status", type: "string" },
          { jsonPath: '.status.conditions[?(@.type=="Ready")].status', name: "Ready", type: "string" },
          { jsonPath: ".status.refreshTime", name: "Last Sync", type: "date" },
        ],
        schema: {
          openAPIV3Schema: {
            description:
              "GitlabDeployTokenConsumer asks gldt for a deploy token from a GitlabDeployToken (or ClusterGenerator) written to a Secret. External Secrets Operator ignores it, so it works beside ESO.",
            type: "object",
            properties: {
              ...objectMeta,
              spec: {
                type: "object",
                required: ["generatorRef"],
                properties: {
                  generatorRef: {
                    description: "The generator to mint from.",
                    type: "object",
                    required: ["name"],
                    properties: {
                      kind: str("GitlabDeployToken (same namespace, the default) or ClusterGenerator.", {
                        enum: ["GitlabDeployToken", "ClusterGenerator"],
                        default: "GitlabDeployToken",
                      }),
                      name: str("Name of the generator.", { minLength: 1, maxLength: 253 }),
                    },
                  },
                  refreshInterval: str('How often a new token replaces the current one (Go duration, e.g. "1h"); "0s" mints once.', {
                    default: "1h0m0s",
                  }),
                  refreshPolicy: str("CreatedOnce, Periodic (the default when unset) or OnChange.", {
                    enum: ["CreatedOnce", "Periodic", "OnChange"],
                  }),
                  target,
                },
              },
              status: {
                type: "object",
                "x-kubernetes-preserve-unknown-fields": true,
                properties: {
                  binding: { type: "object", properties: { name: { type: "string" } } },
                  conditions: { type: "array", items: condition },
                  refreshTime: { type: "string", format: "date-time", nullable: true },
                  syncedResourceVersion: { type: "string" },
                },
              },
            },
          },
        },
      },
    ],
  },
})

/** Every CRD, with the file name it is committed under in `apps/controller/crds/`. */
export const allCrds = (): ReadonlyArray<{ readonly file: string; readonly crd: Crd }> => [
  { file: `${GENERATOR_GROUP}_gitlabdeploytokens.yaml`, crd: gitlabDeployTokenCrd() },
  { file: `${GENERATOR_GROUP}_clustergenerators.yaml`, crd: clusterGeneratorCrd() },
  { file: `${EXTERNAL_SECRET_GROUP}_externalsecrets.yaml`, crd: externalSecretCrd() },
  { file: `${STATE_GROUP}_${STATE_PLURAL}.yaml`, crd: stateCrd() },
  { file: `${STATE_GROUP}_${CONSUMER_PLURAL}.yaml`, crd: consumerCrd() },
]

const HEADER = [
  "# Generated by packages/adapter-kubernetes/scripts/gen-crds.ts from @gldt/core's schemas. Do not edit:",
  "# change core (or src/Crds.ts) and run `pnpm --filter @gldt/adapter-kubernetes gen-crds`.",
].join("\n")

/** The YAML of one CRD, as committed. */
export const crdYaml = (crd: Crd): string => `${HEADER}\n${stringify(crd, { lineWidth: 0, aliasDuplicateObjects: false })}`

/** The committed files: name → content. */
export const crdFiles = (): ReadonlyArray<{ readonly file: string; readonly content: string }> =>
  allCrds().map(({ file, crd }) => ({ file, content: crdYaml(crd) }))
