/**
 * A real, throw-away Kubernetes control plane on loopback: etcd + kube-apiserver
 * (+ kube-controller-manager by default), no scheduler, no kubelet.
 */
import { spawn } from "node:child_process"
import { randomBytes } from "node:crypto"
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { type Log, stderrLog, type ToolName, ensureTools, toolInfo } from "./build.ts"
import { findOpenssl, makePki, makeServiceAccountKeys } from "./certs.ts"
import { freePorts, type Proc, startProc, waitReady } from "./proc.ts"

export interface KubectlOptions {
  /** Written to kubectl's stdin (e.g. a manifest for `apply -f -`). */
  readonly input?: string
  /** Adds `--namespace`. */
  readonly namespace?: string
  /** Reject on a non-zero exit (default true). With false, inspect `code`. */
  readonly reject?: boolean
  /** Kill kubectl after this many ms (default 120000). */
  readonly timeoutMs?: number
}

export interface KubectlResult {
  readonly stdout: string
  readonly stderr: string
  readonly code: number
}

export interface Kube {
  /** Path of a kubeconfig for the admin user (token auth, group system:masters). */
  readonly kubeconfig: string
  /** `https://127.0.0.1:<port>` */
  readonly server: string
  /** Bearer token of the admin user. */
  readonly token: string
  /** PEM of the CA that signed the API server's serving certificate. */
  readonly caPem: string
  /** Kubernetes version of the binaries, e.g. `v1.37.2`. */
  readonly version: string
  /** Whether kube-controller-manager runs (garbage collection, namespace deletion, service accounts). */
  readonly controllerManager: boolean
  /** Temporary directory holding data, keys and logs (`<dir>/logs/*.log`). */
  readonly dir: string
  /** Absolute path of the kubectl binary. */
  readonly kubectlPath: string
  /** Run kubectl against this cluster as the admin user. */
  kubectl(args: ReadonlyArray<string>, opts?: KubectlOptions): Promise<KubectlResult>
  /** Create a namespace `<prefix>-<random>` and return its name. */
  newNamespace(prefix?: string): Promise<string>
  /** Stop every process (controller-manager, apiserver, etcd) and delete `dir` unless kept. */
  stop(): Promise<void>
}

export interface StartKubeOptions {
  /** Also run kube-controller-manager (default true; `GLDT_TESTENV_NO_KCM=1` turns it off). */
  readonly controllerManager?: boolean
  /** Progress lines (default: stderr). */
  readonly log?: Log
  /** Keep the temp dir after stop() (default: `GLDT_TESTENV_KEEP=1`). */
  readonly keepDir?: boolean
  /** Extra kube-apiserver flags, e.g. `["--feature-gates=..."]`. */
  readonly apiserverArgs?: ReadonlyArray<string>
  /** Readiness timeout per component in ms (default 120000). */
  readonly readyTimeoutMs?: number
}

/** Service CIDR; `10.0.0.1` is the `kubernetes` Service IP (in the serving cert's SANs). */
export const SERVICE_CLUSTER_IP_RANGE = "10.0.0.0/24"

const dnsLabel = (s: string): string =>
  s
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, "-")
    .replace(/^-+|-+$/g, "")
    .slice(0, 50) || "t"

const runKubectl = (bin: string, kubeconfig: string, args: ReadonlyArray<string>, opts: KubectlOptions): Promise<KubectlResult> =>
  new Promise((ok, ko) => {
    const full = ["--kubeconfig", kubeconfig, ...(opts.namespace ? ["--namespace", opts.namespace] : []), ...args]
    const child = spawn(bin, full, {
      stdio: ["pipe", "pipe", "pipe"],
      env: { ...process.env, KUBECONFIG: kubeconfig },
      timeout: opts.timeoutMs ?? 120_000,
    })
    let stdout = ""
    let stderr = ""
    child.stdout.setEncoding("utf8").on("data", (d: string) => {
      stdout += d
    })
    child.stderr.setEncoding("utf8").on("data", (d: string) => {
      stderr += d
    })
    child.on("error", ko)
    child.on("close", (code, signal) => {
      const result = { stdout, stderr, code: code ?? 128 }
      if (code !== 0 && opts.reject !== false) {
        ko(new Error(`kubectl ${args.join(" ")} failed (${signal ?? `exit ${code}`}): ${stderr.trim() || stdout.trim()}`))
      } else ok(result)
    })
    child.stdin.on("error", () => {
      // kubectl may exit before reading stdin; its exit status tells what happened
    })
    child.stdin.end(opts.input ?? "")
  })

/**
 * Start etcd, kube-apiserver and (by default) kube-controller-manager on free loopback ports,
 * building any missing binary first (cold: tens of minutes; cached: nothing to do).
 */
export const startKube = async (opts: StartKubeOptions = {}): Promise<Kube> => {
  const log = opts.log ?? stderrLog
  const withKcm = opts.controllerManager ?? process.env.GLDT_TESTENV_NO_KCM !== "1"
  const keep = opts.keepDir ?? process.env.GLDT_TESTENV_KEEP === "1"
  const readyTimeoutMs = opts.readyTimeoutMs ?? 120_000
  const tools: Array<ToolName> = ["etcd", "kube-apiserver", "kubectl", ...(withKcm ? (["kube-controller-manager"] as const) : [])]
  const bins = await ensureTools(tools, { log })
  const version = (await toolInfo("kube-apiserver")).version

  const dir = await mkdtemp(join(tmpdir(), "gldt-testenv-"))
  const pki = join(dir, "pki")
  const logs = join(dir, "logs")
  await mkdir(pki, { recursive: true })
  await mkdir(logs, { recursive: true })
  const procs: Array<Proc> = []
  const stopAll = async () => {
    for (const p of procs.reverse()) await p.stop()
    procs.length = 0
  }

  try {
    const [etcdClient, etcdPeer, apiPort, kcmPort] = await freePorts(4)
    const server = `https://127.0.0.1:${apiPort}`

    log(`starting etcd on 127.0.0.1:${etcdClient} (data ${dir}/etcd)`)
    const etcd = startProc(
      "etcd",
      bins.etcd,
      [
        "--name=testenv",
        `--data-dir=${join(dir, "etcd")}`,
        `--listen-client-urls=http://127.0.0.1:${etcdClient}`,
        `--advertise-client-urls=http://127.0.0.1:${etcdClient}`,
        `--listen-peer-urls=http://127.0.0.1:${etcdPeer}`,
        `--initial-advertise-peer-urls=http://127.0.0.1:${etcdPeer}`,
        `--initial-cluster=testenv=http://127.0.0.1:${etcdPeer}`,
        "--unsafe-no-fsync",
        "--log-level=warn",
      ],
      { logPath: join(logs, "etcd.log") },
    )
    procs.push(etcd)

    // Key material while etcd boots.
    const opensslBin = findOpenssl()
    const certs = opensslBin ? await makePki(opensslBin, pki) : undefined
    if (!certs) log("no openssl (GLDT_OPENSSL=none or not on PATH): kube-apiserver self-signs its serving certificate")
    const sa = await makeServiceAccountKeys(pki)
    const token = randomBytes(24).toString("hex")
    const tokens = join(pki, "tokens.csv")
    await writeFile(tokens, `${token},admin,admin-uid,"system:masters"\n`, { mode: 0o600 })

    await waitReady(`http://127.0.0.1:${etcdClient}/health`, etcd, { timeoutMs: readyTimeoutMs })

    log(`starting kube-apiserver ${version} on ${server}`)
    const api = startProc(
      "kube-apiserver",
      bins["kube-apiserver"],
      [
        `--etcd-servers=http://127.0.0.1:${etcdClient}`,
        "--bind-address=127.0.0.1",
        "--advertise-address=127.0.0.1",
        `--secure-port=${apiPort}`,
        ...(certs
          ? [`--tls-cert-file=${certs.servingCert}`, `--tls-private-key-file=${certs.servingKey}`, `--client-ca-file=${certs.caCert}`]
          : [`--cert-dir=${join(pki, "self-signed")}`]),
        `--token-auth-file=${tokens}`,
        "--authorization-mode=RBAC",
        `--service-account-issuer=${server}`,
        `--service-account-key-file=${sa.publicKey}`,
        `--service-account-signing-key-file=${sa.privateKey}`,
        `--service-cluster-ip-range=${SERVICE_CLUSTER_IP_RANGE}`,
        // No pods run here; without this, a Pod created right after its namespace could race the
        // service-account controller's `default` account (envtest makes the same choice).
        "--disable-admission-plugins=ServiceAccount",
        "--allow-privileged=true",
        // Loopback addresses are invalid Endpoints; skip reconciling the `kubernetes` Service's endpoints.
        "--endpoint-reconciler-type=none",
        // GLDT_TESTENV_PROFILING=1 serves /debug/pprof (to see where the apiserver's CPU goes in a bench).
        process.env.GLDT_TESTENV_PROFILING === "1" ? "--profiling=true" : "--profiling=false",
        ...(opts.apiserverArgs ?? []),
      ],
      { logPath: join(logs, "kube-apiserver.log") },
    )
    procs.push(api)
    // Until /readyz answers the serving cert may not exist (self-signed case); verify TLS afterwards.
    await waitReady(`${server}/readyz`, api, { timeoutMs: readyTimeoutMs })
    const caPem = certs ? certs.caPem : await readFile(join(pki, "self-signed", "apiserver.crt"), "utf8")
    const caFile = certs ? certs.caCert : join(pki, "self-signed", "apiserver.crt")
    await waitReady(`${server}/readyz`, api, { timeoutMs: readyTimeoutMs, ca: caPem })

    const kubeconfig = join(dir, "kubeconfig")
    await writeFile(
      kubeconfig,
      `${JSON.stringify(
        {
          apiVersion: "v1",
          kind: "Config",
          clusters: [{ name: "testenv", cluster: { server, "certificate-authority-data": Buffer.from(caPem).toString("base64") } }],
          users: [{ name: "admin", user: { token } }],
          contexts: [{ name: "testenv", context: { cluster: "testenv", user: "admin" } }],
          "current-context": "testenv",
        },
        null,
        2,
      )}\n`,
      { mode: 0o600 },
    )

    if (withKcm) {
      log(`starting kube-controller-manager (health on 127.0.0.1:${kcmPort})`)
      const kcm = startProc(
        "kube-controller-manager",
        bins["kube-controller-manager"],
        [
          `--kubeconfig=${kubeconfig}`,
          `--authentication-kubeconfig=${kubeconfig}`,
          `--authorization-kubeconfig=${kubeconfig}`,
          // Its own /healthz needs no client CA; skip reading the (absent) request-header CA bundle.
          "--authentication-skip-lookup=true",
          "--bind-address=127.0.0.1",
          `--secure-port=${kcmPort}`,
          `--cert-dir=${join(pki, "kcm")}`,
          "--leader-elect=false",
          `--service-account-private-key-file=${sa.privateKey}`,
          `--root-ca-file=${caFile}`,
          ...(certs ? [`--cluster-signing-cert-file=${certs.caCert}`, `--cluster-signing-key-file=${certs.caKey}`] : []),
          `--service-cluster-ip-range=${SERVICE_CLUSTER_IP_RANGE}`,
          "--profiling=false",
        ],
        { logPath: join(logs, "kube-controller-manager.log") },
      )
      procs.push(kcm)
      await waitReady(`https://127.0.0.1:${kcmPort}/healthz`, kcm, { timeoutMs: readyTimeoutMs })
    }

    const kubectl = (args: ReadonlyArray<string>, o: KubectlOptions = {}) => runKubectl(bins.kubectl, kubeconfig, args, o)
    let stopped = false
    const kube: Kube = {
      kubeconfig,
      server,
      token,
      caPem,
      version,
      controllerManager: withKcm,
      dir,
      kubectlPath: bins.kubectl,
      kubectl,
      newNamespace: async (prefix = "t") => {
        const name = `${dnsLabel(prefix)}-${randomBytes(4).toString("hex")}`
        await kubectl(["create", "namespace", name])
        return name
      },
      stop: async () => {
        if (stopped) return
        stopped = true
        await stopAll()
        if (!keep) await rm(dir, { recursive: true, force: true })
        else log(`kept ${dir}`)
      },
    }
    log(`ready: ${server} (${withKcm ? "etcd, kube-apiserver, kube-controller-manager" : "etcd, kube-apiserver"})`)
    return kube
  } catch (e) {
    await stopAll()
    if (!keep) await rm(dir, { recursive: true, force: true })
    throw e
  }
}
