/**
 * The controller on the real apiserver (testenv) and the standalone simulator: time and peak RSS to
 * converge N ExternalSecrets (each with its own GitlabDeployToken, all on one project), GitLab calls
 * per ExternalSecret at first mint, CPU with nothing to do, and the p99 time for a new ExternalSecret
 * to get its Secret while the N others refresh.
 */
import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process"
import { readdirSync, readFileSync, writeFileSync } from "node:fs"
import { request } from "node:http"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { type Kube, startKube } from "@gldt/testenv"

export type Report = (name: string, value: string, limit?: string, ok?: boolean) => void

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))

const startSim = (root: string): Promise<{ child: ChildProcessWithoutNullStreams; url: string; pat: string; caPem: string }> =>
  new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(root, "tooling/gitlab-sim/src/main.ts"), "--port", "0", "--tls"], { stdio: "pipe" })
    let buf = ""
    child.stdout.on("data", function onData(c: Buffer) {
      buf += c.toString()
      if (!buf.includes("\n")) return
      child.stdout.off("data", onData)
      resolve({ child, ...(JSON.parse(buf.split("\n")[0]!) as { url: string; pat: string; caPem: string }) })
    })
    child.once("exit", () => reject(new Error("simulator exited")))
  })

/**
 * The simulator's CA reaches the controller the way most installs give a private CA: once, with
 * --gitlab-ca-file, and generators as the seed writes them (no caBundle). GLDT_BENCH_CA=bundle puts
 * it in every generator's caBundle instead (the controller then holds each generator with a
 * finalizer: one PATCH more per ExternalSecret).
 */
const caInBundle = process.env.GLDT_BENCH_CA === "bundle"

const manifests = (url: string, caPem: string, i: number, refreshInterval: string) => `---
apiVersion: generators.external-secrets.io/v1alpha1
kind: GitlabDeployToken
metadata: { name: gen-${i} }
spec:
  url: ${JSON.stringify(url)}
  projectID: "group/project"
  name: "bench-${i}"
  username: "bench"
  scopes: [read_registry]
  revokeGracePeriod: 5s
${caInBundle ? `  caBundle: ${Buffer.from(caPem).toString("base64")}\n` : ""}  auth: { token: { secretRef: { name: gitlab-api-token, key: token } } }
---
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata: { name: es-${i} }
spec:
  refreshInterval: ${refreshInterval}
  target: { name: secret-${i} }
  dataFrom:
    - sourceRef:
        generatorRef: { apiVersion: generators.external-secrets.io/v1alpha1, kind: GitlabDeployToken, name: gen-${i} }
`

const metricsText = (port: number) =>
  new Promise<string>((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, path: "/metrics" }, (res) => {
      let body = ""
      res.on("data", (c: Buffer) => {
        body += c.toString()
      })
      res.on("end", () => resolve(body))
    })
    req.on("error", reject)
    req.end()
  })

const sumOf = (text: string, name: string) =>
  text
    .split("\n")
    .filter((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `))
    .reduce((s, l) => s + Number(l.slice(l.lastIndexOf(" ") + 1)), 0)

/** utime+stime of a process in clock ticks, its RSS (VmRSS) and its peak RSS (VmHWM) in KiB. */
const procStats = (pid: number) => {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8")
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
  const ticks = Number(fields[11]) + Number(fields[12])
  const status = readFileSync(`/proc/${pid}/status`, "utf8")
  const kib = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)?.[1] ?? 0)
  return { ticks, rssKiB: kib("VmRSS"), peakKiB: kib("VmHWM") }
}

/** The apiserver's request counts by verb and resource, from its own metrics. */
const apiserverRequests = async (kube: Kube): Promise<Map<string, number>> => {
  const r = await kube.kubectl(["get", "--raw", "/metrics"])
  const counts = new Map<string, number>()
  for (const line of r.stdout.split("\n")) {
    if (!line.startsWith("apiserver_request_total{")) continue
    const labels = Object.fromEntries([...line.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]))
    if (labels.verb === "WATCH" || labels.resource === "" || labels.subresource === "exec") continue
    const k = `${labels.verb} ${labels.resource}${labels.subresource ? `/${labels.subresource}` : ""}`
    counts.set(k, (counts.get(k) ?? 0) + Number(line.slice(line.lastIndexOf(" ") + 1)))
  }
  return counts
}

const diffCounts = (after: Map<string, number>, before: Map<string, number>) =>
  new Map([...after].map(([k, v]) => [k, v - (before.get(k) ?? 0)] as const).filter(([, v]) => v > 0))

/** Pids of the processes whose command line mentions `needle` (the testenv dir names its apiserver and etcd). */
const pidsOf = (needle: string): Array<number> => {
  const out: Array<number> = []
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, "utf8").includes(needle)) out.push(Number(entry))
    } catch {
      // exited meanwhile
    }
  }
  return out
}

const cpuTicks = (pids: ReadonlyArray<number>) =>
  pids.reduce((sum, pid) => {
    try {
      return sum + procStats(pid).ticks
    } catch {
      return sum
    }
  }, 0)

const readyCount = async (kube: Kube, ns: string) => {
  const r = await kube.kubectl(["get", "externalsecrets", "-o", 'jsonpath={range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\\n"}{end}'], {
    namespace: ns,
  })
  return r.stdout.split("\n").filter((l) => l === "True").length
}

const controllerEnv = () => ({
  PATH: process.env.PATH ?? "",
  HOME: tmpdir(),
  ...(process.env.GLDT_BENCH_NODE_OPTIONS ? { NODE_OPTIONS: process.env.GLDT_BENCH_NODE_OPTIONS } : {}),
  // 1 benches the TypeScript sources instead of the bundle; other V8 flags than the wrapper's (see ./gldt-controller).
  ...(process.env.GLDT_CONTROLLER_FROM_SOURCE ? { GLDT_CONTROLLER_FROM_SOURCE: process.env.GLDT_CONTROLLER_FROM_SOURCE } : {}),
  ...(process.env.GLDT_CONTROLLER_V8_FLAGS !== undefined ? { GLDT_CONTROLLER_V8_FLAGS: process.env.GLDT_CONTROLLER_V8_FLAGS } : {}),
})

const startController = (root: string, kube: Kube, caFile: string, extra: ReadonlyArray<string> = []) =>
  spawn(
    join(root, "gldt-controller"),
    [
      "--kubeconfig",
      kube.kubeconfig,
      "--metrics-bind-address",
      "127.0.0.1:0",
      "--health-probe-bind-address",
      "0",
      "--concurrency",
      process.env.GLDT_BENCH_CONCURRENCY ?? "64",
      "--gitlab-qps",
      "500",
      "--log-level",
      "info",
      ...(caInBundle ? [] : ["--gitlab-ca-file", caFile]),
      ...extra,
    ],
    { stdio: "pipe", env: controllerEnv() },
  )

/** RSS of a controller that has started, synced its (empty) caches and has nothing to do: what loading the program costs. */
const idleStartRss = async (root: string, kube: Kube, caFile: string, namespace: string) => {
  const c = startController(root, kube, caFile, ["--namespace", namespace])
  let log = ""
  c.stderr.on("data", (d: Buffer) => {
    log += d.toString()
  })
  try {
    const until = performance.now() + 60_000
    while (!log.includes("caches synced")) {
      if (c.exitCode !== null || performance.now() > until) throw new Error(`controller did not sync its caches: ${log.slice(-2000)}`)
      await sleep(200)
    }
    await sleep(3_000)
    return procStats(c.pid!)
  } finally {
    c.kill("SIGTERM")
    await new Promise((r) => (c.exitCode !== null ? r(undefined) : c.once("exit", r)))
  }
}

export const controllerBench = async (root: string, report: Report, n: number) => {
  const kube = await startKube({ log: () => undefined })
  const sim = await startSim(root)
  let controller: ChildProcessWithoutNullStreams | undefined
  try {
    await kube.kubectl(["apply", "--server-side", "-f", join(root, "apps/controller/crds")])
    await kube.kubectl(["wait", "--for=condition=Established", "--timeout=60s", "crd", "--all"])
    const ns = await kube.newNamespace("bench")
    const caFile = join(kube.dir, "gitlab-sim-ca.pem")
    writeFileSync(caFile, sim.caPem)
    report(
      "controller: the simulator's CA is given",
      caInBundle ? "in every generator's caBundle (GLDT_BENCH_CA=bundle)" : "by --gitlab-ca-file (generators as the seed writes them)",
    )
    const atStart = await idleStartRss(root, kube, caFile, ns)
    report(
      "controller: RSS after start, caches synced, nothing to do",
      `${(atStart.rssKiB / 1024).toFixed(0)} MiB (peak ${(atStart.peakKiB / 1024).toFixed(0)} MiB)`,
    )
    await kube.kubectl(["create", "secret", "generic", "gitlab-api-token", `--from-literal=token=${sim.pat}`], { namespace: ns })
    // Create the objects before the controller starts, in chunks (kubectl reads the whole file).
    for (let start = 0; start < n; start += 250) {
      const docs = Array.from({ length: Math.min(250, n - start) }, (_, j) => manifests(sim.url, sim.caPem, start + j, "1h")).join("")
      await kube.kubectl(["create", "-f", "-"], { namespace: ns, input: docs, timeoutMs: 300_000 })
    }
    controller = startController(root, kube, caFile)
    let log = ""
    controller.stderr.on("data", (c: Buffer) => {
      // Keep the start (the metrics port) and the tail (errors), not every mint's line.
      log = log.length < 20_000 ? log + c.toString() : log.slice(0, 10_000) + (log.slice(10_000) + c.toString()).slice(-10_000)
    })
    const requestsBefore = await apiserverRequests(kube)
    const started = performance.now()
    const pid = controller.pid!
    // Where the CPU goes while converging (2 cores are shared by all of them and the bench).
    const ours = pidsOf(kube.dir)
    const named = (binary: string) => pidsOf(binary).filter((p) => ours.includes(p))
    const parts = {
      controller: [pid],
      "kube-apiserver": named("kube-apiserver-"),
      etcd: named("etcd-v"),
      "kube-controller-manager": named("kube-controller-manager-"),
      simulator: [sim.child.pid!],
    }
    const ticksBefore = Object.fromEntries(Object.entries(parts).map(([k, v]) => [k, cpuTicks(v)]))
    let port: number | undefined
    let converged = 0
    for (;;) {
      await sleep(250)
      if (controller.exitCode !== null) throw new Error(`controller exited: ${log.slice(-2000)}`)
      port ??= Number(/"serving metrics".*?"port":(\d+)/.exec(log)?.[1] ?? /serving metrics.*?port=(\d+)/.exec(log)?.[1]) || undefined
      // Listing 1,000 ExternalSecrets with kubectl costs the apiserver more than a reconcile: ask the
      // controller's counter first, and list only once every ExternalSecret could be Ready.
      if (port !== undefined && performance.now() - started < 600_000) {
        const minted = sumOf(await metricsText(port).catch(() => ""), "gldt_tokens_minted_total")
        if (minted < n) continue
      }
      const ready = await readyCount(kube, ns)
      if (ready >= n) {
        converged = (performance.now() - started) / 1000
        break
      }
      if (performance.now() - started > 600_000) {
        report(`controller: converge ${n} ExternalSecrets`, `only ${ready}/${n} Ready after 600 s`, "30 s", false)
        const peak = procStats(pid).peakKiB / 1024
        report("controller: peak RSS meanwhile", `${peak.toFixed(0)} MiB`, "150 MiB", peak < 150)
        if (port !== undefined && ready > 0) {
          const calls = sumOf(await metricsText(port), "gldt_gitlab_requests_total")
          report("controller: GitLab calls per Ready ExternalSecret so far", (calls / ready).toFixed(2), "2", calls / ready <= 2)
        }
        return
      }
    }
    const afterConverge = await metricsText(port!)
    const calls = sumOf(afterConverge, "gldt_gitlab_requests_total")
    const peakMiB = procStats(pid).peakKiB / 1024
    report(`controller: converge ${n} ExternalSecrets`, `${converged.toFixed(1)} s`, "30 s", converged < 30)
    report("controller: peak RSS while converging", `${peakMiB.toFixed(0)} MiB`, "150 MiB", peakMiB < 150)
    report(
      "controller: CPU seconds spent while converging",
      Object.entries(parts)
        .map(([k, v]) => `${k} ${((cpuTicks(v) - ticksBefore[k]!) / 100).toFixed(1)}`)
        .join(", "),
    )
    report("controller: GitLab calls per ExternalSecret (first mint)", (calls / n).toFixed(2), "2", calls / n <= 2)
    // Includes the bench's own polling (a few lists of ExternalSecrets at the end).
    const requests = diffCounts(await apiserverRequests(kube), requestsBefore)
    const total = [...requests.values()].reduce((a, b) => a + b, 0)
    const top = [...requests]
      .sort((a, b) => b[1] - a[1])
      .slice(0, 8)
      .map(([k, v]) => `${k} ${(v / n).toFixed(2)}`)
      .join(", ")
    report("controller: Kubernetes API requests per ExternalSecret (first mint)", `${(total / n).toFixed(1)} (${top})`)
    // Idle: every token is fresh (refreshInterval 1h), nothing is due.
    await sleep(5_000)
    const t0 = procStats(pid).ticks
    await sleep(20_000)
    const idle = ((procStats(pid).ticks - t0) / 100 / 20) * 100
    report("controller: CPU with nothing to do (20 s)", `${idle.toFixed(1)} % of one core`)
    // New ExternalSecrets while the others refresh: a force-sync annotation asks all of them for a new token.
    await kube.kubectl(["annotate", "externalsecrets", "--all", `force-sync=${Date.now()}`, "--overwrite"], { namespace: ns, timeoutMs: 300_000 })
    const latencies: number[] = []
    for (let k = 0; k < 20; k++) {
      const i = n + k
      const t = performance.now()
      await kube.kubectl(["create", "-f", "-"], { namespace: ns, input: manifests(sim.url, sim.caPem, i, "1h") })
      for (;;) {
        const r = await kube.kubectl(["get", "secret", `secret-${i}`, "--ignore-not-found", "-o", "name"], { namespace: ns })
        if (r.stdout.trim() !== "") break
        if (performance.now() - t > 120_000) break
        await sleep(100)
      }
      latencies.push((performance.now() - t) / 1000)
    }
    const sorted = [...latencies].sort((a, b) => a - b)
    console.log(`  latencies: ${sorted.map((l) => l.toFixed(2)).join(" ")}`)
    const p99 = sorted[Math.min(sorted.length - 1, Math.ceil(sorted.length * 0.99) - 1)]!
    report(`controller: new ExternalSecret → Secret, p99 of 20 while ${n} rotate`, `${p99.toFixed(2)} s`, "5 s", p99 < 5)
    const minted = sumOf(await metricsText(port!), "gldt_tokens_minted_total")
    report("controller: rotations done meanwhile (force-sync)", String(minted - n - 20))
  } finally {
    if (controller !== undefined && controller.exitCode === null) {
      controller.kill("SIGTERM")
      await new Promise((r) => controller!.once("exit", r))
    }
    sim.child.kill("SIGTERM")
    await kube.stop()
  }
}
