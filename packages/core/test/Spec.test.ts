import { assert, describe, it } from "@effect/vitest"
import { readManifests } from "../src/Manifest.ts"
import { DEFAULT_URL, formatProblem, specFingerprint, validateSpec } from "../src/Spec.ts"
import { seedExternalSecret, seedGenerator } from "./fixtures.ts"

const NOW = Date.parse("2026-11-29T00:00:00Z")
const base = {
  projectID: "42",
  name: "eso-managed",
  scopes: ["read_repository", "read_registry"],
  auth: { token: { secretRef: { name: "gitlab-api-token", key: "token" } } },
}

const problemsOf = (spec: unknown, opts = {}) => validateSpec(spec, { now: NOW, ...opts }).problems.map(formatProblem)

describe("spec validation", () => {
  it("accepts the seed manifest as written and defaults the URL", () => {
    const r = validateSpec(seedGenerator.spec, { now: NOW })
    assert.deepStrictEqual(r.problems, [])
    assert.strictEqual(r.spec?.url, DEFAULT_URL)
    assert.deepStrictEqual(r.spec?.target, { kind: "project", id: "42" })
    assert.strictEqual(r.spec?.username, "eso")
    assert.deepStrictEqual(r.spec?.expiry, { kind: "at", at: Date.parse("2027-01-01T00:00:00Z") })
  })

  it("each call's now and allowHttp apply, though the schema behind them is built once", () => {
    const spec = { ...base, expiresAt: "2027-01-01T00:00:00Z" }
    assert.deepStrictEqual(problemsOf(spec, { now: Date.parse("2026-12-31T00:00:00Z") }), [])
    assert.match(problemsOf(spec, { now: Date.parse("2027-02-01T00:00:00Z") })[0] ?? "", /^spec\.expiresAt: 2027-01-01T00:00:00Z is in the past/)
    assert.deepStrictEqual(problemsOf(spec, { now: Date.parse("2026-12-31T00:00:00Z") }), [])
    // Without now, no date is in the past.
    assert.deepStrictEqual(validateSpec({ ...base, expiresAt: "2020-01-01T00:00:00Z" }).problems, [])
    const http = { ...base, url: "http://gitlab.local" }
    assert.match(problemsOf(http)[0] ?? "", /^spec\.url: uses plain http/)
    assert.deepStrictEqual(problemsOf(http, { allowHttp: true }), [])
    assert.match(problemsOf(http)[0] ?? "", /^spec\.url: uses plain http/)
  })

  it("orders scopes canonically and drops duplicates", () => {
    const r = validateSpec({ ...base, scopes: ["read_registry", "read_repository", "read_registry"] })
    assert.deepStrictEqual(r.spec?.scopes, ["read_repository", "read_registry"])
  })

  const rejected: Array<[string, unknown, RegExp]> = [
    ["both targets", { ...base, groupID: "7" }, /^spec: set exactly one of projectID or groupID, not both/],
    ["neither target", { ...base, projectID: undefined }, /^spec: set exactly one of projectID or groupID \(neither/],
    ["empty projectID", { ...base, projectID: "" }, /^spec\.projectID: must not be empty/],
    ["pre-encoded path", { ...base, projectID: "group%2Fproject" }, /^spec\.projectID: is URL-encoded; write the plain path \(e\.g\. group\/project\)/],
    ["project path without namespace", { ...base, projectID: "project" }, /^spec\.projectID: .*write the namespace too/],
    ["numeric projectID not quoted", { ...base, projectID: 42 }, /^spec\.projectID: must be a string, got number \(quote it: "42"\)/],
    ["missing scopes", { ...base, scopes: undefined }, /^spec\.scopes: is required; list at least one of read_repository/],
    ["empty scopes", { ...base, scopes: [] }, /^spec\.scopes: must not be empty/],
    ["unknown scope", { ...base, scopes: ["read_registry", "api"] }, /^spec\.scopes\[1\]: "api" is not a deploy-token scope; use one of/],
    ["name over 255", { ...base, name: "n".repeat(256) }, /^spec\.name: is 256 characters long; shorten it to at most 255/],
    ["missing name", { ...base, name: undefined }, /^spec\.name: is required/],
    ["username GitLab rejects", { ...base, username: "eso bot!" }, /^spec\.username: may contain only letters, digits/],
    ["username over 255", { ...base, username: "u".repeat(256) }, /^spec\.username: is 256 characters long/],
    ["expiresAt in the past", { ...base, expiresAt: "2020-01-01T00:00:00Z" }, /^spec\.expiresAt: 2020-01-01T00:00:00Z is in the past; set a future date/],
    ["expiresAt not RFC 3339", { ...base, expiresAt: "next tuesday" }, /^spec\.expiresAt: "next tuesday" is not an RFC 3339 date-time/],
    [
      "expiresAt with expiresAfter",
      { ...base, expiresAt: "2027-01-01T00:00:00Z", expiresAfter: "720h" },
      /^spec: expiresAt and expiresAfter are mutually exclusive/,
    ],
    ["expiresAfter under a day", { ...base, expiresAfter: "1h" }, /^spec\.expiresAfter: 1h0m0s is too short; use at least 24h/],
    ["expiresAfter not a duration", { ...base, expiresAfter: "a month" }, /^spec\.expiresAfter: "a month" is not a duration/],
    ["plain http URL", { ...base, url: "http://gitlab.example.com" }, /^spec\.url: uses plain http; use https \(plain HTTP is allowed only with --allow-http/],
    ["URL with credentials", { ...base, url: "https://user:pw@gitlab.example.com" }, /^spec\.url: must not carry credentials/],
    ["URL with another scheme", { ...base, url: "ftp://gitlab.example.com" }, /^spec\.url: has scheme ftp; use https:\/\//],
    ["not a URL", { ...base, url: "gitlab.example.com" }, /^spec\.url: "gitlab\.example\.com" is not a URL/],
    ["missing auth", { ...base, auth: undefined }, /^spec\.auth\.token\.secretRef: is required/],
    [
      "bad secret name",
      { ...base, auth: { token: { secretRef: { name: "Bad_Name", key: "token" } } } },
      /^spec\.auth\.token\.secretRef\.name: must be a Kubernetes object name/,
    ],
    ["unknown field", { ...base, expires_at: "2027-01-01" }, /^spec\.expires_at: is not a field of GitlabDeployToken/],
    ["bad grace", { ...base, revokeGracePeriod: "soon" }, /^spec\.revokeGracePeriod: "soon" is not a duration/],
    // Issue 7 §4: each of these crashed or misbehaved before it was refused.
    [
      "renewBeforeExpiry above the lifetime (a mint loop)",
      { ...base, expiresAfter: "24h", renewBeforeExpiry: "48h" },
      /^spec\.renewBeforeExpiry: 48h0m0s is not well below the token lifetime \(expiresAfter 24h0m0s\); use at most half of it \(12h0m0s\)/,
    ],
    ["renewBeforeExpiry equal to the lifetime", { ...base, expiresAfter: "24h", renewBeforeExpiry: "24h" }, /^spec\.renewBeforeExpiry: .*not well below/],
    [
      "expiresAfter that overflows a date",
      { ...base, expiresAfter: "9000000000h" },
      /^spec\.expiresAfter: "9000000000h" is too long; use at most 876000h \(100 years\)/,
    ],
    [
      "expiresAt in GitLab's forever range",
      { ...base, expiresAt: "3000-01-01T00:00:00Z" },
      /^spec\.expiresAt: 3000-01-01T00:00:00Z is too far away; use a date before 2999-01-01/,
    ],
    ["groupID ..", { ...base, projectID: undefined, groupID: ".." }, /^spec\.groupID: "\.\." has a '\.' or '\.\.' segment/],
    ["projectID with a . segment", { ...base, projectID: "group/./project" }, /^spec\.projectID: "group\/\.\/project" has a '\.' or '\.\.' segment/],
    ["projectID climbing out", { ...base, projectID: "group/../../deploy_tokens" }, /^spec\.projectID: .*has a '\.' or '\.\.' segment/],
    ["caBundle that is not PEM", { ...base, caBundle: "bm90IGEgY2VydA==" }, /^spec\.caBundle: is not a PEM certificate bundle/],
  ]
  for (const [label, spec, pattern] of rejected) {
    it(`rejects ${label} with a message naming the field and the fix`, () => {
      const problems = problemsOf(spec)
      assert.isTrue(
        problems.some((p) => pattern.test(p)),
        `got: ${JSON.stringify(problems)}`,
      )
      assert.isUndefined(validateSpec(spec, { now: NOW }).spec)
    })
  }

  it("accepts renewBeforeExpiry of exactly half the lifetime, and 100 years of expiresAfter", () => {
    assert.deepStrictEqual(problemsOf({ ...base, expiresAfter: "24h", renewBeforeExpiry: "12h" }), [])
    assert.deepStrictEqual(problemsOf({ ...base, expiresAfter: "876000h" }), [])
  })

  it("reports every problem at once", () => {
    const problems = problemsOf({ ...base, groupID: "7", scopes: [], name: "" })
    assert.strictEqual(problems.length, 3)
  })

  it("allows http only when asked, and trims trailing slashes", () => {
    const r = validateSpec({ ...base, url: "http://127.0.0.1:8080/gitlab/" }, { allowHttp: true })
    assert.strictEqual(r.spec?.url, "http://127.0.0.1:8080/gitlab")
  })

  it("reads a key with no value (YAML null) as absent, as the Kubernetes API does", () => {
    const r = validateSpec({ ...base, projectID: null, groupID: "parent/group", username: null, expiresAt: null })
    assert.deepStrictEqual(r.problems, [])
    assert.deepStrictEqual(r.spec?.target, { kind: "group", id: "parent/group" })
    assert.deepStrictEqual(r.spec?.expiry, { kind: "none" })
  })

  it("accepts an expiresAt the YAML parser already read as a date", () => {
    const r = validateSpec({ ...base, expiresAt: new Date("2027-01-01T00:00:00Z") }, { now: NOW })
    assert.deepStrictEqual(r.spec?.expiry, { kind: "at", at: Date.parse("2027-01-01T00:00:00Z") })
  })

  it("words a missing secret key, a wrong type and a bad caProvider at the field", () => {
    assert.deepStrictEqual(problemsOf({ ...base, auth: { token: { secretRef: { name: "api" } } } }), ["spec.auth.token.secretRef.key: is required"])
    assert.deepStrictEqual(problemsOf({ ...base, scopes: "read_registry" }), ["spec.scopes: must be a list, e.g. [read_registry]"])
    assert.deepStrictEqual(problemsOf({ ...base, caProvider: { type: "Vault", name: "ca", key: "ca.crt" } }), [
      "spec.caProvider.type: must be Secret or ConfigMap",
    ])
  })

  it("treats an empty username as GitLab's default", () => {
    assert.isUndefined(validateSpec({ ...base, username: "" }).spec?.username)
  })

  it("accepts a group path and extensions", () => {
    const r = validateSpec({
      ...base,
      projectID: undefined,
      groupID: "parent/group",
      expiresAfter: "720h",
      revokeGracePeriod: "2m",
      caProvider: { type: "ConfigMap", name: "ca", key: "ca.crt" },
    })
    assert.deepStrictEqual(r.problems, [])
    assert.deepStrictEqual(r.spec?.target, { kind: "group", id: "parent/group" })
    assert.deepStrictEqual(r.spec?.expiry, { kind: "after", ms: 720 * 3_600_000 })
    assert.strictEqual(r.spec?.revokeGracePeriodMs, 120_000)
  })

  it("fingerprint changes with anything that shapes the token, not with auth", () => {
    const a = validateSpec(base).spec!
    const b = validateSpec({ ...base, auth: { token: { secretRef: { name: "other", key: "k" } } } }).spec!
    const c = validateSpec({ ...base, name: "other" }).spec!
    assert.strictEqual(specFingerprint(a), specFingerprint(b))
    assert.notStrictEqual(specFingerprint(a), specFingerprint(c))
  })
})

describe("manifest files", () => {
  it("reads the seed's GitlabDeployToken and ExternalSecret together", () => {
    const r = readManifests([seedGenerator, seedExternalSecret], { now: NOW })
    assert.deepStrictEqual(r.problems, [])
    assert.strictEqual(r.manifests?.generator.name, "gitlab-deploy-token")
    assert.strictEqual(r.manifests?.consumer?.refreshIntervalMs, 3_600_000)
    assert.strictEqual(r.manifests?.consumer?.targetName, "gitlab-deploy-token")
  })

  it("reads a ClusterGenerator of kind GitlabDeployToken and maps problem paths into it", () => {
    const cg = {
      apiVersion: "generators.external-secrets.io/v1alpha1",
      kind: "ClusterGenerator",
      metadata: { name: "gitlab" },
      spec: { kind: "GitlabDeployToken", generator: { gitlabDeployTokenSpec: { ...base, scopes: [] } } },
    }
    const r = readManifests([cg], { now: NOW })
    assert.deepInclude(
      r.problems.map(formatProblem),
      "document 1.spec.generator.gitlabDeployTokenSpec.scopes: must not be empty; list at least one of read_repository, read_registry, write_registry, read_package_registry, write_package_registry, read_virtual_registry, write_virtual_registry",
    )
    const ok = readManifests([{ ...cg, spec: { ...cg.spec, generator: { gitlabDeployTokenSpec: base } } }], { now: NOW })
    assert.strictEqual(ok.manifests?.generator.kind, "ClusterGenerator")
  })

  it("rejects a wrong kind, a missing generator and a dangling generatorRef", () => {
    const r = readManifests(
      [
        { apiVersion: "v1", kind: "Secret", metadata: { name: "x" } },
        {
          ...seedExternalSecret,
          spec: { ...seedExternalSecret.spec, dataFrom: [{ sourceRef: { generatorRef: { kind: "GitlabDeployToken", name: "other" } } }] },
        },
      ],
      { now: NOW },
    )
    const text = r.problems.map(formatProblem)
    assert.isTrue(
      text.some((p) => p.startsWith('document 1.kind: "Secret" is not supported')),
      JSON.stringify(text),
    )
    assert.isTrue(text.some((p) => p.startsWith("file: contains no GitlabDeployToken")))
  })

  it("reads refreshInterval 0s as never refresh, and rejects a bad one", () => {
    const zero = readManifests([seedGenerator, { ...seedExternalSecret, spec: { ...seedExternalSecret.spec, refreshInterval: "0s" } }], { now: NOW })
    assert.strictEqual(zero.manifests?.consumer?.refreshIntervalMs, 0)
    const bad = readManifests([seedGenerator, { ...seedExternalSecret, spec: { ...seedExternalSecret.spec, refreshInterval: "hourly" } }], { now: NOW })
    assert.match(bad.problems.map(formatProblem).join("\n"), /document 2\.spec\.refreshInterval: "hourly" is not a duration/)
  })
})
