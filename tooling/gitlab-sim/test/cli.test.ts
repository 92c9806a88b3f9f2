import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process"
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { request } from "node:https"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { afterAll, describe, expect, it } from "vitest"

const MAIN = fileURLToPath(new URL("../src/main.ts", import.meta.url))
const dir = mkdtempSync(join(tmpdir(), "gitlab-sim-cli-"))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

interface Started {
  readonly child: ChildProcessWithoutNullStreams
  readonly info: { url: string; apiUrl: string; pat: string | null; ca: string | null; caPem: string | null }
}

/** Spawns the binary and resolves with its first stdout line (the JSON announcement). */
const start = (args: string[], env: Record<string, string> = {}): Promise<Started> =>
  new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [MAIN, ...args], { env: { ...process.env, ...env }, stdio: "pipe" })
    let out = ""
    let err = ""
    const timer = setTimeout(() => reject(new Error(`no startup line; stderr: ${err}`)), 15_000)
    child.stderr.on("data", (c: Buffer) => {
      err += c.toString()
    })
    child.stdout.on("data", (c: Buffer) => {
      out += c.toString()
      const nl = out.indexOf("\n")
      if (nl >= 0) {
        clearTimeout(timer)
        resolve({ child, info: JSON.parse(out.slice(0, nl)) })
      }
    })
    child.on("exit", (code) => {
      clearTimeout(timer)
      reject(new Error(`exited early with ${code}: ${err}`))
    })
  })

const stop = (child: ChildProcessWithoutNullStreams, signal: NodeJS.Signals = "SIGTERM"): Promise<number | null> =>
  new Promise((resolve) => {
    child.removeAllListeners("exit")
    child.on("exit", (code) => resolve(code))
    child.kill(signal)
  })

describe("standalone binary", () => {
  it("prints the JSON line, serves the default world, exits 0 on SIGTERM", async () => {
    const { child, info } = await start(["--port", "0"])
    try {
      expect(info.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
      expect(info.apiUrl).toBe(`${info.url}/api/v4`)
      expect(info.pat).toMatch(/^glpat-/)
      expect(info.ca).toBeNull()
      const headers = { "PRIVATE-TOKEN": info.pat ?? "", "content-type": "application/json" }
      const created = await fetch(`${info.apiUrl}/projects/group%2Fproject/deploy_tokens`, {
        method: "POST",
        headers,
        body: JSON.stringify({ name: "cli", scopes: ["read_repository"] }),
      })
      expect(created.status).toBe(201)
      const groupList = await fetch(`${info.apiUrl}/groups/7/deploy_tokens`, { headers })
      expect(groupList.status).toBe(200)
      const admin = await fetch(`${info.apiUrl}/deploy_tokens`, { headers })
      expect(((await admin.json()) as unknown[]).length).toBe(1)
      const truth = (await (await fetch(`${info.url}/_sim/tokens`)).json()) as { ownerId: number; createdBy: string }[]
      expect(truth).toEqual([expect.objectContaining({ ownerId: 42, createdBy: "api" })])
    } finally {
      expect(await stop(child)).toBe(0)
    }
  })

  it("--pat / GITLAB_SIM_PAT set the admin PAT; SIGINT also exits 0", async () => {
    const { child, info } = await start(["--pat", "glpat-fixedvalue1234567"])
    try {
      expect(info.pat).toBe("glpat-fixedvalue1234567")
      expect((await fetch(`${info.apiUrl}/projects/42/deploy_tokens`, { headers: { "PRIVATE-TOKEN": "glpat-fixedvalue1234567" } })).status).toBe(200)
    } finally {
      expect(await stop(child, "SIGINT")).toBe(0)
    }
    const fromEnv = await start([], { GITLAB_SIM_PAT: "glpat-fromenvironment000" })
    expect(fromEnv.info.pat).toBe("glpat-fromenvironment000")
    expect(await stop(fromEnv.child)).toBe(0)
  })

  it("--tls --ca-out writes the CA and serves https", async () => {
    const caPath = join(dir, "ca.pem")
    const { child, info } = await start(["--tls", "--ca-out", caPath])
    try {
      expect(info.url).toMatch(/^https:/)
      expect(info.ca).toBe(caPath)
      const ca = readFileSync(caPath, "utf8")
      expect(info.caPem).toBe(ca)
      const status = await new Promise<number>((resolve, reject) => {
        const req = request(`${info.apiUrl}/projects/42/deploy_tokens`, { ca, headers: { "PRIVATE-TOKEN": info.pat ?? "" } }, (res) => {
          res.resume()
          resolve(res.statusCode ?? 0)
        })
        req.on("error", reject)
        req.end()
      })
      expect(status).toBe(200)
    } finally {
      expect(await stop(child)).toBe(0)
    }
    expect(existsSync(caPath)).toBe(true)
  })

  it("--seed-file builds the world from JSON; --rate-limit throttles", async () => {
    const seedPath = join(dir, "seed.json")
    writeFileSync(
      seedPath,
      JSON.stringify({
        users: [{ name: "alice" }],
        accessTokens: [{ user: "alice", scopes: ["api"], value: "glpat-alice000000000000" }],
        groups: [{ id: 3, path: "acme", members: { alice: "owner" } }],
        projects: [{ id: 30, path: "acme/app" }],
        deployTokens: [{ target: { project: 30 }, name: "pre", username: "pre", scopes: ["read_repository"] }],
      }),
    )
    const { child, info } = await start(["--seed-file", seedPath, "--rate-limit", "2/60"])
    try {
      expect(info.pat).toBe("glpat-alice000000000000")
      const headers = { "PRIVATE-TOKEN": "glpat-alice000000000000" }
      const list = await fetch(`${info.apiUrl}/projects/acme%2Fapp/deploy_tokens`, { headers })
      expect(await list.json()).toEqual([expect.objectContaining({ name: "pre", username: "pre" })])
      expect((await fetch(`${info.apiUrl}/groups/acme/deploy_tokens`, { headers })).status).toBe(200)
      const limited = await fetch(`${info.apiUrl}/groups/acme/deploy_tokens`, { headers })
      expect(limited.status).toBe(429)
      expect(await limited.text()).toBe("Retry later\n")
    } finally {
      expect(await stop(child)).toBe(0)
    }
  })

  it("rejects bad flags with exit code 2", async () => {
    const code = await new Promise<number | null>((resolve) => {
      const child = spawn(process.execPath, [MAIN, "--port", "nope"], { stdio: "ignore" })
      child.on("exit", resolve)
    })
    expect(code).toBe(2)
  })
})
