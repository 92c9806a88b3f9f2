#!/usr/bin/env node
/**
 * pnpm testenv build [tool...]   build missing binaries (CI warm-up); progress on stderr
 * pnpm testenv up [--no-controller-manager] [--keep] [--vault [--no-kube]]
 *                                start etcd + kube-apiserver (+ controller-manager); print
 *                                KUBECONFIG=<path> and KUBECTL=<path> on stdout; with --vault also a
 *                                Vault dev server and VAULT_ADDR=… VAULT_TOKEN=…; stop on SIGINT/SIGTERM
 * pnpm testenv paths             print NAME=<path> and name=<path> of every cached binary (built or not)
 */
import { readFileSync } from "node:fs"
import { ALL_TOOLS, cacheDir, ensureTool, stderrLog, type ToolName, toolInfo } from "./build.ts"
import { type Kube, startKube } from "./kube.ts"
import { startVault, type Vault } from "./vault.ts"

const usage = `usage: testenv build [${ALL_TOOLS.join("|")}...]
       testenv up [--no-controller-manager] [--keep] [--vault [--no-kube]]
       testenv paths
up:    --vault    also start a Vault dev server (prints VAULT_ADDR= and VAULT_TOKEN=)
       --no-kube  with --vault: start only Vault
paths: prints ETCD=… and etcd=… (one line each, upper and lower case) for every tool
env: GLDT_CACHE (binary cache root, default ~/.cache/gldt), GLDT_GO (go binary),
     GLDT_TESTENV_KEEP=1 (keep temp dir), GLDT_TESTENV_NO_KCM=1 (no controller-manager)`

const isTool = (s: string): s is ToolName => (ALL_TOOLS as ReadonlyArray<string>).includes(s)

const build = async (names: ReadonlyArray<string>): Promise<number> => {
  const bad = names.filter((n) => !isTool(n))
  if (bad.length > 0) {
    process.stderr.write(`unknown tool(s): ${bad.join(", ")}\n${usage}\n`)
    return 2
  }
  const tools = names.length > 0 ? (names as ReadonlyArray<ToolName>) : ALL_TOOLS
  stderrLog(`cache: ${cacheDir()}/bin`)
  const started = Date.now()
  for (const t of tools) {
    const r = await ensureTool(t)
    stderrLog(`${t} ${r.info.version}: ${r.cached ? "cached" : "built"} in ${(r.millis / 1000).toFixed(1)}s  ${r.info.path}`)
  }
  stderrLog(`done in ${((Date.now() - started) / 1000).toFixed(1)}s`)
  return 0
}

const parentOf = (pid: number): number | undefined => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8")
    return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1])
  } catch {
    return undefined
  }
}

const commandOf = (pid: number): string => {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").replaceAll("\0", " ")
  } catch {
    return ""
  }
}

/**
 * When started by a package-manager script (`pnpm testenv up`), the processes between us and
 * that runner. pnpm does not pass SIGTERM on to its script, so `kill <pnpm pid>` would orphan
 * us; watching these lets `up` stop when its runner goes away. Empty when not run that way (or
 * without /proc).
 */
const runnerChain = (): Array<number> => {
  if (!process.env.npm_lifecycle_event) return []
  const chain: Array<number> = []
  let pid: number | undefined = process.ppid
  for (let depth = 0; pid !== undefined && pid > 1 && depth < 6; depth++) {
    chain.push(pid)
    if (/(^|[/\s])(pnpm|npm|yarn)(\.c?js)?(\s|$)/.test(commandOf(pid))) return chain
    pid = parentOf(pid)
  }
  return []
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

const up = async (flags: ReadonlyArray<string>): Promise<number> => {
  const known = ["--no-controller-manager", "--keep", "--vault", "--no-kube"]
  const unknown = flags.filter((f) => !known.includes(f))
  if (unknown.length > 0) {
    process.stderr.write(`unknown flag(s): ${unknown.join(", ")}\n${usage}\n`)
    return 2
  }
  const withVault = flags.includes("--vault")
  const withKube = !flags.includes("--no-kube")
  if (!withKube && !withVault) {
    process.stderr.write(`--no-kube needs --vault (there would be nothing to start)\n${usage}\n`)
    return 2
  }
  let signalled: NodeJS.Signals | undefined
  let ready = false
  let wake: () => void = () => {}
  const onSignal = (s: NodeJS.Signals) => {
    if (!ready || signalled !== undefined) {
      // Still building/starting, or a second signal: exit now; the exit hook SIGKILLs our children.
      stderrLog(`${s}: exiting`)
      process.exit(130)
    }
    signalled = s
    wake()
  }
  process.on("SIGINT", onSignal)
  process.on("SIGTERM", onSignal)
  process.on("SIGHUP", onSignal)
  const keep = flags.includes("--keep") ? { keepDir: true } : {}
  let kube: Kube | undefined
  let vault: Vault | undefined
  try {
    if (withKube) {
      kube = await startKube({ ...(flags.includes("--no-controller-manager") ? { controllerManager: false } : {}), ...keep })
    }
    if (withVault) vault = await startVault(keep)
  } catch (e) {
    await kube?.stop()
    throw e
  }
  ready = true
  const chain = runnerChain()
  const watchdog = setInterval(() => {
    if (chain.some((pid) => !alive(pid))) {
      clearInterval(watchdog)
      stderrLog("the package-manager script that started us exited: stopping")
      onSignal("SIGHUP")
    }
  }, 1000)
  if (kube) process.stdout.write(`KUBECONFIG=${kube.kubeconfig}\nKUBECTL=${kube.kubectlPath}\n`)
  if (vault) process.stdout.write(`VAULT_ADDR=${vault.addr}\nVAULT_TOKEN=${vault.token}\n`)
  const logs = [kube ? `${kube.dir}/logs` : undefined, vault?.logPath].filter((l) => l !== undefined).join(", ")
  stderrLog(`running (logs in ${logs}); stop with Ctrl-C or SIGTERM`)
  await new Promise<void>((r) => {
    wake = r
  })
  clearInterval(watchdog)
  stderrLog(`${signalled}: stopping`)
  await vault?.stop()
  await kube?.stop()
  stderrLog("stopped")
  return 0
}

const paths = async (): Promise<number> => {
  for (const t of ALL_TOOLS) {
    const i = await toolInfo(t)
    process.stdout.write(`${t.toUpperCase().replaceAll("-", "_")}=${i.path}\n${t}=${i.path}\n`)
  }
  return 0
}

const main = async (argv: ReadonlyArray<string>): Promise<number> => {
  const [cmd, ...rest] = argv
  switch (cmd) {
    case "build":
      return build(rest)
    case "up":
      return up(rest)
    case "paths":
      return paths()
    case "help":
    case "--help":
    case "-h":
      process.stdout.write(`${usage}\n`)
      return 0
    default:
      process.stderr.write(`${usage}\n`)
      return 2
  }
}

// Progress must never crash us if whoever reads stderr has gone away.
process.stderr.on("error", () => {})
main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code
  },
  (e: unknown) => {
    stderrLog(e instanceof Error ? e.message : String(e))
    process.exitCode = 1
  },
)
