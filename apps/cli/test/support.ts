/**
 * Helpers for the end-to-end tests: the standalone GitLab simulator as a subprocess, the real `./gldt`
 * wrapper as a subprocess with captured output, ground-truth reads, manifests and state files.
 */
import { type ChildProcess, type ChildProcessWithoutNullStreams, spawn } from "node:child_process"
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs"
import { request as httpRequest } from "node:http"
import { request as httpsRequest } from "node:https"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { seededRandom } from "@gldt/gitlab-sim"

export const REPO_ROOT = fileURLToPath(new URL("../../../", import.meta.url))
/** The wrapper a user runs. */
export const GLDT = join(REPO_ROOT, "gldt")
const SIM_MAIN = join(REPO_ROOT, "tooling/gitlab-sim/src/main.ts")
export const FIXTURES = fileURLToPath(new URL("./fixtures/", import.meta.url))

/** Node's compile cache roughly halves gldt's start-up (module loading dominates it); it changes no behaviour. */
const COMPILE_CACHE = join(tmpdir(), "gldt-cli-e2e-compile-cache")

// ---------------------------------------------------------------------------------------- processes

const live = new Set<ChildProcess>()

const track = <C extends ChildProcess>(child: C): C => {
  live.add(child)
  child.once("exit", () => live.delete(child))
  return child
}

/** SIGKILLs every subprocess these helpers started that is still running (for afterAll / finally). */
export const killStragglers = (): void => {
  for (const child of live) {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL")
  }
  live.clear()
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

// ---------------------------------------------------------------------------------------- temp dirs

const temps: string[] = []

/** A fresh directory under the system temp dir; removed by `removeTempDirs`. */
export const tempDir = (prefix: string): string => {
  const dir = mkdtempSync(join(tmpdir(), `gldt-e2e-${prefix}-`))
  temps.push(dir)
  return dir
}

export const removeTempDirs = (): void => {
  for (const dir of temps.splice(0)) rmSync(dir, { recursive: true, force: true })
}

/** Every regular file below `dir` (recursively), with its content. */
export const filesUnder = (dir: string): Array<{ path: string; content: string }> => {
  if (!existsSync(dir)) return []
  const out: Array<{ path: string; content: string }> = []
  for (const name of readdirSync(dir)) {
    const path = join(dir, name)
    const st = statSync(path)
    if (st.isDirectory()) out.push(...filesUnder(path))
    else if (st.isFile()) out.push({ path, content: readFileSync(path, "latin1") })
  }
  return out
}

// ---------------------------------------------------------------------------------------- simulator

export interface SimToken {
  readonly id: number
  readonly type: "project" | "group"
  readonly ownerId: number
  readonly ownerPath: string
  readonly name: string
  readonly username: string
  readonly scopes: ReadonlyArray<string>
  readonly expiresAt: string | null
  readonly revoked: boolean
  readonly active: boolean
  readonly createdBy: "api" | "foreign"
  readonly createdAt: string
  readonly token: string
  readonly deletedAt?: string
}

export interface SimRequest {
  readonly seq: number
  readonly method: string
  readonly path: string
  readonly query: string
  readonly status: number
  readonly durationMs: number
  readonly fault: string | null
}

export interface Sim {
  readonly url: string
  readonly apiUrl: string
  readonly pat: string
  /** Path of the CA PEM (TLS only). */
  readonly ca: string | null
  readonly caPem: string | null
  readonly child: ChildProcessWithoutNullStreams
  /** Calls a `/_sim/…` control endpoint and returns the parsed JSON (undefined for 204). */
  control<T = unknown>(method: string, path: string, body?: unknown): Promise<T>
  /** Ground truth: every token that exists (with `includeDeleted`, deleted ones too). */
  tokens(includeDeleted?: boolean): Promise<SimToken[]>
  requests(): Promise<SimRequest[]>
  clearRequests(): Promise<void>
  addFault(rule: Record<string, unknown>): Promise<string>
  clearFaults(): Promise<void>
  foreignToken(input: {
    target: string | { project: number | string } | { group: number | string }
    name: string
    username?: string
    scopes: string[]
    expiresAt?: string
  }): Promise<{ id: number; token: string }>
  /** SIGTERM, then SIGKILL if it has not exited after 5 s. */
  stop(): Promise<void>
}

/** Live (not deleted, not revoked) tokens gldt made through the API. */
export const liveGldtTokens = (tokens: ReadonlyArray<SimToken>) => tokens.filter((t) => t.createdBy === "api" && !t.revoked && t.deletedAt === undefined)

/**
 * Starts `node tooling/gitlab-sim/src/main.ts --port 0 [--tls --ca-out DIR/ca.pem]` and parses the JSON line
 * it prints once it listens.
 */
export const startSim = (opts: { tls: boolean; dir: string; seed?: number }): Promise<Sim> =>
  new Promise((resolve, reject) => {
    const caOut = join(opts.dir, "sim-ca.pem")
    const args = [SIM_MAIN, "--port", "0", "--seed", String(opts.seed ?? 1), ...(opts.tls ? ["--tls", "--ca-out", caOut] : [])]
    const child = track(spawn(process.execPath, args, { stdio: "pipe", env: { PATH: process.env.PATH ?? "" } }))
    let out = ""
    let err = ""
    const timer = setTimeout(() => {
      child.kill("SIGKILL")
      reject(new Error(`gitlab-sim printed no JSON line within 20 s; stderr: ${err}`))
    }, 20_000)
    const onEarlyExit = (code: number | null) => {
      clearTimeout(timer)
      reject(new Error(`gitlab-sim exited early (${code}): ${err}`))
    }
    child.stderr.on("data", (c: Buffer) => {
      err += c.toString()
    })
    child.once("exit", onEarlyExit)
    const onData = (c: Buffer) => {
      out += c.toString()
      const nl = out.indexOf("\n")
      if (nl < 0) return
      clearTimeout(timer)
      child.stdout.off("data", onData)
      child.off("exit", onEarlyExit)
      const info = JSON.parse(out.slice(0, nl)) as { url: string; apiUrl: string; pat: string; ca: string | null; caPem: string | null }
      resolve(simClient(child, info))
    }
    child.stdout.on("data", onData)
  })

const simClient = (child: ChildProcessWithoutNullStreams, info: { url: string; apiUrl: string; pat: string; ca: string | null; caPem: string | null }): Sim => {
  const control = <T>(method: string, path: string, body?: unknown): Promise<T> =>
    new Promise((resolve, reject) => {
      const target = new URL(`/_sim/${path.replace(/^\//, "")}`, info.url)
      const payload = body === undefined ? undefined : JSON.stringify(body)
      const options = {
        method,
        headers: payload === undefined ? {} : { "content-type": "application/json", "content-length": Buffer.byteLength(payload) },
        ...(info.caPem === null ? {} : { ca: info.caPem }),
      }
      const req = (target.protocol === "https:" ? httpsRequest : httpRequest)(target, options, (res) => {
        const chunks: Buffer[] = []
        res.on("data", (c: Buffer) => chunks.push(c))
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8")
          if ((res.statusCode ?? 0) >= 300) reject(new Error(`${method} /_sim/${path}: ${res.statusCode} ${text}`))
          else resolve((text === "" ? undefined : JSON.parse(text)) as T)
        })
      })
      req.on("error", reject)
      req.end(payload)
    })
  return {
    ...info,
    child,
    control,
    tokens: (includeDeleted = false) => control<SimToken[]>("GET", `tokens${includeDeleted ? "?includeDeleted=true" : ""}`),
    requests: () => control<SimRequest[]>("GET", "requests"),
    clearRequests: () => control<void>("DELETE", "requests"),
    addFault: async (rule) => (await control<{ id: string }>("POST", "faults", rule)).id,
    clearFaults: () => control<void>("DELETE", "faults"),
    foreignToken: (input) => control<{ id: number; token: string }>("POST", "foreign-tokens", input),
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve()
        const force = setTimeout(() => child.kill("SIGKILL"), 5_000)
        child.once("exit", () => {
          clearTimeout(force)
          resolve()
        })
        child.kill("SIGTERM")
      }),
  }
}

// ---------------------------------------------------------------------------------------- gldt

export interface GldtResult {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  readonly stdout: string
  readonly stderr: string
  /** Wall time from spawn to exit, ms. */
  readonly ms: number
}

export interface GldtOptions {
  readonly cwd: string
  /** Extra environment (e.g. GITLAB_TOKEN). The base environment is only PATH, HOME and the compile cache. */
  readonly env?: Record<string, string | undefined>
  /** SIGKILL after this long (default 120 s); the result then has signal SIGKILL. */
  readonly timeoutMs?: number
}

export interface GldtProcess {
  readonly child: ChildProcessWithoutNullStreams
  readonly startedAt: number
  /** Resolves when the process has exited and its output is drained. */
  readonly done: Promise<GldtResult>
  /** Output captured so far. */
  readonly output: () => { stdout: string; stderr: string }
}

/** Spawns `./gldt ARGS` without waiting. */
export const spawnGldt = (args: ReadonlyArray<string>, opts: GldtOptions): GldtProcess => {
  const env: Record<string, string> = { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: opts.cwd, NODE_COMPILE_CACHE: COMPILE_CACHE }
  for (const [k, v] of Object.entries(opts.env ?? {})) {
    if (v === undefined) delete env[k]
    else env[k] = v
  }
  const startedAt = performance.now()
  const child = track(spawn(GLDT, [...args], { cwd: opts.cwd, env, stdio: "pipe" }))
  const out: Buffer[] = []
  const err: Buffer[] = []
  child.stdout.on("data", (c: Buffer) => out.push(c))
  child.stderr.on("data", (c: Buffer) => err.push(c))
  const done = new Promise<GldtResult>((resolve, reject) => {
    const timer = setTimeout(() => child.kill("SIGKILL"), opts.timeoutMs ?? 120_000)
    child.once("error", (e) => {
      clearTimeout(timer)
      reject(e)
    })
    child.once("close", (code, signal) => {
      clearTimeout(timer)
      resolve({
        code,
        signal,
        stdout: Buffer.concat(out).toString("utf8"),
        stderr: Buffer.concat(err).toString("utf8"),
        ms: performance.now() - startedAt,
      })
    })
  })
  return {
    child,
    startedAt,
    done,
    output: () => ({ stdout: Buffer.concat(out).toString("utf8"), stderr: Buffer.concat(err).toString("utf8") }),
  }
}

/** Runs `./gldt ARGS` to completion. */
export const gldt = (args: ReadonlyArray<string>, opts: GldtOptions): Promise<GldtResult> => spawnGldt(args, opts).done

/** A one-line description of a result for assertion messages. */
export const show = (r: GldtResult) => `exit ${r.code}${r.signal ? ` (${r.signal})` : ""}\n--- stdout\n${r.stdout}--- stderr\n${r.stderr}`

// ---------------------------------------------------------------------------------------- manifests

export interface ManifestOptions {
  readonly url: string
  /** metadata.name, which is also the state key (default "e2e"). */
  readonly name?: string
  /** spec.name of the deploy token (default "eso-managed"). */
  readonly tokenName?: string
  /** spec.username (default "eso"); null leaves it out. */
  readonly username?: string | null
  readonly projectID?: string
  readonly groupID?: string
  readonly scopes?: ReadonlyArray<string>
  /** Go duration (default "720h"); null leaves it out. */
  readonly expiresAfter?: string | null
  /** Adds an ExternalSecret referencing the generator with this refreshInterval. */
  readonly refreshInterval?: string
  readonly kind?: string
}

const q = (s: string) => JSON.stringify(s)

export const manifestYaml = (o: ManifestOptions): string => {
  const name = o.name ?? "e2e"
  const lines = [
    "apiVersion: generators.external-secrets.io/v1alpha1",
    `kind: ${o.kind ?? "GitlabDeployToken"}`,
    "metadata:",
    `  name: ${q(name)}`,
    "spec:",
    `  url: ${q(o.url)}`,
  ]
  if (o.projectID !== undefined || o.groupID === undefined) lines.push(`  projectID: ${q(o.projectID ?? "group/project")}`)
  if (o.groupID !== undefined) lines.push(`  groupID: ${q(o.groupID)}`)
  lines.push(`  name: ${q(o.tokenName ?? "eso-managed")}`, "  scopes:")
  for (const s of o.scopes ?? ["read_repository", "read_registry"]) lines.push(`    - ${s}`)
  const expiresAfter = o.expiresAfter === undefined ? "720h" : o.expiresAfter
  if (expiresAfter !== null) lines.push(`  expiresAfter: ${q(expiresAfter)}`)
  const username = o.username === undefined ? "eso" : o.username
  if (username !== null) lines.push(`  username: ${q(username)}`)
  lines.push("  auth:", "    token:", "      secretRef:", "        name: gitlab-api-token", "        key: token")
  if (o.refreshInterval !== undefined) {
    lines.push(
      "---",
      "apiVersion: external-secrets.io/v1",
      "kind: ExternalSecret",
      "metadata:",
      `  name: ${q(name)}`,
      "spec:",
      `  refreshInterval: ${q(o.refreshInterval)}`,
      "  target:",
      `    name: ${q(name)}`,
      "  dataFrom:",
      "    - sourceRef:",
      "        generatorRef:",
      "          apiVersion: generators.external-secrets.io/v1alpha1",
      "          kind: GitlabDeployToken",
      `          name: ${q(name)}`,
    )
  }
  return `${lines.join("\n")}\n`
}

/** Writes a manifest into `dir` and returns its path. */
export const writeManifest = (dir: string, o: ManifestOptions, file = "manifest.yaml"): string => {
  mkdirSync(dir, { recursive: true })
  const path = join(dir, file)
  writeFileSync(path, manifestYaml(o))
  return path
}

// ---------------------------------------------------------------------------------------- state and sink

export interface StateRecordDoc {
  readonly key: string
  readonly generation: number
  readonly current?: { readonly id: number; readonly createdAt: number }
  readonly pending?: { readonly id: number }
  readonly retiring: ReadonlyArray<{ readonly id: number; readonly revokeAfter?: number; readonly lastError?: string }>
  readonly intent?: { readonly generation: number; readonly createdAt: number }
  readonly suspects: ReadonlyArray<{ readonly id: number }>
}

/** The state document of a key whose name needs no escaping ([a-z0-9_-]); undefined when there is none. */
export const readState = (stateDir: string, key: string): StateRecordDoc | undefined => {
  if (!/^[a-z0-9_-]+$/.test(key)) throw new Error(`readState: key ${key} needs escaping; use a simple key in tests`)
  const path = join(stateDir, `${key}.json`)
  if (!existsSync(path)) return undefined
  return (JSON.parse(readFileSync(path, "utf8")) as { record: StateRecordDoc }).record
}

/** Every token id the record tracks: current, pending, retiring and suspects. */
export const trackedIds = (r: StateRecordDoc | undefined): Set<number> =>
  new Set(
    r === undefined
      ? []
      : [...(r.current ? [r.current.id] : []), ...(r.pending ? [r.pending.id] : []), ...r.retiring.map((t) => t.id), ...r.suspects.map((s) => s.id)],
  )

/** Reads an env-format sink file. */
export const readEnvSink = (path: string): { username: string; token: string; tokenId: number } => {
  const vars = Object.fromEntries(
    readFileSync(path, "utf8")
      .split("\n")
      .filter((l) => l.includes("="))
      .map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]),
  ) as Record<string, string | undefined>
  return { username: vars.GITLAB_DEPLOY_USERNAME ?? "", token: vars.GITLAB_DEPLOY_TOKEN ?? "", tokenId: Number(vars.GITLAB_DEPLOY_TOKEN_ID) }
}

// ---------------------------------------------------------------------------------------- misc

/** The simulator's seeded PRNG, so kill timings are reproducible. */
export const seededRng = seededRandom

export const median = (xs: ReadonlyArray<number>): number => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length === 0 ? Number.NaN : s[Math.floor(s.length / 2)]!
}
