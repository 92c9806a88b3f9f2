#!/usr/bin/env node
/**
 * Builds `dist/gldt-controller.mjs`: the controller and everything it imports in one tree-shaken,
 * minified ES module, which `./gldt-controller` runs when it is fresher than the sources.
 *
 * Why: run from sources, Node loads every module of every dependency whole (`effect`'s index,
 * `@kubernetes/client-node`'s generated clients for every API group) and keeps their source text
 * in the heap; the bundle holds only what the controller reaches, which is most of the difference
 * between ~165 MiB and ~100 MiB resident right after start (see the README's "Memory").
 *
 * Usage: `node scripts/bundle.ts [--out FILE] [--quiet]`. Writes to a temporary file and renames it,
 * so a process starting meanwhile never reads half a bundle.
 */
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, utimesSync, writeFileSync } from "node:fs"
import { basename, dirname, join, resolve } from "node:path"
import { parseArgs } from "node:util"
import { build, type Plugin } from "esbuild"

const here = resolve(import.meta.dirname, "..")
export const defaultOut = resolve(here, "dist/gldt-controller.mjs")

/**
 * Modules that find their package.json at run time (`new URL("../../package.json", import.meta.url)`)
 * cannot once bundled: the expression is replaced by the version read now.
 */
const PACKAGE_VERSION = /JSON\.parse\(readFileSync\(new URL\("((?:\.\.\/)+package\.json)", import\.meta\.url\), "utf8"\)\)/g
const inlinePackageVersion: Plugin = {
  name: "inline-package-version",
  setup(b) {
    b.onLoad({ filter: /[/\\]packages[/\\][^/\\]+[/\\]src[/\\].*\.ts$/ }, (args) => {
      const text = readFileSync(args.path, "utf8")
      if (!PACKAGE_VERSION.test(text)) return undefined
      const contents = text.replace(PACKAGE_VERSION, (_, rel: string) => {
        const pkg = JSON.parse(readFileSync(resolve(dirname(args.path), rel), "utf8")) as { version: string }
        return `(${JSON.stringify({ version: pkg.version })})`
      })
      return { contents, loader: "ts" }
    })
  },
}

/**
 * Node holds a module's source in the heap for its whole life, as Latin-1 when the file is ASCII and
 * as UTF-16 (twice the size: 8 instead of 4 MiB here) when it is not. esbuild escapes non-ASCII
 * characters in strings and identifiers but not in regular expressions (Go's `µs` in the duration
 * patterns), so those few are escaped here; `\uXXXX` means the same character in a regex, string
 * or identifier.
 */
const asciiOnly = (file: string) => {
  const text = readFileSync(file, "utf8")
  let escaped = ""
  let last = 0
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i)
    if (code < 0x80) continue
    escaped += `${text.slice(last, i)}\\u${code.toString(16).padStart(4, "0")}`
    last = i + 1
  }
  if (last > 0) writeFileSync(file, escaped + text.slice(last))
}

export const bundle = async (out: string = defaultOut, quiet = false) => {
  const tmp = join(dirname(out), `.bundle-${process.pid}`)
  mkdirSync(tmp, { recursive: true })
  const started = new Date()
  const result = await build({
    entryPoints: [resolve(here, "src/main.ts")],
    outfile: join(tmp, basename(out)),
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node22",
    treeShaking: true,
    // Whitespace and syntax only: names stay, so stack traces, `constructor.name` and Effect's
    // span names read as in the sources.
    minifyWhitespace: true,
    minifySyntax: true,
    sourcemap: "linked",
    sourcesContent: false,
    legalComments: "linked",
    // Some dependencies are CommonJS and `require` Node's built-ins.
    banner: { js: 'import { createRequire as __gldtCreateRequire } from "node:module"; const require = __gldtCreateRequire(import.meta.url);' },
    plugins: [inlinePackageVersion],
    logLevel: quiet ? "error" : "warning",
  })
  if (result.errors.length > 0) throw new Error("esbuild failed")
  asciiOnly(join(tmp, basename(out)))
  // A package.json looked up at run time would be looked up beside the bundle: fail now, not then.
  if (/new URL\("[^"]*package\.json", import\.meta\.url\)/.test(readFileSync(join(tmp, basename(out)), "utf8"))) {
    throw new Error("the bundle still reads a package.json at run time; extend inlinePackageVersion in scripts/bundle.ts")
  }
  // Dated when the sources were read, so that one saved during the build still counts as newer.
  utimesSync(join(tmp, basename(out)), started, started)
  // The bundle last, so that once it is in place its map and notices are too.
  const files = readdirSync(tmp).sort((a, b) => (a === basename(out) ? 1 : b === basename(out) ? -1 : a.localeCompare(b)))
  for (const f of files) renameSync(join(tmp, f), join(dirname(out), f))
  rmSync(tmp, { recursive: true, force: true })
  return out
}

if (import.meta.main) {
  const { values } = parseArgs({ options: { out: { type: "string" }, quiet: { type: "boolean", default: false } } })
  const out = await bundle(values.out === undefined ? defaultOut : resolve(values.out), values.quiet)
  if (!values.quiet) process.stderr.write(`bundled ${out}\n`)
}
