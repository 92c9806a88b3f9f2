/** The README's field tables are generated from the one spec Schema and cannot drift from it. */
import * as fs from "node:fs"
import { assert, describe, it } from "@effect/vitest"
import { Schema } from "effect"
import { fieldRows, generatedBlocks, renderFieldTable, rewriteBlocks } from "../scripts/fieldTables.ts"
import { FIELD_DOCS } from "../src/SpecSchema.ts"

const README = new URL("../README.md", import.meta.url)
const readme = () => fs.readFileSync(README, "utf8")

describe("README field tables", () => {
  it("hold exactly what the schema generates today (run `pnpm --filter @gldt/core render-docs`)", () => {
    const text = readme()
    assert.strictEqual(rewriteBlocks(text), text)
    for (const name of Object.keys(generatedBlocks())) assert.include(text, `<!-- ${name}:start -->\n| Field |`)
  })

  it("list every field of the spec, each with a description; the top-level ones are FIELD_DOCS, which the CRD carries too", () => {
    const rows = fieldRows()
    const topLevel = rows.filter((r) => !r.path.includes("."))
    assert.sameMembers(
      topLevel.map((r) => r.path),
      Object.keys(FIELD_DOCS),
    )
    for (const r of topLevel) assert.strictEqual(r.description, FIELD_DOCS[r.path as keyof typeof FIELD_DOCS], r.path)
    assert.includeMembers(
      rows.map((r) => r.path),
      ["auth.token.secretRef.name", "auth.token.secretRef.key", "caProvider.type", "caProvider.namespace"],
    )
    for (const r of rows) assert.isAbove(r.description.length, 0, r.path)
    const required = rows.filter((r) => r.required && !r.path.includes(".")).map((r) => r.path)
    assert.sameMembers(required, ["auth", "name", "scopes"])
  })

  it("mark gldt's additions to ESO's spec from the schema, all optional", () => {
    const extensions = fieldRows().filter((r) => r.extension)
    assert.deepStrictEqual(
      extensions.map((r) => r.path),
      ["expiresAfter", "revokeGracePeriod", "renewBeforeExpiry", "caBundle", "caProvider"],
    )
    for (const r of extensions) assert.isFalse(r.required, r.path)
    const table = generatedBlocks()["extension-fields"]!
    for (const r of extensions) assert.include(table, `| \`${r.path}\` | ${r.description} |`)
    assert.notInclude(table, "`name`")
  })

  it("word the schema's constraints and CEL rules, so changing one changes the table (the drift test can fail)", () => {
    const rows = fieldRows()
    const row = (path: string) => rows.find((r) => r.path === path)!
    assert.deepStrictEqual(row("name").rules, ["1 to 255 characters"])
    assert.deepStrictEqual(row("username").rules, ["at most 255 characters", "matches `^[a-zA-Z0-9.+_-]*$`"])
    assert.include(row("expiresAfter").rules, "CEL: expiresAfter must be at least 24h")
    assert.strictEqual(row("scopes").type.startsWith("list of one of `read_repository`, `read_registry`"), true)
    assert.strictEqual(row("expiresAt").type, "string (date-time)")

    const longer = Schema.Struct({ name: Schema.String.annotate({ description: FIELD_DOCS.name }).pipe(Schema.check(Schema.isMaxLength(300))) })
    assert.deepStrictEqual(fieldRows(longer)[0]!.rules, ["at most 300 characters"])
    const text = readme()
    const changed = rows.map((r) => (r.path === "name" ? { ...r, description: `${r.description} Changed.` } : r))
    assert.notStrictEqual(rewriteBlocks(text, { fields: renderFieldTable(changed) }), text)
  })

  it("escape pipes in cells, so a regex alternation does not split the table", () => {
    const table = renderFieldTable()
    const durationRow = table.split("\n").find((l) => l.startsWith("| `expiresAfter`"))!
    assert.include(durationRow, "ns\\|us")
    assert.strictEqual(durationRow.split(/(?<!\\)\|/).length, 7)
  })

  it("refuse a README without the marker lines, naming them", () => {
    assert.throws(() => rewriteBlocks("# no markers\n"), /<!-- fields:start --> … <!-- fields:end -->/)
  })
})
