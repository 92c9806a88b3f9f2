/** The committed CRDs are exactly what core's schemas generate today (no drift), and use core's schema. */
import * as fs from "node:fs"
import * as path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { formatProblem, SCOPES, validateSpec } from "@gldt/core/Spec"
import { FIELD_DOCS, GitlabDeployTokenSpec, TARGET_RULE } from "@gldt/core/SpecSchema"
import { StateRecord } from "@gldt/core/State"
import { parse } from "yaml"
import { allCrds, crdFiles } from "../src/Crds.ts"
import { openApiOf } from "../src/OpenApi.ts"
import { CRD_DIR, crdNames } from "./helpers.ts"

// biome-ignore lint/suspicious/noExplicitAny: walking generated YAML
type Obj = Record<string, any>

const schemaOf = (crd: Obj): Obj => crd.spec.versions[0].schema.openAPIV3Schema

describe("generated CRDs", () => {
  it("apps/controller/crds/ holds exactly the regenerated files (run `pnpm --filter @gldt/adapter-kubernetes gen-crds`)", () => {
    const expected = crdFiles()
    assert.deepStrictEqual(crdNames(), expected.map((f) => f.file).sort())
    for (const { file, content } of expected) {
      assert.strictEqual(fs.readFileSync(path.join(CRD_DIR, file), "utf8"), content, `${file} differs from the generator's output`)
    }
  })

  it("GitlabDeployToken and ClusterGenerator carry core's spec schema, with ESO's CEL rule and message", () => {
    const files = Object.fromEntries(crdNames().map((f) => [f, parse(fs.readFileSync(path.join(CRD_DIR, f), "utf8")) as Obj]))
    const gdt = files["generators.external-secrets.io_gitlabdeploytokens.yaml"]!
    const cg = files["generators.external-secrets.io_clustergenerators.yaml"]!
    const core = JSON.parse(JSON.stringify(openApiOf(GitlabDeployTokenSpec, { preserveUnknownFields: false })))
    assert.deepStrictEqual(schemaOf(gdt).properties.spec, core)
    assert.deepStrictEqual(schemaOf(cg).properties.spec.properties.generator.properties.gitlabDeployTokenSpec, core)
    assert.deepInclude(schemaOf(gdt).properties.spec["x-kubernetes-validations"], TARGET_RULE)
    assert.deepStrictEqual(schemaOf(gdt).properties.spec["x-kubernetes-validations"][0], {
      rule: "has(self.projectID) != has(self.groupID)",
      message: "exactly one of projectID or groupID must be set",
    })
    assert.strictEqual(gdt.metadata.labels["external-secrets.io/component"], "controller")
    assert.deepStrictEqual(gdt.spec.names.categories, ["external-secrets", "external-secrets-generators"])
    assert.deepStrictEqual(gdt.spec.versions[0].subresources, { status: {} })
    assert.strictEqual(cg.spec.scope, "Cluster")
    assert.include(schemaOf(cg).properties.spec.properties.kind.enum, "GitlabDeployToken")
    assert.strictEqual(schemaOf(cg).properties.spec.properties.generator.maxProperties, 1)
    assert.strictEqual(schemaOf(cg).properties.spec.properties.generator.minProperties, 1)
  })

  it("the spec's OpenAPI, walked from core's one Schema, keeps ESO's constraints and gldt's CEL rules", () => {
    const spec = openApiOf(GitlabDeployTokenSpec, { preserveUnknownFields: false }) as Obj
    assert.deepStrictEqual(spec.required, ["auth", "name", "scopes"])
    assert.notProperty(spec, "x-kubernetes-preserve-unknown-fields")
    assert.deepInclude(spec.properties.name, { type: "string", minLength: 1, maxLength: 255 })
    assert.deepInclude(spec.properties.projectID, { type: "string", minLength: 1 })
    assert.deepInclude(spec.properties.scopes, { type: "array", minItems: 1 })
    assert.deepStrictEqual(spec.properties.scopes.items.enum, [...SCOPES])
    assert.deepInclude(spec.properties.username, { maxLength: 255, pattern: "^[a-zA-Z0-9.+_-]*$" })
    assert.deepInclude(spec.properties.expiresAt, { type: "string", format: "date-time" })
    assert.deepInclude(spec.properties.caBundle, { format: "byte" })
    assert.deepStrictEqual(spec.properties.expiresAfter["x-kubernetes-validations"], [
      { rule: "duration(self) >= duration('24h')", message: "expiresAfter must be at least 24h" },
    ])
    assert.deepInclude(spec.properties.auth.properties.token.properties.secretRef.properties.name, { minLength: 1, maxLength: 253 })
    assert.notProperty(spec.properties.auth.properties.token.properties.secretRef, "required")
    assert.deepStrictEqual(spec.properties.caProvider.required, ["type", "name", "key"])
  })

  it("every field of the committed GitlabDeployToken CRD carries its description from core's FIELD_DOCS (as the README's tables do)", () => {
    const gdt = parse(fs.readFileSync(path.join(CRD_DIR, "generators.external-secrets.io_gitlabdeploytokens.yaml"), "utf8")) as Obj
    const properties = schemaOf(gdt).properties.spec.properties as Obj
    assert.sameMembers(Object.keys(properties), Object.keys(FIELD_DOCS))
    for (const [field, doc] of Object.entries(FIELD_DOCS)) assert.strictEqual(properties[field].description, doc, field)
  })

  it("validateSpec enforces every length limit of the CRD with the same bound (one schema for both)", () => {
    const spec = openApiOf(GitlabDeployTokenSpec, { preserveUnknownFields: false }) as Obj
    const base = { projectID: "42", name: "n", scopes: ["read_registry"], auth: { token: { secretRef: { name: "api", key: "token" } } } }
    const limited = Object.entries(spec.properties as Obj).filter(([, s]) => typeof s.maxLength === "number")
    assert.includeMembers(
      limited.map(([k]) => k),
      ["name", "username"],
    )
    for (const [field, s] of limited) {
      const at = (n: number) =>
        validateSpec({ ...base, [field]: "a".repeat(n) })
          .problems.map(formatProblem)
          .filter((p) => p.startsWith(`spec.${field}:`))
      assert.deepStrictEqual(at(s.maxLength), [], `${field} at its limit`)
      assert.match(at(s.maxLength + 1).join("\n"), new RegExp(`is ${s.maxLength + 1} characters long; shorten it to at most ${s.maxLength}`), field)
    }
  })

  it("the state CRD's record schema is derived from core's StateRecord", () => {
    const state = allCrds().find((c) => c.crd.metadata.name === "gitlabdeploytokenstates.gldt.dev")!.crd as Obj
    const record = schemaOf(state).properties.spec.properties.record
    const { description: _d, ...fromCore } = record
    assert.deepStrictEqual(fromCore, openApiOf(StateRecord))
    // Spot checks of the mapping.
    assert.deepStrictEqual(record.required, ["key", "generation", "retiring", "suspects", "watermarks"])
    assert.strictEqual(record.properties.current.properties.expiresAt.nullable, true)
    assert.deepStrictEqual(record.properties.current.properties.location.properties.target.properties.kind.enum, ["project", "group"])
    assert.deepStrictEqual(record.properties.watermarks.additionalProperties, { type: "number" })
    assert.strictEqual(record["x-kubernetes-preserve-unknown-fields"], true)
  })
})
