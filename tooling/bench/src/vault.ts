/**
 * Vault plugin figures for `pnpm bench`: how long the plugin process takes from exec to its
 * handshake line, how long Vault takes to mount it (start, handshake, Setup through the broker),
 * and the latency of `read gldt/creds/<role>` end to end (Vault → plugin → GitLab simulator over
 * TLS → lease). Skipped, with the reason, when the Vault test binary is not built.
 */
import { execFileSync, spawn } from "node:child_process"
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join, resolve } from "node:path"
import { startVault, toolInfo } from "@gldt/testenv"
import { writeLauncher } from "@gldt/vault-plugin"

type Report = (name: string, value: string) => void

const root = resolve(import.meta.dirname, "../../..")
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!

/** Exec → handshake line, as Vault sees it (a throw-away client certificate stands in for Vault's). */
const handshakeMs = (launcher: string, clientCert: string): Promise<number> =>
  new Promise((ok, fail) => {
    const started = performance.now()
    const child = spawn(launcher, [], {
      stdio: ["ignore", "pipe", "ignore"],
      env: {
        PATH: process.env.PATH ?? "",
        VAULT_BACKEND_PLUGIN: "6669da05-b1c8-4f49-97d9-c8e5bed98e20",
        PLUGIN_PROTOCOL_VERSIONS: "5",
        PLUGIN_CLIENT_CERT: clientCert,
      },
    })
    child.stdout.once("data", () => {
      const ms = performance.now() - started
      child.kill("SIGTERM")
      ok(ms)
    })
    child.once("exit", (code) => fail(new Error(`plugin exited (${code}) before its handshake line`)))
  })

const startSim = (): Promise<{ url: string; pat: string; caPem: string; stop: () => void }> =>
  new Promise((ok, fail) => {
    const sim = spawn(process.execPath, [join(root, "tooling/gitlab-sim/src/main.ts"), "--port", "0", "--tls"], { stdio: ["ignore", "pipe", "inherit"] })
    let buf = ""
    sim.stdout.on("data", (c: Buffer) => {
      buf += c.toString()
      if (!buf.includes("\n")) return
      const info = JSON.parse(buf.split("\n")[0]!) as { url: string; pat: string; caPem: string }
      ok({ ...info, stop: () => sim.kill("SIGTERM") })
    })
    sim.on("exit", () => fail(new Error("simulator exited")))
  })

export const vaultPlugin = async (report: Report): Promise<void> => {
  const vaultBin = (await toolInfo("vault")).path
  if (!existsSync(vaultBin)) {
    report("vault plugin", "skipped: the Vault test binary is not built (pnpm testenv build vault)")
    return
  }
  const work = mkdtempSync(join(tmpdir(), "gldt-bench-vault-"))
  const pluginDir = join(work, "plugins")
  mkdirSync(pluginDir)
  const sim = await startSim()
  const vault = await startVault({ pluginDir, log: () => undefined })
  try {
    const launcher = writeLauncher({ dir: pluginDir })
    const cert = execFileSync(
      "openssl",
      ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "/dev/null", "-subj", "/CN=localhost", "-days", "1"],
      {
        encoding: "utf8",
        stdio: ["ignore", "pipe", "ignore"],
      },
    )
    const starts: number[] = []
    for (let i = 0; i < 5; i++) starts.push(await handshakeMs(launcher.path, cert))
    report("vault plugin: exec → handshake line (median of 5)", `${median(starts).toFixed(0)} ms`)

    const must = async (method: string, path: string, body?: unknown) => {
      const res = await vault.request(method, path, body)
      if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(res.body)}`)
      return res
    }
    await must("POST", "sys/plugins/catalog/secret/gldt", { sha256: launcher.sha256, command: launcher.command })
    const mounts: number[] = []
    for (let i = 0; i < 5; i++) {
      const t = performance.now()
      await must("POST", `sys/mounts/bench${i}`, { type: "gldt" })
      mounts.push(performance.now() - t)
    }
    report("vault plugin: mount = start + Setup (median of 5)", `${median(mounts).toFixed(0)} ms`)

    await must("POST", "bench0/config", { url: sim.url, token: sim.pat, ca_pem: sim.caPem })
    await must("POST", "bench0/roles/r", { project_id: "42", name: "bench", scopes: "read_registry" })
    await must("GET", "bench0/creds/r")
    const reads: number[] = []
    for (let i = 0; i < 20; i++) {
      const t = performance.now()
      await must("GET", "bench0/creds/r")
      reads.push(performance.now() - t)
    }
    report("vault plugin: read creds end to end (median of 20)", `${median(reads).toFixed(0)} ms (max ${Math.max(...reads).toFixed(0)} ms)`)
    const t = performance.now()
    await must("PUT", "sys/leases/revoke-prefix/bench0/creds/r", {})
    report("vault plugin: revoke-prefix of 21 leases", `${(performance.now() - t).toFixed(0)} ms`)
  } finally {
    await vault.stop()
    sim.stop()
    rmSync(work, { recursive: true, force: true })
  }
}
