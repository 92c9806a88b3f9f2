/**
 * The generated CRDs on a real kube-apiserver, driven through kubectl as a user would: the seed's two
 * manifests apply as written, invalid variants are refused with messages that name the field, and
 * ESO fields gldt does not read survive (no pruning).
 */
import * as path from "node:path"
import { describe, expect, it } from "vitest"
import { FIXTURES, getJson, type Json, useCluster } from "./helpers.ts"

const kube = useCluster()

const validSpec = {
  projectID: "42",
  name: "eso-managed",
  scopes: ["read_repository", "read_registry"],
  auth: { token: { secretRef: { name: "gitlab-api-token", key: "token" } } },
}

const generator = (spec: Json, name = "candidate") => ({
  apiVersion: "generators.external-secrets.io/v1alpha1",
  kind: "GitlabDeployToken",
  metadata: { name },
  spec,
})

const apply = (manifest: unknown, namespace?: string) =>
  kube().kubectl(["apply", "-f", "-"], { input: JSON.stringify(manifest), reject: false, ...(namespace ? { namespace } : {}) })

describe.concurrent("the seed's manifests", () => {
  it("apply as written (GitlabDeployToken + ExternalSecret) and read back unchanged, with ESO's defaults", async () => {
    const ns = await kube().newNamespace("seed")
    const r = await kube().kubectl(["apply", "-f", path.join(FIXTURES, "seed.yaml")], { namespace: ns })
    expect(r.stdout).toContain("gitlabdeploytoken.generators.external-secrets.io/gitlab-deploy-token created")
    expect(r.stdout).toContain("externalsecret.external-secrets.io/gitlab-deploy-token created")

    const gdt = await getJson(kube(), ["gitlabdeploytoken", "gitlab-deploy-token"], ns)
    expect(gdt.spec).toEqual({
      url: "",
      projectID: "42",
      name: "eso-managed",
      scopes: ["read_repository", "read_registry"],
      expiresAt: "2027-01-01T00:00:00Z",
      username: "eso",
      auth: { token: { secretRef: { name: "gitlab-api-token", key: "token" } } },
    })
    const es = await getJson(kube(), ["es", "gitlab-deploy-token"], ns)
    expect(es.spec).toEqual({
      refreshInterval: "1h",
      target: { name: "gitlab-deploy-token", creationPolicy: "Owner", deletionPolicy: "Retain" },
      dataFrom: [
        { sourceRef: { generatorRef: { apiVersion: "generators.external-secrets.io/v1alpha1", kind: "GitlabDeployToken", name: "gitlab-deploy-token" } } },
      ],
    })
    // kubectl's categories and short name work as with ESO.
    const all = await kube().kubectl(["get", "external-secrets", "-o", "name"], { namespace: ns })
    expect(all.stdout).toContain("gitlabdeploytoken.generators.external-secrets.io/gitlab-deploy-token")
    expect(all.stdout).toContain("externalsecret.external-secrets.io/gitlab-deploy-token")
  })

  it("an ExternalSecret without refreshInterval or target gets ESO's defaults (1h0m0s, Owner/Retain)", async () => {
    const ns = await kube().newNamespace("defaults")
    const r = await apply(
      {
        apiVersion: "external-secrets.io/v1",
        kind: "ExternalSecret",
        metadata: { name: "minimal" },
        spec: { dataFrom: [{ sourceRef: { generatorRef: { kind: "ClusterGenerator", name: "gitlab" } } }] },
      },
      ns,
    )
    expect(r.code, r.stderr).toBe(0)
    const es = await getJson(kube(), ["es", "minimal"], ns)
    const spec = es.spec as Json
    expect(spec.refreshInterval).toBe("1h0m0s")
    expect(spec.target).toEqual({ creationPolicy: "Owner", deletionPolicy: "Retain" })
    expect(spec.dataFrom).toEqual([
      { sourceRef: { generatorRef: { apiVersion: "generators.external-secrets.io/v1alpha1", kind: "ClusterGenerator", name: "gitlab" } } },
    ])
  })
})

describe.concurrent("GitlabDeployToken validation (kubectl apply is refused, naming the field)", () => {
  const { projectID: _p, ...noTarget } = validSpec
  const cases: ReadonlyArray<{ readonly name: string; readonly spec: Json; readonly expect: ReadonlyArray<string> }> = [
    {
      name: "both projectID and groupID",
      spec: { ...validSpec, groupID: "7" },
      expect: ["spec: Invalid value", "exactly one of projectID or groupID must be set"],
    },
    { name: "neither projectID nor groupID", spec: noTarget, expect: ["spec: Invalid value", "exactly one of projectID or groupID must be set"] },
    { name: "an empty projectID", spec: { ...validSpec, projectID: "" }, expect: ["spec.projectID", "should be at least 1 chars long"] },
    { name: "an empty groupID", spec: { ...noTarget, groupID: "" }, expect: ["spec.groupID", "should be at least 1 chars long"] },
    { name: "an empty name", spec: { ...validSpec, name: "" }, expect: ["spec.name", "should be at least 1 chars long"] },
    { name: "no scopes", spec: { ...validSpec, scopes: undefined }, expect: ["spec.scopes: Required value"] },
    { name: "an empty scope list", spec: { ...validSpec, scopes: [] }, expect: ["spec.scopes", "should have at least 1 items"] },
    {
      name: "an unknown scope",
      spec: { ...validSpec, scopes: ["read_registry", "api"] },
      expect: ['spec.scopes[1]: Unsupported value: "api"', "read_registry"],
    },
    {
      name: "expiresAt and expiresAfter together",
      spec: { ...validSpec, expiresAt: "2099-01-01T00:00:00Z", expiresAfter: "720h" },
      expect: ["spec: Invalid value", "expiresAt and expiresAfter are mutually exclusive"],
    },
    { name: "expiresAfter under 24h", spec: { ...validSpec, expiresAfter: "23h59m" }, expect: ["spec.expiresAfter", "expiresAfter must be at least 24h"] },
    { name: "expiresAt not a date-time", spec: { ...validSpec, expiresAt: "next year" }, expect: ["spec.expiresAt", "date-time"] },
    { name: "no auth", spec: { ...validSpec, auth: undefined }, expect: ["spec.auth: Required value"] },
    { name: "a username GitLab refuses", spec: { ...validSpec, username: "has space" }, expect: ["spec.username", "should match"] },
    { name: "an unknown field", spec: { ...validSpec, projectId: "42" }, expect: ['unknown field "spec.projectId"'] },
  ]

  it.each(cases)("refuses $name", async ({ spec, expect: fragments }) => {
    const ns = await kube().newNamespace("invalid")
    const r = await apply(generator(spec), ns)
    expect(r.code).not.toBe(0)
    for (const f of fragments) expect(r.stderr).toContain(f)
    const left = await kube().kubectl(["get", "gitlabdeploytokens", "-o", "name"], { namespace: ns })
    expect(left.stdout.trim()).toBe("")
  })

  it("accepts a group target, expiresAfter of exactly 24h and gldt's optional extensions", async () => {
    const ns = await kube().newNamespace("extensions")
    const r = await apply(generator({ ...noTarget, groupID: "parent/group", expiresAfter: "24h", revokeGracePeriod: "15m", renewBeforeExpiry: "6h" }), ns)
    expect(r.code, r.stderr).toBe(0)
  })

  it("a past expiresAt is accepted by the CRD (CEL has no clock); the controller refuses it", async () => {
    const ns = await kube().newNamespace("past")
    const r = await apply(generator({ ...validSpec, expiresAt: "2001-01-01T00:00:00Z" }), ns)
    expect(r.code, r.stderr).toBe(0)
  })
})

describe.concurrent("ClusterGenerator", () => {
  const cluster = (name: string, spec: Json) => ({ apiVersion: "generators.external-secrets.io/v1alpha1", kind: "ClusterGenerator", metadata: { name }, spec })

  it("accepts a GitlabDeployToken generator (ESO's documented shape) and validates its spec with the same rules", async () => {
    const ok = await apply(cluster("gitlab-ok", { kind: "GitlabDeployToken", generator: { gitlabDeployTokenSpec: validSpec } }))
    expect(ok.code, ok.stderr).toBe(0)
    const both = await apply(cluster("gitlab-both", { kind: "GitlabDeployToken", generator: { gitlabDeployTokenSpec: { ...validSpec, groupID: "7" } } }))
    expect(both.code).not.toBe(0)
    expect(both.stderr).toContain("spec.generator.gitlabDeployTokenSpec: Invalid value")
    expect(both.stderr).toContain("exactly one of projectID or groupID must be set")
    const two = await apply(cluster("gitlab-two", { kind: "GitlabDeployToken", generator: { gitlabDeployTokenSpec: validSpec, passwordSpec: { length: 3 } } }))
    expect(two.code).not.toBe(0)
    expect(two.stderr).toContain("spec.generator")
    expect(two.stderr).toContain("spec.generator: Too many: 2: must have at most 1 item")
    const mismatch = await apply(cluster("gitlab-mismatch", { kind: "GitlabDeployToken", generator: { passwordSpec: { length: 3 } } }))
    expect(mismatch.code).not.toBe(0)
    expect(mismatch.stderr).toContain("kind GitlabDeployToken needs spec.generator.gitlabDeployTokenSpec")
  })

  it("keeps other generators' specs as written", async () => {
    const r = await apply(cluster("password", { kind: "Password", generator: { passwordSpec: { length: 42, digits: 5, symbols: 5, noUpper: false } } }))
    expect(r.code, r.stderr).toBe(0)
    const got = await getJson(kube(), ["clustergenerator", "password"])
    expect((got.spec as Json).generator).toEqual({ passwordSpec: { length: 42, digits: 5, symbols: 5, noUpper: false } })
  })
})

describe.concurrent("ExternalSecret", () => {
  const es = (name: string, spec: Json) => ({ apiVersion: "external-secrets.io/v1", kind: "ExternalSecret", metadata: { name }, spec })
  const dataFrom = [{ sourceRef: { generatorRef: { kind: "GitlabDeployToken", name: "gitlab-deploy-token" } } }]

  it("keeps ESO fields gldt does not read (secretStoreRef, data, extract, rewrite, templateFrom, manifest…)", async () => {
    const ns = await kube().newNamespace("eso-fields")
    const spec = {
      refreshInterval: "15m",
      refreshPolicy: "Periodic",
      secretStoreRef: { name: "vault", kind: "ClusterSecretStore" },
      target: {
        name: "app",
        creationPolicy: "Orphan",
        deletionPolicy: "Delete",
        immutable: false,
        template: {
          type: "kubernetes.io/dockerconfigjson",
          engineVersion: "v2",
          mergePolicy: "Merge",
          metadata: { labels: { team: "a" }, annotations: { note: "b" } },
          data: { ".dockerconfigjson": "{{ .token }}" },
          templateFrom: [{ configMap: { name: "tpl", items: [{ key: "k", templateAs: "Values" }] } }],
        },
        manifest: { apiVersion: "v1", kind: "ConfigMap" },
      },
      data: [{ secretKey: "password", remoteRef: { key: "db", property: "pw" } }],
      dataFrom: [{ extract: { key: "db" }, rewrite: [{ regexp: { source: "a", target: "b" } }] }, ...dataFrom],
    }
    const r = await apply(es("full", spec), ns)
    expect(r.code, r.stderr).toBe(0)
    const got = await getJson(kube(), ["es", "full"], ns)
    const gotSpec = got.spec as Json
    const expectedDataFrom = [
      spec.dataFrom[0],
      { sourceRef: { generatorRef: { ...dataFrom[0]!.sourceRef.generatorRef, apiVersion: "generators.external-secrets.io/v1alpha1" } } },
    ]
    expect(gotSpec).toEqual({ ...spec, dataFrom: expectedDataFrom })
  })

  it("refuses values outside ESO's enums and ESO's invalid policy combinations, naming the field", async () => {
    const ns = await kube().newNamespace("eso-invalid")
    const bad = await apply(es("bad-policy", { target: { creationPolicy: "Sometimes" }, dataFrom }), ns)
    expect(bad.stderr).toContain('spec.target.creationPolicy: Unsupported value: "Sometimes"')
    const kind = await apply(es("bad-kind", { dataFrom: [{ sourceRef: { generatorRef: { kind: "Nope", name: "x" } } }] }), ns)
    expect(kind.stderr).toContain('spec.dataFrom[0].sourceRef.generatorRef.kind: Unsupported value: "Nope"')
    const combo = await apply(es("bad-combo", { target: { creationPolicy: "Merge", deletionPolicy: "Delete" }, dataFrom }), ns)
    expect(combo.stderr).toContain("spec.target: Invalid value")
    expect(combo.stderr).toContain("deletionPolicy=Delete must not be used when the controller doesn't own the secret")
    const both = await apply(es("bad-both", { dataFrom: [{ extract: { key: "k" }, sourceRef: dataFrom[0]!.sourceRef }] }), ns)
    expect(both.stderr).toContain("extract, find, or generatorRef cannot be set at the same time")
    const policy = await apply(es("bad-refresh", { refreshPolicy: "Always", dataFrom }), ns)
    expect(policy.stderr).toContain('spec.refreshPolicy: Unsupported value: "Always"')
  })
})
