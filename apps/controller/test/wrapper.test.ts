/** `./gldt-controller` runs the bundle, keeps it in step with the sources, and behaves as the sources do. */
import { execFileSync } from "node:child_process"
import { readFileSync, statSync, utimesSync } from "node:fs"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { CONTROLLER, REPO_ROOT } from "./support.ts"

const BUNDLE = join(REPO_ROOT, "apps/controller/dist/gldt-controller.mjs")
const run = (args: ReadonlyArray<string>, env: Record<string, string> = {}) =>
  execFileSync(CONTROLLER, args, { env: { ...process.env, ...env }, encoding: "utf8", timeout: 120_000 })

describe("./gldt-controller", () => {
  it("rebuilds the bundle when a source is newer than it, and not otherwise", () => {
    run(["--version"])
    const built = statSync(BUNDLE).mtimeMs
    run(["--version"])
    expect(statSync(BUNDLE).mtimeMs).toBe(built)
    const source = join(REPO_ROOT, "apps/controller/src/version.ts")
    const { atime, mtime } = statSync(source)
    try {
      const later = new Date(built + 2_000)
      utimesSync(source, later, later)
      run(["--version"])
      expect(statSync(BUNDLE).mtimeMs).toBeGreaterThan(built)
    } finally {
      utimesSync(source, atime, mtime)
    }
  })

  it("prints the same help and version from the bundle as from the sources", () => {
    expect(run(["--help"])).toBe(run(["--help"], { GLDT_CONTROLLER_FROM_SOURCE: "1" }))
    expect(run(["--version"])).toBe(run(["--version"], { GLDT_CONTROLLER_FROM_SOURCE: "1" }))
  })

  it("keeps the bundle ASCII (Node then holds its source one byte per character) and reading no package.json at run time", () => {
    const text = readFileSync(BUNDLE, "utf8")
    // ASCII exactly when UTF-8 needs one byte per character.
    expect(Buffer.byteLength(text, "utf8")).toBe(text.length)
    expect(text).not.toMatch(/new URL\("[^"]*package\.json", import\.meta\.url\)/)
    expect(text.length).toBeLessThan(8 * 1024 * 1024)
  })
})
