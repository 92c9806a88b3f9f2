/**
 * End-to-end helpers: the standalone GitLab simulator over TLS as a process (its `/_sim` ground
 * truth), a real Vault dev server with the gldt engine registered, mounted and configured, the
 * plugin processes Vault started, and the vault CLI.
 */
import { type ChildProcessWithoutNullStreams, execFile, execFileSync, spawn } from "node:child_process"
import { mkdtempSync, readFileSync, rmSync } from "node:fs"
import { request as httpsRequest } from "node:https"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { startVault, type Vault, type VaultResponse } from "@gldt/testenv"
import { ENGINE_ENTRY, type Launcher, writeLauncher } from "../src/launcher/Launcher.ts"

const SIM_MAIN = fileURLToPath(new URL("../../../tooling/gitlab-sim/src/main.ts", import.meta.url))

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))

export interface SimToken {
  readonly id: number
  readonly name: string
  readonly username: string
  readonly scopes: ReadonlyArray<string>
  readonly expiresAt: string | null
  readonly revoked: boolean
  readonly createdBy: "api" | "foreign"
  readonly token: string
  readonly deletedAt?: string
  readonly ownerId: number
  readonly type: "project" | "group"
}

export interface Sim {
  readonly url: string
  readonly pat: string
  readonly caPem: string
  control<T = unknown>(method: string, path: string, body?: unknown): Promise<T>
  tokens(): Promise<SimToken[]>
  stop(): Promise<void>
}

/** Live tokens made through the API (not deleted, not revoked): what a leak would look like. */
export const liveApiTokens = (tokens: ReadonlyArray<SimToken>, name?: string) =>
  tokens.filter((t) => t.createdBy === "api" && !t.revoked && t.deletedAt === undefined && (name === undefined || t.name === name))

export const startSim = (dir: string): Promise<Sim> =>
  new Promise((resolve, reject) => {
    const child: ChildProcessWithoutNullStreams = spawn(process.execPath, [SIM_MAIN, "--port", "0", "--tls", "--ca-out", join(dir, "sim-ca.pem")], {
      stdio: "pipe",
      env: { PATH: process.env.PATH ?? "" },
    })
    let out = ""
    let err = ""
    const timer = setTimeout(() => {
      child.kill("SIGKILL")
      reject(new Error(`gitlab-sim printed nothing within 20 s: ${err}`))
    }, 20_000)
    child.stderr.on("data", (c: Buffer) => {
      err += c.toString()
    })
    child.once("exit", (code) => {
      clearTimeout(timer)
      reject(new Error(`gitlab-sim exited early (${code}): ${err}`))
    })
    child.stdout.on("data", (c: Buffer) => {
      out += c.toString()
      const nl = out.indexOf("\n")
      if (nl < 0) return
      clearTimeout(timer)
      child.removeAllListeners("exit")
      const info = JSON.parse(out.slice(0, nl)) as { url: string; pat: string; caPem: string }
      const control = <T>(method: string, path: string, body?: unknown): Promise<T> =>
        new Promise((ok, ko) => {
          const payload = body === undefined ? undefined : JSON.stringify(body)
          const req = httpsRequest(
            new URL(`/_sim/${path}`, info.url),
            { method, ca: info.caPem, headers: payload === undefined ? {} : { "content-type": "application/json" } },
            (res) => {
              let text = ""
              res.on("data", (d: Buffer) => {
                text += d.toString()
              })
              res.on("end", () =>
                (res.statusCode ?? 0) >= 300
                  ? ko(new Error(`${method} /_sim/${path}: ${res.statusCode} ${text}`))
                  : ok((text ? JSON.parse(text) : undefined) as T),
              )
            },
          )
          req.on("error", ko)
          req.end(payload)
        })
      resolve({
        url: info.url,
        pat: info.pat,
        caPem: info.caPem,
        control,
        tokens: () => control<SimToken[]>("GET", "tokens"),
        stop: () =>
          new Promise<void>((done) => {
            if (child.exitCode !== null) return done()
            child.once("exit", () => done())
            child.kill("SIGTERM")
          }),
      })
    })
  })

export interface Harness {
  readonly vault: Vault
  readonly sim: Sim
  readonly launcher: Launcher
  readonly dir: string
  /** `vault.request`, failing the test with the body when the status is not the expected one. */
  call(method: string, path: string, body?: unknown, expected?: number): Promise<VaultResponse>
  /** Runs the vault CLI against the dev server. */
  cli(args: ReadonlyArray<string>): Promise<{ code: number; stdout: string; stderr: string }>
  /** Pids of the engine processes this Vault started. */
  pluginPids(): number[]
  stop(): Promise<void>
}

export interface HarnessOptions {
  /** Mount path (default `gldt`). */
  readonly mount?: string
  /** How long an interrupted create is waited for (GLDT_VAULT_CREATE_SETTLE_MS, default 3 s here). */
  readonly createSettleMs?: number
}

/** Simulator + Vault, engine registered (sha256 from the plugin directory), mounted and configured. */
export const startHarness = async (opts: HarnessOptions = {}): Promise<Harness> => {
  const dir = mkdtempSync(join(tmpdir(), "gldt-vault-e2e-"))
  const pluginDir = join(dir, "plugins")
  const sim = await startSim(dir)
  // The plugin directory is empty when Vault starts, so the dev server registers nothing by itself.
  execFileSync("mkdir", ["-p", pluginDir])
  const vault = await startVault({ pluginDir, env: { GLDT_VAULT_CREATE_SETTLE_MS: String(opts.createSettleMs ?? 3_000) } })
  const mount = opts.mount ?? "gldt"
  const call = async (method: string, path: string, body?: unknown, expected?: number) => {
    const res = await vault.request(method, path, body)
    if (expected !== undefined && res.status !== expected) {
      throw new Error(`${method} ${path}: expected ${expected}, got ${res.status} ${JSON.stringify(res.body)}`)
    }
    return res
  }
  const launcher = writeLauncher({ dir: pluginDir })
  await call("POST", "sys/plugins/catalog/secret/gldt", { sha256: launcher.sha256, command: launcher.command }, 204)
  await call("POST", `sys/mounts/${mount}`, { type: "gldt" }, 204)
  await call("POST", `${mount}/config`, { url: sim.url, token: sim.pat, ca_pem: sim.caPem }, 204)
  const vaultPid = (): number | undefined => {
    const port = new URL(vault.addr).port
    const ps = execFileSync("ps", ["-eo", "pid=,args="], { encoding: "utf8" })
    for (const line of ps.split("\n")) {
      const m = /^\s*(\d+)\s+(.*)$/.exec(line)
      if (m && m[2]!.includes(`-dev-listen-address=127.0.0.1:${port}`)) return Number(m[1])
    }
    return undefined
  }
  return {
    vault,
    sim,
    launcher,
    dir,
    call,
    cli: (args) =>
      new Promise((resolve) => {
        execFile(
          vault.binPath,
          [...args],
          { env: { PATH: process.env.PATH ?? "", HOME: dir, VAULT_ADDR: vault.addr, VAULT_TOKEN: vault.token } },
          (err, stdout, stderr) => resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
        )
      }),
    pluginPids: () => {
      const parent = vaultPid()
      const ps = execFileSync("ps", ["-eo", "pid=,ppid=,args="], { encoding: "utf8" })
      return ps
        .split("\n")
        .map((l) => /^\s*(\d+)\s+(\d+)\s+(.*)$/.exec(l))
        .filter((m): m is RegExpExecArray => m !== null && Number(m[2]) === parent && m[3]!.includes(ENGINE_ENTRY))
        .map((m) => Number(m[1]))
    },
    stop: async () => {
      await vault.stop()
      await sim.stop()
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

/** Waits until `check` returns true, polling; fails with `what` after `timeoutMs`. */
export const eventually = async (what: string, check: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> => {
  const end = Date.now() + timeoutMs
  for (;;) {
    if (await check()) return
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for: ${what}`)
    await sleep(200)
  }
}

/** Vault's log (the plugin's stderr is re-logged there). */
export const vaultLog = (vault: Vault): string => readFileSync(vault.logPath, "utf8")
