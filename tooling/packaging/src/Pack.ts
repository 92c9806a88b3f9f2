/** Finds the publishable workspace packages, packs them as `pnpm publish` would, and reads the tarballs. */
import { execFileSync } from "node:child_process"
import { existsSync, readdirSync, readFileSync } from "node:fs"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import type { PackedManifest, Tarball } from "./Tarball.ts"

export const REPO_ROOT = fileURLToPath(new URL("../../../", import.meta.url))

export interface Publishable {
  readonly name: string
  /** Absolute path of the package directory. */
  readonly dir: string
}

/** Every workspace package not marked private: each of them is meant for the registry. */
export const publishablePackages = (): ReadonlyArray<Publishable> =>
  ["packages", "apps", "tooling"].flatMap((group) =>
    readdirSync(join(REPO_ROOT, group)).flatMap((name) => {
      const file = join(REPO_ROOT, group, name, "package.json")
      if (!existsSync(file)) return []
      const manifest = JSON.parse(readFileSync(file, "utf8")) as { name: string; private?: boolean }
      return manifest.private === true ? [] : [{ name: manifest.name, dir: join(REPO_ROOT, group, name) }]
    }),
  )

/**
 * `pnpm pack` (its `prepack` builds the package first) into `dest`; returns the tarball's path.
 * pnpm rewrites `workspace:` ranges and applies `publishConfig` exactly as it does when publishing.
 */
export const pack = (pkg: Publishable, dest: string): string => {
  const out = execFileSync("pnpm", ["pack", "--json", "--pack-destination", dest], { cwd: pkg.dir, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] })
  // The prepack build prints first; the JSON document starts on a line of its own.
  const json = out.slice(out.search(/^\{$/m))
  return (JSON.parse(json) as { filename: string }).filename
}

export const readTarball = (file: string): Tarball => {
  const files = execFileSync("tar", ["-tzf", file], { encoding: "utf8" })
    .split("\n")
    .filter((line) => line !== "" && !line.endsWith("/"))
    .map((line) => line.replace(/^package\//, ""))
  const read = (entry: string) => execFileSync("tar", ["-xzOf", file, `package/${entry}`], { encoding: "utf8", maxBuffer: 64 * 1024 * 1024 })
  return { manifest: JSON.parse(read("package.json")) as PackedManifest, files, read }
}
