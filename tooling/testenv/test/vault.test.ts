import { spawn } from "node:child_process"
import { existsSync } from "node:fs"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { startVault, type Vault, toolInfo } from "../src/index.ts"

let vaultOrUndefined: Vault | undefined
const vault = (): Vault => {
  if (!vaultOrUndefined) throw new Error("vault not started")
  return vaultOrUndefined
}

beforeAll(async () => {
  vaultOrUndefined = await startVault()
}, 40 * 60_000)

afterAll(async () => {
  await vaultOrUndefined?.stop()
})

const data = (r: { body: unknown }): Record<string, unknown> => (r.body as { data: Record<string, unknown> }).data

describe("real Vault dev server", () => {
  it("is the pinned version, unsealed, and keeps the BUSL licence beside the cached binary", async () => {
    const health = await vault().request("GET", "sys/health")
    expect(health.status).toBe(200)
    expect(health.body).toMatchObject({ initialized: true, sealed: false, version: vault().version.replace(/^v/, "") })
    expect(existsSync(`${vault().binPath}.LICENSE`)).toBe(true)
  })

  it("mounts secret/ as KV v2 whose check-and-set lets exactly one of two writers of a version win", async () => {
    const path = "secret/data/testenv/cas"
    const first = await vault().request("POST", path, { options: { cas: 0 }, data: { n: "1" } })
    expect(first.status).toBe(200)
    expect(data(first).version).toBe(1)
    const stale = await vault().request("POST", path, { options: { cas: 0 }, data: { n: "2" } })
    expect(stale.status).toBe(400)
    expect(JSON.stringify(stale.body)).toContain("check-and-set parameter did not match")
    const next = await vault().request("POST", path, { options: { cas: 1 }, data: { n: "3" } })
    expect(data(next).version).toBe(2)
    const v1 = await vault().request("GET", `${path}?version=1`)
    expect(data(v1).data).toEqual({ n: "1" })
  })

  it("keeps custom metadata on a KV v2 path", async () => {
    const meta = await vault().request("POST", "secret/metadata/testenv/meta", { custom_metadata: { token_id: "42" } })
    expect(meta.status).toBe(204)
    const read = await vault().request("GET", "secret/metadata/testenv/meta")
    expect(data(read).custom_metadata).toEqual({ token_id: "42" })
  })

  it("refuses a request without a valid token", async () => {
    const denied = await vault().request("GET", "secret/data/testenv/cas", undefined, "not-a-token")
    expect(denied.status).toBe(403)
  })
})

describe("pnpm testenv up --vault --no-kube", () => {
  it("prints VAULT_ADDR and VAULT_TOKEN of a server that answers, and stops it on SIGTERM", async () => {
    const cli = join(dirname(fileURLToPath(import.meta.url)), "..", "src", "cli.ts")
    const child = spawn(process.execPath, [cli, "up", "--vault", "--no-kube"], { stdio: ["ignore", "pipe", "pipe"] })
    let out = ""
    child.stdout.setEncoding("utf8").on("data", (d: string) => {
      out += d
    })
    const exited = new Promise<number | null>((done) => child.once("exit", (code) => done(code)))
    const deadline = Date.now() + 60_000
    while (!/VAULT_TOKEN=\S+\n/.test(out) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100))
    const addr = /^VAULT_ADDR=(\S+)$/m.exec(out)?.[1]
    const token = /^VAULT_TOKEN=(\S+)$/m.exec(out)?.[1]
    expect(out).not.toContain("KUBECONFIG=")
    expect(addr).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
    const res = await fetch(`${addr}/v1/auth/token/lookup-self`, { headers: { "x-vault-token": token ?? "" } })
    expect(res.status).toBe(200)
    child.kill("SIGTERM")
    expect(await exited).toBe(0)
    await expect(fetch(`${addr}/v1/sys/health`)).rejects.toThrow()
  })

  it("testenv paths names the vault binary as vault=<path>", async () => {
    const cli = join(dirname(fileURLToPath(import.meta.url)), "..", "src", "cli.ts")
    const child = spawn(process.execPath, [cli, "paths"], { stdio: ["ignore", "pipe", "inherit"] })
    let out = ""
    child.stdout.setEncoding("utf8").on("data", (d: string) => {
      out += d
    })
    await new Promise((done) => child.once("exit", done))
    expect(out).toContain(`vault=${(await toolInfo("vault")).path}\n`)
  })
})
