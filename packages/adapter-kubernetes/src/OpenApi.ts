/**
 * A structural OpenAPI v3 schema (the subset Kubernetes accepts in a CRD) from an Effect Schema's
 * AST, so the CRD of the state object is derived from core's `StateRecord` instead of being written
 * a second time.
 *
 * Mapping: struct → `type: object` with `properties` and `required` (non-optional keys), record of
 * string keys → `additionalProperties`, array → `items`, string/number/boolean, a union of literals →
 * `enum`, `NullOr` → `nullable: true`, `optional` (a union with `undefined`) → not required.
 * Annotations: `description`, `format` and `x-kubernetes-validations` (CEL rules) are copied. Checks:
 * Effect's `isMinLength` becomes `minLength` (`minItems` on an array), `isMaxLength` `maxLength`
 * (`maxItems`), `isPattern` `pattern`; a check without such a form is a run-time rule only and is
 * left to the validator. With `preserveUnknownFields` (the default, for State records) every object
 * also gets `x-kubernetes-preserve-unknown-fields: true`: the apiserver still validates the fields
 * it knows, but never prunes a field a newer core added before the CRD was upgraded.
 * Anything else (tuples, bigint, symbols, template literals, mixed unions…) throws, so a change in
 * core that cannot be expressed fails the generator instead of producing a wrong CRD.
 */
import type { OpenApiSchema } from "@gldt/core/SpecSchema"
import { SchemaAST } from "effect"

export interface OpenApiOptions {
  /** Mark every object `x-kubernetes-preserve-unknown-fields: true`. Default true. */
  readonly preserveUnknownFields?: boolean | undefined
}

const fail = (path: string, what: string): never => {
  throw new Error(`cannot express ${what} at ${path || "<root>"} as a structural OpenAPI schema`)
}

const description = (ast: SchemaAST.AST): { description?: string } => {
  const d = (ast.annotations as { readonly description?: unknown } | undefined)?.description
  return typeof d === "string" ? { description: d } : {}
}

/** `format` and the CEL rules of a node. */
const extras = (ast: SchemaAST.AST): OpenApiSchema => {
  const a = (ast.annotations ?? {}) as { readonly format?: unknown; readonly "x-kubernetes-validations"?: unknown }
  return {
    ...(typeof a.format === "string" ? { format: a.format } : {}),
    ...(Array.isArray(a["x-kubernetes-validations"]) ? { "x-kubernetes-validations": a["x-kubernetes-validations"] } : {}),
  }
}

/** The OpenAPI constraints of a node's checks (see the module comment). */
const constraints = (ast: SchemaAST.AST, array: boolean): OpenApiSchema => {
  const out: Record<string, unknown> = {}
  for (const check of ast.checks ?? []) {
    const representation = (check.annotations as { readonly representation?: { readonly id?: string; readonly payload?: Record<string, unknown> } } | undefined)
      ?.representation
    const payload = representation?.payload ?? {}
    switch (representation?.id) {
      case "effect/schema/isMinLength":
        out[array ? "minItems" : "minLength"] = payload.minLength
        break
      case "effect/schema/isMaxLength":
        out[array ? "maxItems" : "maxLength"] = payload.maxLength
        break
      case "effect/schema/isPattern":
        out.pattern = payload.source
        break
    }
  }
  return out
}

const isUndefined = (ast: SchemaAST.AST) => ast._tag === "Undefined" || ast._tag === "Void"

const convert = (ast: SchemaAST.AST, path: string, options: Required<OpenApiOptions>): OpenApiSchema => {
  switch (ast._tag) {
    case "String":
      return { ...description(ast), type: "string", ...extras(ast), ...constraints(ast, false) }
    case "Number":
      return { ...description(ast), type: "number" }
    case "Boolean":
      return { ...description(ast), type: "boolean" }
    case "Literal": {
      const v = ast.literal
      if (typeof v === "string") return { ...description(ast), type: "string", enum: [v] }
      if (typeof v === "number") return { ...description(ast), type: "number", enum: [v] }
      if (typeof v === "boolean") return { ...description(ast), type: "boolean", enum: [v] }
      return fail(path, `the literal ${String(v)}`)
    }
    case "Suspend":
      return convert(ast.thunk(), path, options)
    case "Union": {
      const members = ast.types.filter((t) => !isUndefined(t))
      const nullable = members.some((t) => t._tag === "Null")
      const rest = members.filter((t) => t._tag !== "Null")
      if (rest.length === 0) return fail(path, "a union of only null/undefined")
      if (rest.every((t) => t._tag === "Literal")) {
        const values = rest.map((t) => (t as SchemaAST.Literal).literal)
        const kinds = new Set(values.map((v) => typeof v))
        if (kinds.size !== 1 || !["string", "number", "boolean"].includes([...kinds][0]!)) return fail(path, "a union of mixed literals")
        return { ...description(ast), type: [...kinds][0], enum: values, ...(nullable ? { nullable: true } : {}) }
      }
      if (rest.length !== 1) return fail(path, "a union of different types")
      const inner = convert(rest[0]!, path, options)
      return { ...inner, ...description(ast), ...(nullable ? { nullable: true } : {}) }
    }
    case "Arrays": {
      if (ast.elements.length > 0 || ast.rest.length !== 1) return fail(path, "a tuple")
      return { ...description(ast), type: "array", ...constraints(ast, true), items: convert(ast.rest[0]!, `${path}[]`, options) }
    }
    case "Objects": {
      if (ast.propertySignatures.length > 0 && ast.indexSignatures.length > 0) return fail(path, "an object with both fields and an index signature")
      if (ast.indexSignatures.length > 0) {
        if (ast.indexSignatures.length !== 1 || ast.indexSignatures[0]!.parameter._tag !== "String") return fail(path, "a record with non-string keys")
        return { ...description(ast), type: "object", additionalProperties: convert(ast.indexSignatures[0]!.type, `${path}.*`, options) }
      }
      const properties: Record<string, OpenApiSchema> = {}
      const required: string[] = []
      for (const ps of ast.propertySignatures) {
        if (typeof ps.name !== "string") return fail(path, "a symbol key")
        const optional = SchemaAST.isOptional(ps.type) || (ps.type._tag === "Union" && ps.type.types.some(isUndefined))
        properties[ps.name] = convert(ps.type, path === "" ? ps.name : `${path}.${ps.name}`, options)
        if (!optional) required.push(ps.name)
      }
      return {
        ...description(ast),
        type: "object",
        ...(required.length > 0 ? { required } : {}),
        properties,
        ...(options.preserveUnknownFields ? { "x-kubernetes-preserve-unknown-fields": true } : {}),
        ...extras(ast),
      }
    }
    default:
      return fail(path, `a ${ast._tag}`)
  }
}

/** The structural OpenAPI schema of an Effect Schema (see the module comment for the mapping). */
export const openApiOf = (schema: { readonly ast: SchemaAST.AST }, options: OpenApiOptions = {}): OpenApiSchema =>
  convert(schema.ast, "", { preserveUnknownFields: options.preserveUnknownFields ?? true })
