/**
 * The launcher contract: `pnpm vault-plugin:launcher DIR` writes an executable DIR/gldt-vault-plugin
 * and prints `sha256=<hex>` of exactly that file; run by anyone but Vault, the plugin explains
 * itself and exits 1.
 */
import { execFileSync, spawnSync } from "node:child_process"
import { createHash } from "node:crypto"
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { afterAll, describe, expect, it } from "vitest"

const ROOT = fileURLToPath(new URL("../../../../", import.meta.url))
const dir = mkdtempSync(join(tmpdir(), "gldt-launcher-"))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

describe("pnpm vault-plugin:launcher", () => {
  it("writes an executable launcher and prints the sha256 of that file on stdout", () => {
    const out = execFileSync("pnpm", ["--silent", "vault-plugin:launcher", dir], { cwd: ROOT, encoding: "utf8" })
    const sha = /^sha256=([0-9a-f]{64})$/m.exec(out)?.[1]
    expect(sha, out).toBeDefined()
    const file = join(dir, "gldt-vault-plugin")
    expect(createHash("sha256").update(readFileSync(file)).digest("hex")).toBe(sha)
    expect(statSync(file).mode & 0o111).toBe(0o111)
    expect(out).toContain("command=gldt-vault-plugin")
  })

  it("the plugin refuses to run outside Vault, with the reason, exit 1 and nothing on stdout", () => {
    const run = spawnSync(join(dir, "gldt-vault-plugin"), [], { encoding: "utf8", env: { PATH: process.env.PATH ?? "" } })
    expect(run.status).toBe(1)
    expect(run.stdout).toBe("")
    expect(run.stderr).toContain("This binary is a Vault plugin")
  })

  it("refuses a name that is not a plain file name (Vault runs only files directly in its plugin directory)", () => {
    const run = spawnSync("pnpm", ["--silent", "vault-plugin:launcher", dir, "sub/x"], { cwd: ROOT, encoding: "utf8" })
    expect(run.status).toBe(1)
    expect(run.stderr).toContain("must be a plain file name")
  })
})
