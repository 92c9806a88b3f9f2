/**
 * A small, safe subset of ESO's template engine (Go text/template, `engineVersion: v2`) — enough
 * for the usual deploy-token Secrets such as `kubernetes.io/dockerconfigjson`:
 *
 *   {"auths":{"registry.example.com":{"username":"{{ .username }}","password":"{{ .token }}",
 *    "auth":"{{ printf "%s:%s" .username .token | b64enc }}"}}}
 *
 * Supported, exactly:
 * - text with actions `{{ … }}`, and the trim markers `{{- ` / ` -}}` (whitespace around the action
 *   is removed, as in Go);
 * - the fields `.username` and `.token` (the generated data);
 * - string literals: `"…"` with the escapes `\\ \" \n \r \t`, and raw `` `…` ``;
 * - pipelines `a | f | g` (the value is passed as the last argument) and parentheses `(…)`;
 * - the functions `printf FORMAT ARG…` (format a string literal; verbs `%s`, `%v` and `%%`; the
 *   argument count must match the verbs) and `b64enc STRING` (standard base64 with padding).
 *
 * Everything else is rejected when the template is compiled — before any token is minted —
 * with a message that names it: other functions, variables (`$x`), the bare dot, nested fields,
 * numbers, comments, and the keywords `if`, `range`, `with`, `define`, `template`, `block`, `end`….
 * Values are strings; nothing is escaped (deploy-token usernames and tokens contain no character
 * that needs escaping in JSON).
 */

export const TEMPLATE_FIELDS = ["username", "token"] as const
export type TemplateField = (typeof TEMPLATE_FIELDS)[number]
export const TEMPLATE_FUNCTIONS = ["printf", "b64enc"] as const
type Fn = (typeof TEMPLATE_FUNCTIONS)[number]

export type TemplateValues = Readonly<Record<TemplateField, string>>

/** A template that cannot be compiled or rendered; the message says what and where. */
export class TemplateError extends Error {
  override readonly name = "TemplateError"
}

type Operand =
  | { readonly kind: "field"; readonly name: TemplateField }
  | { readonly kind: "string"; readonly value: string }
  | { readonly kind: "pipe"; readonly pipe: Pipeline }
type Command = { readonly kind: "call"; readonly fn: Fn; readonly args: ReadonlyArray<Operand> } | { readonly kind: "value"; readonly operand: Operand }
type Pipeline = ReadonlyArray<Command>
type Part = { readonly kind: "text"; readonly text: string } | { readonly kind: "action"; readonly pipe: Pipeline }

type Token =
  | { readonly t: "field"; readonly name: string }
  | { readonly t: "string"; readonly value: string }
  | { readonly t: "ident"; readonly name: string }
  | { readonly t: "|" | "(" | ")" }

const KEYWORDS = new Set(["if", "else", "end", "range", "with", "define", "template", "block", "break", "continue", "nil", "true", "false"])

const isSpace = (c: string | undefined) => c === " " || c === "\t" || c === "\n" || c === "\r"

/** Splits the source into text and actions; returns the actions' tokens. */
const lex = (src: string): Array<{ readonly kind: "text"; text: string } | { readonly kind: "action"; readonly tokens: Token[]; readonly at: number }> => {
  const parts: Array<{ readonly kind: "text"; text: string } | { readonly kind: "action"; readonly tokens: Token[]; readonly at: number }> = []
  let i = 0
  let trimNext = false
  while (i < src.length) {
    const open = src.indexOf("{{", i)
    let text = open === -1 ? src.slice(i) : src.slice(i, open)
    if (trimNext) text = text.replace(/^[ \t\r\n]+/, "")
    trimNext = false
    if (open === -1) {
      if (text !== "") parts.push({ kind: "text", text })
      break
    }
    let j = open + 2
    if (src[j] === "-" && isSpace(src[j + 1])) {
      text = text.replace(/[ \t\r\n]+$/, "")
      j += 2
    }
    if (text !== "") parts.push({ kind: "text", text })
    const tokens: Token[] = []
    for (;;) {
      while (isSpace(src[j])) j++
      if (j >= src.length) throw new TemplateError(`unclosed action at offset ${open}: missing "}}"`)
      const c = src[j]!
      if (c === "-" && src.startsWith("}}", j + 1) && isSpace(src[j - 1])) {
        trimNext = true
        j += 3
        break
      }
      if (c === "}" && src[j + 1] === "}") {
        j += 2
        break
      }
      if (c === "|" || c === "(" || c === ")") {
        tokens.push({ t: c })
        j++
      } else if (c === '"') {
        let value = ""
        j++
        for (;;) {
          const d = src[j]
          if (d === undefined || d === "\n") throw new TemplateError(`unterminated string at offset ${j}`)
          if (d === '"') break
          if (d === "\\") {
            const e = src[j + 1]
            const map: Record<string, string> = { "\\": "\\", '"': '"', n: "\n", r: "\r", t: "\t" }
            if (e === undefined || map[e] === undefined)
              throw new TemplateError(`unsupported escape \\${e ?? ""} in a string (supported: \\\\ \\" \\n \\r \\t)`)
            value += map[e]
            j += 2
          } else {
            value += d
            j++
          }
        }
        j++
        tokens.push({ t: "string", value })
      } else if (c === "`") {
        const end = src.indexOf("`", j + 1)
        if (end === -1) throw new TemplateError(`unterminated raw string at offset ${j}`)
        tokens.push({ t: "string", value: src.slice(j + 1, end) })
        j = end + 1
      } else if (c === ".") {
        const m = /^\.([A-Za-z_][A-Za-z0-9_]*)/.exec(src.slice(j))
        if (m === null) throw new TemplateError("the bare dot (the whole data map) is not supported; use .username or .token")
        const after = src[j + m[0].length]
        if (after === ".") throw new TemplateError(`nested fields (.${m[1]}.…) are not supported; use .username or .token`)
        tokens.push({ t: "field", name: m[1]! })
        j += m[0].length
      } else if (/[A-Za-z_]/.test(c)) {
        const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(src.slice(j))!
        tokens.push({ t: "ident", name: m[0] })
        j += m[0].length
      } else if (c === "$") {
        throw new TemplateError("variables ($…) are not supported")
      } else if (c === "/" && src[j + 1] === "*") {
        throw new TemplateError("comments ({{/* … */}}) are not supported")
      } else if (/[0-9+-]/.test(c)) {
        throw new TemplateError("numbers are not supported; only .username, .token, string literals, printf and b64enc")
      } else {
        throw new TemplateError(`unexpected ${JSON.stringify(c)} at offset ${j}`)
      }
    }
    parts.push({ kind: "action", tokens, at: open })
    i = j
  }
  return parts
}

const parsePipeline = (tokens: ReadonlyArray<Token>, pos: { i: number }, nested: boolean): Pipeline => {
  const commands: Command[] = []
  for (;;) {
    const operands: Array<Operand | { readonly kind: "ident"; readonly name: string }> = []
    for (;;) {
      const tok = tokens[pos.i]
      if (tok === undefined || tok.t === "|" || tok.t === ")") break
      pos.i++
      if (tok.t === "(") {
        const inner = parsePipeline(tokens, pos, true)
        if (tokens[pos.i]?.t !== ")") throw new TemplateError('unclosed "(": missing ")"')
        pos.i++
        operands.push({ kind: "pipe", pipe: inner })
      } else if (tok.t === "string") {
        operands.push({ kind: "string", value: tok.value })
      } else if (tok.t === "field") {
        if (!(TEMPLATE_FIELDS as ReadonlyArray<string>).includes(tok.name)) {
          throw new TemplateError(`unknown field .${tok.name}; the generated data has only .username and .token`)
        }
        operands.push({ kind: "field", name: tok.name as TemplateField })
      } else if (tok.t === "ident") {
        if (KEYWORDS.has(tok.name)) throw new TemplateError(`"${tok.name}" is not supported (no control structures); only printf and b64enc`)
        if (!(TEMPLATE_FUNCTIONS as ReadonlyArray<string>).includes(tok.name)) {
          throw new TemplateError(`unknown function "${tok.name}"; supported: ${TEMPLATE_FUNCTIONS.join(", ")}`)
        }
        if (operands.length > 0) throw new TemplateError(`function "${tok.name}" used as an argument; wrap it in parentheses`)
        operands.push({ kind: "ident", name: tok.name })
      } else {
        throw new TemplateError(`unexpected "${tok.t}"`)
      }
    }
    if (operands.length === 0) throw new TemplateError(commands.length === 0 && !nested ? "empty action {{ }}" : "missing command in a pipeline")
    const [head, ...rest] = operands
    if (head!.kind === "ident") {
      commands.push({ kind: "call", fn: head!.name as Fn, args: rest as Operand[] })
    } else {
      if (rest.length > 0) throw new TemplateError('a value cannot take arguments; put the function first, e.g. printf "%s" .token')
      if (commands.length > 0) throw new TemplateError("a value cannot receive a pipe; pipe into a function such as b64enc")
      commands.push({ kind: "value", operand: head as Operand })
    }
    if (tokens[pos.i]?.t !== "|") break
    pos.i++
  }
  if (!nested && pos.i < tokens.length) throw new TemplateError('unexpected ")"')
  return commands
}

const verbsOf = (format: string): number => {
  let n = 0
  for (let k = 0; k < format.length; k++) {
    if (format[k] !== "%") continue
    const v = format[k + 1]
    if (v === "%") {
      k++
      continue
    }
    if (v !== "s" && v !== "v") throw new TemplateError(`printf verb %${v ?? ""} is not supported; use %s (or %v) and %%`)
    n++
    k++
  }
  return n
}

/** Checks arity and printf formats statically. */
const check = (pipe: Pipeline): void => {
  pipe.forEach((cmd, idx) => {
    const piped = idx > 0 ? 1 : 0
    if (cmd.kind === "value") {
      if (cmd.operand.kind === "pipe") check(cmd.operand.pipe)
      return
    }
    for (const a of cmd.args) if (a.kind === "pipe") check(a.pipe)
    const argc = cmd.args.length + piped
    if (cmd.fn === "b64enc" && argc !== 1) throw new TemplateError(`b64enc takes exactly one argument, got ${argc}`)
    if (cmd.fn === "printf") {
      const format = cmd.args[0]
      if (format === undefined || format.kind !== "string") throw new TemplateError("printf needs a string literal as its format")
      const verbs = verbsOf(format.value)
      if (argc - 1 !== verbs) throw new TemplateError(`printf format ${JSON.stringify(format.value)} has ${verbs} verb(s) but gets ${argc - 1} argument(s)`)
    }
  })
}

const evalOperand = (o: Operand, v: TemplateValues): string => (o.kind === "field" ? v[o.name] : o.kind === "string" ? o.value : evalPipeline(o.pipe, v))

const evalPipeline = (pipe: Pipeline, v: TemplateValues): string => {
  let value: string | undefined
  for (const cmd of pipe) {
    if (cmd.kind === "value") {
      value = evalOperand(cmd.operand, v)
      continue
    }
    const args = cmd.args.map((a) => evalOperand(a, v))
    if (value !== undefined) args.push(value)
    if (cmd.fn === "b64enc") {
      value = Buffer.from(args[0]!, "utf8").toString("base64")
    } else {
      let k = 1
      value = args[0]!.replace(/%[%sv]/g, (m) => (m === "%%" ? "%" : args[k++]!))
    }
  }
  return value!
}

export interface CompiledTemplate {
  readonly source: string
  render(values: TemplateValues): string
}

/** Compiles a template of the supported subset; throws TemplateError for anything else. */
export const compileTemplate = (source: string): CompiledTemplate => {
  const parts: Part[] = lex(source).map((p) => {
    if (p.kind === "text") return p
    const pos = { i: 0 }
    const pipe = parsePipeline(p.tokens, pos, false)
    check(pipe)
    return { kind: "action", pipe }
  })
  return {
    source,
    render: (values) => parts.map((p) => (p.kind === "text" ? p.text : evalPipeline(p.pipe, values))).join(""),
  }
}
