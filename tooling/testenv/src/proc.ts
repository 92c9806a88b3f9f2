/** Child processes with log files, readiness polling, and no orphans when the parent dies. */
import { type ChildProcess, spawn } from "node:child_process"
import { closeSync, openSync, readFileSync } from "node:fs"
import http from "node:http"
import https from "node:https"
import net from "node:net"

export interface Proc {
  readonly name: string
  readonly child: ChildProcess
  /** File receiving the process's stdout and stderr. */
  readonly logPath: string
  /** Last lines of the log, for error messages. */
  tail(lines?: number): string
  /** SIGTERM, then SIGKILL after `graceMs`; resolves once the process has exited. */
  stop(graceMs?: number): Promise<void>
}

const live = new Set<ChildProcess>()
let exitHookInstalled = false

/** On any exit of this Node process, SIGKILL whatever children are still running. */
const installExitHook = (): void => {
  if (exitHookInstalled) return
  exitHookInstalled = true
  process.on("exit", () => {
    for (const c of live) {
      try {
        c.kill("SIGKILL")
      } catch {
        // already gone
      }
    }
  })
}

/** Register a child to be SIGKILLed if this process exits while it still runs. */
export const track = (child: ChildProcess): void => {
  installExitHook()
  live.add(child)
  child.once("exit", () => live.delete(child))
}

export const startProc = (
  name: string,
  bin: string,
  args: ReadonlyArray<string>,
  opts: { readonly logPath: string; readonly env?: NodeJS.ProcessEnv; readonly stdout?: "log" | "ignore" },
): Proc => {
  installExitHook()
  const fd = openSync(opts.logPath, "a")
  const child = spawn(bin, args, {
    stdio: ["ignore", opts.stdout === "ignore" ? "ignore" : fd, fd],
    env: opts.env ?? process.env,
  })
  closeSync(fd)
  live.add(child)
  const exited = new Promise<void>((done) => {
    child.once("exit", () => {
      live.delete(child)
      done()
    })
    child.once("error", () => {
      live.delete(child)
      done()
    })
  })
  const tail = (lines = 30): string => {
    try {
      return readFileSync(opts.logPath, "utf8").trimEnd().split("\n").slice(-lines).join("\n")
    } catch {
      return ""
    }
  }
  const stop = async (graceMs = 10_000): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return
    const timer = setTimeout(() => child.kill("SIGKILL"), graceMs)
    child.kill("SIGTERM")
    await exited
    clearTimeout(timer)
  }
  return { name, child, logPath: opts.logPath, tail, stop }
}

/** A TCP port that was free on 127.0.0.1 a moment ago. */
export const freePort = (): Promise<number> =>
  new Promise((ok, ko) => {
    const s = net.createServer()
    s.on("error", ko)
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as net.AddressInfo).port
      s.close(() => ok(port))
    })
  })

/** Several distinct free ports. */
export const freePorts = async (n: number): Promise<Array<number>> => {
  const ports = new Set<number>()
  while (ports.size < n) ports.add(await freePort())
  return [...ports]
}

/** Status code of a GET (0 when the connection fails). TLS is verified against `ca` when given. */
export const probe = (url: string, tls: { readonly ca?: string } = {}): Promise<number> =>
  new Promise((ok) => {
    const onRes = (r: http.IncomingMessage) => {
      r.resume()
      ok(r.statusCode ?? 0)
    }
    const req = url.startsWith("https:")
      ? https.get(url, tls.ca ? { ca: tls.ca, timeout: 5000 } : { rejectUnauthorized: false, timeout: 5000 }, onRes)
      : http.get(url, { timeout: 5000 }, onRes)
    req.on("timeout", () => req.destroy())
    req.on("error", () => ok(0))
  })

/** Poll `url` until it answers 200; fails early with the process's log tail if the process exits. */
export const waitReady = async (url: string, proc: Proc, opts: { readonly timeoutMs?: number; readonly ca?: string } = {}): Promise<void> => {
  const end = Date.now() + (opts.timeoutMs ?? 120_000)
  let last = 0
  while (Date.now() < end) {
    const { exitCode, signalCode } = proc.child
    if (exitCode !== null || signalCode !== null) {
      throw new Error(`${proc.name} exited (${signalCode ?? exitCode}) before ${url} was ready; log ${proc.logPath}:\n${proc.tail()}`)
    }
    last = await probe(url, opts.ca ? { ca: opts.ca } : {})
    if (last === 200) return
    await new Promise((r) => setTimeout(r, 250))
  }
  throw new Error(`${proc.name}: ${url} not ready in time (last status ${last}); log ${proc.logPath}:\n${proc.tail()}`)
}
