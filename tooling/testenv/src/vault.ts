/**
 * A real, throw-away Vault dev server on loopback (in-memory storage, `secret/` mounted as KV v2),
 * built from its Go module like the Kubernetes binaries. Vault 1.21 is BUSL-1.1: it is used here
 * only as a test tool, built into the cache and never shipped.
 */
import { randomBytes } from "node:crypto"
import { mkdir, mkdtemp, readFile, rm } from "node:fs/promises"
import http from "node:http"
import https from "node:https"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { ensureTool, type Log, stderrLog, toolInfo } from "./build.ts"
import { freePort, type Proc, startProc, waitReady } from "./proc.ts"

export interface VaultResponse {
  readonly status: number
  /** Parsed JSON body, or undefined for an empty one (204). */
  readonly body: unknown
}

export interface Vault {
  /** `http://127.0.0.1:<port>` (`https://` with `tls`) */
  readonly addr: string
  /** With `tls`: PEM of the CA that signed the server's certificate. */
  readonly caPem: string | undefined
  /** The root token of the dev server. */
  readonly token: string
  /** Vault's version, e.g. `v1.21.1`. */
  readonly version: string
  /** Absolute path of the vault binary. */
  readonly binPath: string
  /** The `-dev-plugin-dir` given at start, if any. */
  readonly pluginDir: string | undefined
  /** Temporary directory holding the log (`<dir>/vault.log`). */
  readonly dir: string
  readonly logPath: string
  /** One HTTP call to the API (`path` without `/v1/`), as `token` (default: root). */
  request(method: string, path: string, body?: unknown, token?: string): Promise<VaultResponse>
  /** Stop the server and delete `dir` unless kept. */
  stop(): Promise<void>
}

export interface StartVaultOptions {
  /** Passed as `-dev-plugin-dir` (external plugins registered by sha256 from this directory). */
  readonly pluginDir?: string
  /** Root token id (default: random). */
  readonly rootToken?: string
  readonly log?: Log
  /** Keep the temp dir after stop() (default: `GLDT_TESTENV_KEEP=1`). */
  readonly keepDir?: boolean
  readonly readyTimeoutMs?: number
  /** Extra environment for the server (and so for the plugins it starts). */
  readonly env?: NodeJS.ProcessEnv
  /**
   * Serve HTTPS with the dev server's own CA (`-dev-tls`): its certificate names localhost and
   * 127.0.0.1, plus `sans` (`-dev-tls-san`); `caPem` is that CA.
   */
  readonly tls?: boolean | { readonly sans?: ReadonlyArray<string> }
}

const call = (addr: string, method: string, path: string, token: string, body?: unknown, ca?: string): Promise<VaultResponse> =>
  new Promise((ok, ko) => {
    const payload = body === undefined ? undefined : JSON.stringify(body)
    const req = (addr.startsWith("https:") ? https : http).request(
      `${addr}/v1/${path.replace(/^\/+/, "")}`,
      {
        method,
        headers: {
          "x-vault-token": token,
          ...(payload === undefined ? {} : { "content-type": "application/json", "content-length": Buffer.byteLength(payload) }),
        },
        timeout: 30_000,
        ...(ca === undefined ? {} : { ca }),
      },
      (res) => {
        let text = ""
        res.setEncoding("utf8").on("data", (d: string) => {
          text += d
        })
        res.on("end", () => {
          let parsed: unknown
          try {
            parsed = text ? JSON.parse(text) : undefined
          } catch {
            parsed = text
          }
          ok({ status: res.statusCode ?? 0, body: parsed })
        })
      },
    )
    req.on("timeout", () => req.destroy(new Error(`vault ${method} ${path}: timed out`)))
    req.on("error", ko)
    req.end(payload)
  })

/** A free port whose neighbour is free too: the dev server binds a cluster listener on PORT+1. */
const vaultPort = async (): Promise<number> => {
  for (let i = 0; i < 20; i++) {
    const p = await freePort()
    if (p >= 65535) continue
    const ok = await new Promise<boolean>((done) => {
      const s = http.createServer()
      s.once("error", () => done(false))
      s.listen(p + 1, "127.0.0.1", () => s.close(() => done(true)))
    })
    if (ok) return p
  }
  throw new Error("testenv: no free pair of loopback ports for vault")
}

/** Start a Vault dev server, building the binary first if it is not cached. */
export const startVault = async (opts: StartVaultOptions = {}): Promise<Vault> => {
  const log = opts.log ?? stderrLog
  const keep = opts.keepDir ?? process.env.GLDT_TESTENV_KEEP === "1"
  const built = await ensureTool("vault", { log })
  const version = (await toolInfo("vault")).version
  const dir = await mkdtemp(join(tmpdir(), "gldt-vault-"))
  await mkdir(join(dir, "home"), { recursive: true })
  const token = opts.rootToken ?? `root-${randomBytes(12).toString("hex")}`
  const port = await vaultPort()
  const tls = opts.tls === undefined || opts.tls === false ? undefined : opts.tls === true ? {} : opts.tls
  const tlsDir = join(dir, "tls")
  const addr = `${tls ? "https" : "http"}://127.0.0.1:${port}`
  if (tls) await mkdir(tlsDir, { recursive: true })
  const logPath = join(dir, "vault.log")
  log(`starting vault ${version} on ${addr}`)
  let proc: Proc | undefined
  let caPem: string | undefined
  try {
    proc = startProc(
      "vault",
      built.info.path,
      [
        "server",
        "-dev",
        `-dev-root-token-id=${token}`,
        `-dev-listen-address=127.0.0.1:${port}`,
        "-dev-no-store-token",
        ...(opts.pluginDir ? [`-dev-plugin-dir=${opts.pluginDir}`] : []),
        ...(tls ? ["-dev-tls", `-dev-tls-cert-dir=${tlsDir}`, ...(tls.sans ?? []).map((san) => `-dev-tls-san=${san}`)] : []),
      ],
      // HOME in the temp dir: nothing of the dev server lands in the user's home.
      { logPath, env: { ...process.env, ...opts.env, HOME: join(dir, "home"), VAULT_ADDR: addr } },
    )
    if (tls) {
      // The dev server writes its CA before it listens.
      const end = Date.now() + (opts.readyTimeoutMs ?? 60_000)
      while (caPem === undefined) {
        caPem = await readFile(join(tlsDir, "vault-ca.pem"), "utf8").catch(() => undefined)
        if (caPem === undefined && Date.now() > end) throw new Error(`vault: no ${join(tlsDir, "vault-ca.pem")} in time; log ${logPath}`)
        if (caPem === undefined) await new Promise((r) => setTimeout(r, 100))
      }
    }
    await waitReady(`${addr}/v1/sys/health`, proc, { timeoutMs: opts.readyTimeoutMs ?? 60_000, ...(caPem ? { ca: caPem } : {}) })
  } catch (e) {
    await proc?.stop()
    if (!keep) await rm(dir, { recursive: true, force: true })
    throw e
  }
  const running = proc
  const ca = caPem
  let stopped = false
  return {
    addr,
    caPem: ca,
    token,
    version,
    binPath: built.info.path,
    pluginDir: opts.pluginDir,
    dir,
    logPath,
    request: (method, path, body, as) => call(addr, method, path, as ?? token, body, ca),
    stop: async () => {
      if (stopped) return
      stopped = true
      await running.stop()
      if (!keep) await rm(dir, { recursive: true, force: true })
      else log(`kept ${dir}`)
    },
  }
}
