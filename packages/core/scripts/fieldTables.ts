/**
 * The README's field tables, walked from the `GitlabDeployTokenSpec` Schema: the same descriptions
 * (`FIELD_DOCS` and the nested fields' own) and constraints the CRD is walked from, so the README,
 * the CRD and the validator cannot tell different stories. `render-docs.ts` writes them between
 * marker comments; `test/docs.test.ts` fails when the committed README drifts.
 */
import { SchemaAST } from "effect"
import { GitlabDeployTokenSpec } from "../src/SpecSchema.ts"

export interface FieldRow {
  /** Dotted path below `spec`, e.g. `auth.token.secretRef.name`. */
  readonly path: string
  readonly type: string
  readonly required: boolean
  readonly description: string
  /** Constraints and CEL rules, worded for a reader. */
  readonly rules: ReadonlyArray<string>
  /** A field gldt adds to upstream ESO's spec (key annotation `extension: true`). */
  readonly extension: boolean
}

type Annotations = { readonly [k: string]: unknown }
const annotationsOf = (ast: SchemaAST.AST): Annotations => (ast.annotations ?? {}) as Annotations
const keyAnnotationsOf = (ast: SchemaAST.AST): Annotations => (ast.context?.annotations ?? {}) as Annotations

const isUndefined = (ast: SchemaAST.AST) => ast._tag === "Undefined" || ast._tag === "Void"

/** The node without `| undefined` and suspensions. */
const unwrap = (ast: SchemaAST.AST): SchemaAST.AST => {
  if (ast._tag === "Suspend") return unwrap(ast.thunk())
  if (ast._tag === "Union") {
    const rest = ast.types.filter((t) => !isUndefined(t))
    if (rest.length === 1 && rest.length !== ast.types.length) return unwrap(rest[0]!)
  }
  return ast
}

const code = (s: string) => `\`${s}\``

/** Literal values of a node that is a literal or a union of literals, or undefined. */
const literalsOf = (ast: SchemaAST.AST): ReadonlyArray<string> | undefined => {
  if (ast._tag === "Literal") return [String(ast.literal)]
  if (ast._tag === "Union" && ast.types.every((t) => t._tag === "Literal")) return ast.types.map((t) => String((t as SchemaAST.Literal).literal))
  return undefined
}

const typeOf = (ast: SchemaAST.AST): string => {
  const node = unwrap(ast)
  const literals = literalsOf(node)
  if (literals !== undefined) return `one of ${literals.map(code).join(", ")}`
  switch (node._tag) {
    case "String": {
      const format = annotationsOf(node).format
      return typeof format === "string" ? `string (${format})` : "string"
    }
    case "Number":
      return "number"
    case "Boolean":
      return "boolean"
    case "Arrays":
      return node.rest.length === 1 ? `list of ${typeOf(node.rest[0]!)}` : "list"
    case "Objects":
      return "object"
    default:
      throw new Error(`fieldTables: no wording for a ${node._tag} node`)
  }
}

/** Effect's checks with an OpenAPI form (the CRD's), and the node's CEL rules. */
const rulesOf = (ast: SchemaAST.AST): ReadonlyArray<string> => {
  const node = unwrap(ast)
  const array = node._tag === "Arrays"
  const unit = array ? "entries" : "characters"
  let min: number | undefined
  let max: number | undefined
  const out: string[] = []
  for (const check of node.checks ?? []) {
    const representation = (check.annotations as { readonly representation?: { readonly id?: string; readonly payload?: Annotations } } | undefined)
      ?.representation
    const payload = representation?.payload ?? {}
    switch (representation?.id) {
      case "effect/schema/isMinLength":
        min = Number(payload.minLength)
        break
      case "effect/schema/isMaxLength":
        max = Number(payload.maxLength)
        break
      case "effect/schema/isPattern":
        out.push(`matches ${code(String(payload.source))}`)
        break
    }
  }
  const length =
    min !== undefined && max !== undefined
      ? `${min} to ${max} ${unit}`
      : min !== undefined
        ? min === 1
          ? "not empty"
          : `at least ${min} ${unit}`
        : max !== undefined
          ? `at most ${max} ${unit}`
          : undefined
  const cel = annotationsOf(node)["x-kubernetes-validations"]
  const celRules = Array.isArray(cel) ? cel.map((r: { readonly message?: unknown }) => `CEL: ${String(r.message)}`) : []
  return [...(length === undefined ? [] : [length]), ...out, ...celRules]
}

const walk = (ast: SchemaAST.AST, prefix: string): ReadonlyArray<FieldRow> => {
  const node = unwrap(ast)
  if (node._tag !== "Objects") return []
  return node.propertySignatures.flatMap((ps) => {
    const path = prefix === "" ? String(ps.name) : `${prefix}.${String(ps.name)}`
    const description = annotationsOf(unwrap(ps.type)).description
    if (typeof description !== "string") throw new Error(`fieldTables: spec.${path} has no description; annotate its schema`)
    const row: FieldRow = {
      path,
      type: typeOf(ps.type),
      required: !SchemaAST.isOptional(ps.type),
      // ESO's descriptions wrap lines as Go comments do; a table cell is one line.
      description: description.replace(/\s*\n\s*/g, " "),
      rules: rulesOf(ps.type),
      extension: keyAnnotationsOf(ps.type).extension === true,
    }
    return [row, ...walk(ps.type, path)]
  })
}

/** Every field of the spec, depth first in schema order. */
export const fieldRows = (schema: { readonly ast: SchemaAST.AST } = GitlabDeployTokenSpec): ReadonlyArray<FieldRow> => walk(schema.ast, "")

/** A table cell: pipes escaped (GitHub splits cells on them even inside code spans). */
const cell = (s: string) => s.replace(/\|/g, "\\|")

/** Every field: path, type, whether it is required, description and constraints. */
export const renderFieldTable = (rows: ReadonlyArray<FieldRow> = fieldRows()): string =>
  [
    "| Field | Type | Required | Description | Constraints |",
    "|---|---|---|---|---|",
    ...rows.map((r) =>
      ["", code(r.path) + (r.extension ? " (gldt)" : ""), r.type, r.required ? "yes" : "", r.description, r.rules.join("; "), ""].map(cell).join(" | ").trim(),
    ),
  ].join("\n")

/** The top-level fields gldt adds to upstream ESO's spec. */
export const renderExtensionTable = (rows: ReadonlyArray<FieldRow> = fieldRows()): string =>
  [
    "| Field | Meaning |",
    "|---|---|",
    ...rows.filter((r) => r.extension && !r.path.includes(".")).map((r) => `| ${cell(code(r.path))} | ${cell(r.description)} |`),
  ].join("\n")

/** The generated blocks, by marker name: `<!-- NAME:start -->` … `<!-- NAME:end -->`. */
export const generatedBlocks = (): Readonly<Record<string, string>> => ({
  fields: renderFieldTable(),
  "extension-fields": renderExtensionTable(),
})

/** `text` with each marked block replaced by its generated content; throws naming a missing marker. */
export const rewriteBlocks = (text: string, blocks: Readonly<Record<string, string>> = generatedBlocks()): string => {
  let out = text
  for (const [name, content] of Object.entries(blocks)) {
    const start = `<!-- ${name}:start -->`
    const end = `<!-- ${name}:end -->`
    const from = out.indexOf(start)
    const to = out.indexOf(end)
    if (from < 0 || to < from) throw new Error(`the README has no ${start} … ${end} block; add the two marker lines where the table belongs`)
    out = `${out.slice(0, from + start.length)}\n${content}\n${out.slice(to)}`
  }
  return out
}
