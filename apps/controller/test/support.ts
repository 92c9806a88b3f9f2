/**
 * End-to-end helpers: a real control plane (etcd + kube-apiserver + kube-controller-manager) with the
 * committed CRDs applied by `kubectl apply --server-side`, the standalone GitLab simulator as a
 * process (TLS, its CA given to the generator as caBundle), and `./gldt-controller` as a process.
 * Tests drive everything through kubectl and read GitLab's ground truth from `/_sim`.
 */
import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import { request as httpRequest } from "node:http"
import { request as httpsRequest } from "node:https"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { type Kube, startKube } from "@gldt/testenv"

export const REPO_ROOT = fileURLToPath(new URL("../../../", import.meta.url))
export const CONTROLLER = join(REPO_ROOT, "gldt-controller")
export const CRD_DIR = join(REPO_ROOT, "apps/controller/crds")
const SIM_MAIN = join(REPO_ROOT, "tooling/gitlab-sim/src/main.ts")
const COMPILE_CACHE = join(tmpdir(), "gldt-controller-e2e-compile-cache")

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))

const children = new Set<ChildProcessWithoutNullStreams>()
/** SIGKILLs every process these helpers started that still runs. */
export const killAll = () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL")
  children.clear()
}

// ------------------------------------------------------------------------------------- cluster

/** Starts the control plane and installs the CRDs exactly as the README says. */
export const startCluster = async (): Promise<Kube> => {
  const kube = await startKube({ log: () => undefined })
  try {
    await kube.kubectl(["apply", "--server-side", "-f", CRD_DIR])
    await kube.kubectl(["wait", "--for=condition=Established", "--timeout=60s", "crd", "--all"])
  } catch (e) {
    await kube.stop()
    throw e
  }
  return kube
}

export type Json = Record<string, unknown>

export const getJson = async (kube: Kube, args: ReadonlyArray<string>, namespace?: string): Promise<Json | undefined> => {
  const r = await kube.kubectl(["get", ...args, "-o", "json", "--ignore-not-found"], namespace === undefined ? {} : { namespace })
  return r.stdout.trim() === "" ? undefined : (JSON.parse(r.stdout) as Json)
}

export const apply = (kube: Kube, namespace: string, yaml: string) => kube.kubectl(["apply", "-f", "-"], { namespace, input: yaml })

/** Retries `check` until it stops throwing. */
export const eventually = async <A>(check: () => Promise<A>, timeoutMs = 60_000, everyMs = 250): Promise<A> => {
  const end = Date.now() + timeoutMs
  for (;;) {
    try {
      return await check()
    } catch (e) {
      if (Date.now() > end) throw e
      await sleep(everyMs)
    }
  }
}

export const decode = (b64: unknown): string | undefined => (typeof b64 === "string" ? Buffer.from(b64, "base64").toString("utf8") : undefined)

export const readyCondition = (obj: Json | undefined) =>
  ((obj?.status as { conditions?: Array<{ type: string; status: string; reason?: string; message?: string }> } | undefined)?.conditions ?? []).find(
    (c) => c.type === "Ready",
  )

export interface KubeEvent {
  readonly type: string
  readonly reason: string
  readonly message: string
  readonly involvedObject: { kind: string; name: string }
}

export const events = async (kube: Kube, namespace: string): Promise<KubeEvent[]> =>
  ((await getJson(kube, ["events"], namespace))?.items as KubeEvent[] | undefined) ?? []

// ------------------------------------------------------------------------------------- simulator

export interface SimToken {
  readonly id: number
  readonly name: string
  readonly username: string
  readonly revoked: boolean
  readonly createdBy: "api" | "foreign"
  readonly token: string
  readonly deletedAt?: string
  readonly expiresAt: string | null
}

export interface SimRequest {
  readonly method: string
  readonly path: string
  readonly status: number
}

export interface Sim {
  readonly url: string
  readonly pat: string
  readonly caPem: string
  control<T = unknown>(method: string, path: string, body?: unknown): Promise<T>
  tokens(includeDeleted?: boolean): Promise<SimToken[]>
  requests(): Promise<SimRequest[]>
  stop(): Promise<void>
}

/** Tokens gldt minted that are still live (not revoked, not deleted). */
export const live = (tokens: ReadonlyArray<SimToken>) => tokens.filter((t) => t.createdBy === "api" && !t.revoked && t.deletedAt === undefined)

export const startSim = (): Promise<Sim> =>
  new Promise((resolve, reject) => {
    const dir = mkdtempSync(join(tmpdir(), "gldt-ctl-sim-"))
    const child = spawn(process.execPath, [SIM_MAIN, "--port", "0", "--tls", "--ca-out", join(dir, "ca.pem")], {
      stdio: "pipe",
      env: { PATH: process.env.PATH ?? "" },
    })
    children.add(child)
    let out = ""
    let err = ""
    child.stderr.on("data", (c: Buffer) => {
      err += c.toString()
    })
    const timer = setTimeout(() => reject(new Error(`gitlab-sim did not start: ${err}`)), 20_000)
    child.stdout.on("data", function onData(c: Buffer) {
      out += c.toString()
      const nl = out.indexOf("\n")
      if (nl < 0) return
      clearTimeout(timer)
      child.stdout.off("data", onData)
      const info = JSON.parse(out.slice(0, nl)) as { url: string; pat: string; caPem: string }
      const control = <T>(method: string, path: string, body?: unknown): Promise<T> =>
        new Promise((ok, ko) => {
          const target = new URL(`/_sim/${path.replace(/^\//, "")}`, info.url)
          const payload = body === undefined ? undefined : JSON.stringify(body)
          const req = (target.protocol === "https:" ? httpsRequest : httpRequest)(
            target,
            { method, ca: info.caPem, headers: payload === undefined ? {} : { "content-type": "application/json" } },
            (res) => {
              const chunks: Buffer[] = []
              res.on("data", (d: Buffer) => chunks.push(d))
              res.on("end", () => {
                const text = Buffer.concat(chunks).toString("utf8")
                if ((res.statusCode ?? 0) >= 300) ko(new Error(`${method} /_sim/${path}: ${res.statusCode} ${text}`))
                else ok((text === "" ? undefined : JSON.parse(text)) as T)
              })
            },
          )
          req.on("error", ko)
          req.end(payload)
        })
      resolve({
        ...info,
        control,
        tokens: (includeDeleted = false) => control<SimToken[]>("GET", `tokens${includeDeleted ? "?includeDeleted=true" : ""}`),
        requests: () => control<SimRequest[]>("GET", "requests"),
        stop: async () => {
          if (child.exitCode === null && child.signalCode === null) {
            child.kill("SIGTERM")
            await new Promise((r) => child.once("exit", r))
          }
          rmSync(dir, { recursive: true, force: true })
        },
      })
    })
  })

/** POSTs to deploy_tokens in the request log. */
export const posts = (requests: ReadonlyArray<SimRequest>) => requests.filter((r) => r.method === "POST" && /\/deploy_tokens$/.test(r.path))

// ------------------------------------------------------------------------------------- controller

export interface ControllerProcess {
  readonly child: ChildProcessWithoutNullStreams
  /** Log lines so far (stderr, JSON). */
  logs(): string
  metricsPort(): Promise<number>
  healthPort(): Promise<number>
  /** SIGTERM and wait for exit; returns the exit code. */
  stop(): Promise<number | null>
  kill9(): Promise<void>
  readonly exited: Promise<number | null>
}

export const startController = (kube: Kube, args: ReadonlyArray<string> = [], env: Record<string, string> = {}): ControllerProcess => {
  const child = spawn(
    CONTROLLER,
    ["--kubeconfig", kube.kubeconfig, "--metrics-bind-address", "127.0.0.1:0", "--health-probe-bind-address", "127.0.0.1:0", ...args],
    { stdio: "pipe", env: { PATH: process.env.PATH ?? "", HOME: tmpdir(), NODE_COMPILE_CACHE: COMPILE_CACHE, ...env } },
  )
  children.add(child)
  let log = ""
  child.stderr.on("data", (c: Buffer) => {
    log += c.toString()
  })
  child.stdout.on("data", (c: Buffer) => {
    log += c.toString()
  })
  const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)))
  const portOf = (what: string) =>
    eventually(async () => {
      for (const line of log.split("\n")) {
        if (!line.includes(`serving ${what}`)) continue
        const m = /"port":(\d+)/.exec(line)
        if (m !== null) return Number(m[1])
      }
      if (child.exitCode !== null) throw new Error(`controller exited ${child.exitCode}: ${log}`)
      throw new Error(`controller has not logged "serving ${what}" yet:\n${log}`)
    }, 60_000)
  return {
    child,
    logs: () => log,
    metricsPort: () => portOf("metrics"),
    healthPort: () => portOf("health probes"),
    exited,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM")
      return exited
    },
    kill9: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL")
      await exited
    },
  }
}

export const httpGet = (port: number, path: string): Promise<{ status: number; body: string }> =>
  new Promise((resolve, reject) => {
    const req = httpRequest({ host: "127.0.0.1", port, path, method: "GET" }, (res) => {
      const chunks: Buffer[] = []
      res.on("data", (d: Buffer) => chunks.push(d))
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") }))
    })
    req.on("error", reject)
    req.end()
  })

/** The value of an unlabelled metric in Prometheus text. */
export const metricValue = (text: string, name: string): number | undefined => {
  const m = new RegExp(`^${name} ([0-9.e+-]+)$`, "m").exec(text)
  return m === null ? undefined : Number(m[1])
}

// ------------------------------------------------------------------------------------- manifests

export interface SeedOptions {
  readonly name?: string
  readonly url: string
  /** Put in caBundle; undefined writes the generator exactly as the seed does, with no CA. */
  readonly caPem: string | undefined
  readonly refreshInterval?: string
  readonly revokeGracePeriod?: string
  readonly projectID?: string
  readonly authSecret?: string
  readonly authKey?: string
  readonly extraSpec?: string
  readonly target?: string
  /** spec.name of the deploy token (default "eso-managed", the seed's). */
  readonly tokenName?: string
  /** Trust the simulator's CA through this caProvider instead of caBundle (the Secret or ConfigMap is not created here). */
  readonly caProvider?: { readonly type: "ConfigMap" | "Secret"; readonly name: string; readonly key: string }
}

/** The seed's two manifests (GitlabDeployToken without an expiry + ExternalSecret), pointed at the simulator. */
export const seedManifests = (o: SeedOptions): string => {
  const name = o.name ?? "gitlab-deploy-token"
  return `apiVersion: generators.external-secrets.io/v1alpha1
kind: GitlabDeployToken
metadata:
  name: ${name}
spec:
  url: ${JSON.stringify(o.url)}
  projectID: ${JSON.stringify(o.projectID ?? "group/project")}
  name: ${JSON.stringify(o.tokenName ?? "eso-managed")}
  scopes:
    - read_repository
    - read_registry
  username: "eso"
${
  o.caProvider === undefined
    ? o.caPem === undefined
      ? ""
      : `  caBundle: ${Buffer.from(o.caPem).toString("base64")}\n`
    : `  caProvider:\n    type: ${o.caProvider.type}\n    name: ${o.caProvider.name}\n    key: ${JSON.stringify(o.caProvider.key)}\n`
}${o.revokeGracePeriod === undefined ? "" : `  revokeGracePeriod: ${o.revokeGracePeriod}\n`}${o.extraSpec ?? ""}  auth:
    token:
      secretRef:
        name: ${o.authSecret ?? "gitlab-api-token"}
        key: ${o.authKey ?? "token"}
---
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  name: ${name}
spec:
  refreshInterval: ${JSON.stringify(o.refreshInterval ?? "1h")}
  target:
    name: ${o.target ?? name}
  dataFrom:
    - sourceRef:
        generatorRef:
          apiVersion: generators.external-secrets.io/v1alpha1
          kind: GitlabDeployToken
          name: ${name}
`
}

export const authSecretYaml = (token: string, name = "gitlab-api-token", key = "token") => `apiVersion: v1
kind: Secret
metadata:
  name: ${name}
type: Opaque
stringData:
  ${key}: ${JSON.stringify(token)}
`
