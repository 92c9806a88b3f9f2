/**
 * What a packed tarball must hold, checked against its own packed manifest: everything `exports`
 * and `bin` name, every file a shipped module imports, README and LICENSE, and nothing but JS and
 * `.d.ts` (plus the data files the manifest lists). A pure function, so a test can prove it notices
 * a missing file.
 */
import * as path from "node:path"

export type ExportTarget = string | null | { readonly [condition: string]: ExportTarget }

export interface PackedManifest {
  readonly name: string
  readonly version: string
  readonly license?: string
  readonly repository?: { readonly url?: string; readonly directory?: string } | string
  readonly engines?: { readonly node?: string }
  readonly bin?: string | Readonly<Record<string, string>>
  readonly exports?: Readonly<Record<string, ExportTarget>>
  readonly dependencies?: Readonly<Record<string, string>>
  readonly peerDependencies?: Readonly<Record<string, string>>
  readonly publishConfig?: { readonly access?: string }
}

export interface Tarball {
  readonly manifest: PackedManifest
  /** Paths inside the package, without the tarball's `package/` prefix. */
  readonly files: ReadonlyArray<string>
  /** The text of one of `files`. */
  readonly read: (file: string) => string
}

/** Data files a package may ship besides JS and `.d.ts` (the adapter's CRDs). */
const DATA_FILE = /^crds\/[^/]+\.yaml$/
const ALWAYS = new Set(["package.json", "README.md", "LICENSE"])

const norm = (p: string): string => p.replace(/^\.\//, "")

const targets = (t: ExportTarget): ReadonlyArray<string> => (t === null ? [] : typeof t === "string" ? [t] : Object.values(t).flatMap(targets))

/** `./dist/*.js` → a RegExp over package paths. */
const patternOf = (target: string): RegExp =>
  new RegExp(
    `^${norm(target)
      .replace(/[.+?^${}()|[\]\\]/g, "\\$&")
      .replace("*", "(.+)")}$`,
  )

/** Relative module specifiers in a JS or `.d.ts` file. */
const relativeImports = (text: string): ReadonlyArray<string> => {
  const out: string[] = []
  for (const m of text.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)["'](\.{1,2}\/[^"']+)["']/g)) out.push(m[1]!)
  return out
}

/** Every problem with a tarball; empty when it is complete. */
export const tarballProblems = (tarball: Tarball): ReadonlyArray<string> => {
  const { manifest, files } = tarball
  const have = new Set(files)
  const problems: string[] = []
  const missing = (what: string, file: string) => problems.push(`${manifest.name}: ${what} ${file} is not in the tarball`)

  for (const f of ALWAYS) if (!have.has(f)) missing("the required file", f)
  for (const f of files) {
    const allowed = ALWAYS.has(f) || f.endsWith(".d.ts") || f.endsWith(".js") || DATA_FILE.test(f)
    if (!allowed) problems.push(`${manifest.name}: ships ${f}; a tarball holds only JS, .d.ts, README, LICENSE and listed data files`)
    if (/(^|\/)(test|src)\//.test(f) || /\.test\.(js|d\.ts)$/.test(f)) problems.push(`${manifest.name}: ships ${f} (sources or tests)`)
  }

  for (const [subpath, target] of Object.entries(manifest.exports ?? {})) {
    for (const t of targets(target)) {
      if (t.includes("*")) {
        if (!files.some((f) => patternOf(t).test(f))) problems.push(`${manifest.name}: export ${subpath} → ${t} matches no file in the tarball`)
      } else if (!have.has(norm(t))) {
        missing(`export ${subpath} →`, norm(t))
      }
    }
  }
  // Each JS module reachable through a pattern export has its declarations, and the other way round.
  for (const f of files) {
    if (f.startsWith("dist/") && f.endsWith(".js") && !have.has(f.replace(/\.js$/, ".d.ts"))) missing(`the declarations of ${f},`, f.replace(/\.js$/, ".d.ts"))
    if (f.startsWith("dist/") && f.endsWith(".d.ts") && !have.has(f.replace(/\.d\.ts$/, ".js")))
      missing(`the module declared by ${f},`, f.replace(/\.d\.ts$/, ".js"))
  }

  const bins = typeof manifest.bin === "string" ? { [manifest.name]: manifest.bin } : (manifest.bin ?? {})
  for (const [name, target] of Object.entries(bins)) {
    const file = norm(target)
    if (!have.has(file)) missing(`the bin ${name} →`, file)
    else if (!file.endsWith(".js")) problems.push(`${manifest.name}: the bin ${name} is ${file}, not compiled JS`)
    else if (!tarball.read(file).startsWith("#!/usr/bin/env node"))
      problems.push(`${manifest.name}: the bin ${name} (${file}) lacks a #!/usr/bin/env node line`)
  }

  for (const f of files) {
    if (!f.endsWith(".js") && !f.endsWith(".d.ts")) continue
    for (const spec of relativeImports(tarball.read(f))) {
      const resolved = path.posix.normalize(path.posix.join(path.posix.dirname(f), spec))
      const candidates = f.endsWith(".d.ts") ? [resolved, resolved.replace(/\.(ts|js)$/, ".d.ts")] : [resolved]
      if (!candidates.some((c) => have.has(c))) problems.push(`${manifest.name}: ${f} imports ${spec}, which is not in the tarball`)
    }
  }

  for (const [field, deps] of [
    ["dependencies", manifest.dependencies],
    ["peerDependencies", manifest.peerDependencies],
  ] as const) {
    for (const [dep, range] of Object.entries(deps ?? {})) {
      if (range.startsWith("workspace:")) problems.push(`${manifest.name}: ${field}.${dep} is still ${range}`)
    }
  }
  if (manifest.license !== "Apache-2.0") problems.push(`${manifest.name}: license is ${manifest.license ?? "missing"}`)
  if (manifest.engines?.node === undefined) problems.push(`${manifest.name}: engines.node is missing`)
  if (typeof manifest.repository !== "object" || manifest.repository.url === undefined) problems.push(`${manifest.name}: repository is missing`)
  if (manifest.publishConfig?.access !== "public") problems.push(`${manifest.name}: publishConfig.access is not public`)
  if (manifest.exports !== undefined && manifest.exports["./internal/*"] !== null) {
    problems.push(`${manifest.name}: exports does not close ./internal/* (set it to null)`)
  }
  return problems
}
