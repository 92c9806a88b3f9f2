/**
 * A fresh project outside the workspace that installs only tarballs (plus what the registry serves),
 * the way a user's project does. Workspace versions such as `@gldt/core@^0.1.0` are not on the
 * registry yet, so pnpm `overrides` map every @gldt package to its tarball.
 */
import { type ExecFileOptions, execFile } from "node:child_process"
import { mkdirSync, readdirSync, writeFileSync } from "node:fs"
import { join } from "node:path"

export interface ConsumerOptions {
  readonly dir: string
  /** Package name → tarball path, for every packed package (all go into `overrides`). */
  readonly tarballs: Readonly<Record<string, string>>
  /** The @gldt packages this consumer depends on directly. */
  readonly uses: ReadonlyArray<string>
  /** Registry dependencies, e.g. `{ effect: "4.0.6" }`. */
  readonly dependencies: Readonly<Record<string, string>>
}

/** Only what a user's shell would have: no npm_* variables from an enclosing `npm test`. */
export const cleanEnv = (extra: Record<string, string> = {}): NodeJS.ProcessEnv => {
  const env: NodeJS.ProcessEnv = {}
  for (const [k, v] of Object.entries(process.env)) {
    if (v !== undefined && !/^(npm_|NODE_OPTIONS$|VITEST|PNPM_)/i.test(k)) env[k] = v
  }
  return { ...env, ...extra }
}

/**
 * Runs a command to completion and returns its stdout; fails with its output. Asynchronous, so an
 * in-process simulator keeps answering while the command talks to it.
 */
export const run = (command: string, args: ReadonlyArray<string>, options: ExecFileOptions & { cwd: string }): Promise<string> =>
  new Promise((resolve, reject) => {
    execFile(command, [...args], { encoding: "utf8", env: cleanEnv(), maxBuffer: 64 * 1024 * 1024, ...options }, (error, stdout, stderr) => {
      if (error === null) return resolve(String(stdout))
      const how = error.killed ? `was killed (${error.signal}) after its timeout` : `exited ${error.code}`
      reject(new Error(`${command} ${args.join(" ")} ${how}\n${String(stdout)}\n${String(stderr)}`))
    })
  })

/** Writes the consumer's package.json and pnpm settings and installs (store first, registry if needed). */
export const installConsumer = async (o: ConsumerOptions): Promise<void> => {
  mkdirSync(o.dir, { recursive: true })
  const file = (name: string) => `file:${o.tarballs[name]}`
  const manifest = {
    name: "gldt-consumer",
    private: true,
    type: "module",
    dependencies: { ...Object.fromEntries(o.uses.map((n) => [n, file(n)])), ...o.dependencies },
    devDependencies: { typescript: "5.9.3", "@types/node": "24.19.4" },
  }
  writeFileSync(join(o.dir, "package.json"), `${JSON.stringify(manifest, null, 2)}\n`)
  const overrides = Object.keys(o.tarballs)
    .map((n) => `  "${n}": "${file(n)}"\n`)
    .join("")
  writeFileSync(join(o.dir, "pnpm-workspace.yaml"), `overrides:\n${overrides}`)
  await run("pnpm", ["install", "--prefer-offline", "--no-frozen-lockfile"], { cwd: o.dir, timeout: 300_000 })
}

/** The packages in the consumer's virtual store, as `name@version…` directory names. */
export const installedPackages = (dir: string): ReadonlyArray<string> => readdirSync(join(dir, "node_modules", ".pnpm"))

/** The strict NodeNext settings a careful consumer uses. */
export const STRICT_TSCONFIG = {
  compilerOptions: {
    strict: true,
    exactOptionalPropertyTypes: true,
    noUncheckedIndexedAccess: true,
    noImplicitOverride: true,
    module: "NodeNext",
    moduleResolution: "NodeNext",
    target: "ES2023",
    lib: ["ES2023"],
    types: ["node"],
    verbatimModuleSyntax: true,
    isolatedModules: true,
    noEmit: true,
    // effect's own declarations need DOM crypto types this lib setting leaves out; ours are still
    // checked wherever the program uses them, and the tarball check resolves their imports.
    skipLibCheck: true,
  },
}
