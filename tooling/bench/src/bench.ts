#!/usr/bin/env node
/**
 * `pnpm bench`: prints GitLab calls per rotation and per no-op reconcile (limits 2 and 0), the call
 * budget of a long-running `runForever` while a revocation fails for good (calls per simulated hour,
 * limit 10), lifecycle rotations per second against the in-process simulator, and the CLI's wall
 * times against the standalone simulator. Exits 1 if a call-count limit is broken.
 */
import { execFile, spawn } from "node:child_process"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join, resolve } from "node:path"
import { promisify } from "node:util"
import { type Job, reconcile, rotate } from "@gldt/core/Lifecycle"
import { runForever } from "@gldt/core/Runner"
import * as Sink from "@gldt/core/Sink"
import { validateSpec } from "@gldt/core/Spec"
import * as State from "@gldt/core/State"
import { layer as gitlabLayer } from "@gldt/gitlab/GitLabClient"
import { startSimulator } from "@gldt/gitlab-sim"
import { addMaintainedProject, OffsetClock } from "@gldt/fault-suite/SimWorld"
import { Clock, Effect, Layer, Logger, Redacted, References } from "effect"
import { vaultPlugin } from "./vault.ts"
import { controllerBench } from "./controller.ts"

const root = resolve(import.meta.dirname, "../../..")
const run = promisify(execFile)
const results: Array<{ name: string; value: string; limit?: string; ok?: boolean }> = []
const report = (name: string, value: string, limit?: string, ok?: boolean) => {
  results.push({ name, value, ...(limit === undefined ? {} : { limit }), ...(ok === undefined ? {} : { ok }) })
  console.log(`${name.padEnd(52)} ${value}${limit ? `   (limit ${limit}: ${ok ? "ok" : "BROKEN"})` : ""}`)
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!

const manifest = (url: string, name: string) => `apiVersion: generators.external-secrets.io/v1alpha1
kind: GitlabDeployToken
metadata:
  name: ${name}
spec:
  url: "${url}"
  projectID: "group/project"
  name: "bench"
  username: "bench"
  scopes: [read_registry]
  expiresAfter: "720h"
  auth:
    token:
      secretRef: { name: gitlab-api-token, key: token }
`

const lifecycle = async () => {
  const sim = await startSimulator({ requestLogLimit: 100_000 })
  const { pat } = addMaintainedProject(sim, { user: "bench", path: "group/project" })
  const spec = validateSpec(
    {
      url: sim.url,
      projectID: "group/project",
      name: "bench",
      username: "bench",
      scopes: ["read_registry"],
      expiresAfter: "720h",
      auth: { token: { secretRef: { name: "t", key: "token" } } },
    },
    { allowHttp: true },
  ).spec!
  const job: Job = {
    key: "bench",
    spec,
    connection: { url: sim.url, accessToken: Redacted.make(pat), allowHttp: true },
    policy: { refreshIntervalMs: 3_600_000, graceMs: 0 },
  }
  const quiet = Layer.mergeAll(Logger.layer([]), Layer.succeed(References.MinimumLogLevel, "Warn"))
  const layer = Layer.mergeAll(State.layerMemory, Sink.layerMemory, gitlabLayer(), quiet)
  // One runtime for the measurements so State and the sink persist between calls.
  const out = await Effect.runPromise(
    Effect.gen(function* () {
      yield* reconcile(job)
      sim.clearRequests()
      yield* rotate(job, Date.now())
      const rotation = sim.requests().filter((r) => r.path.startsWith("/api/v4/")).length
      sim.clearRequests()
      yield* reconcile(job)
      const noop = sim.requests().filter((r) => r.path.startsWith("/api/v4/")).length
      const n = 300
      const started = performance.now()
      for (let i = 0; i < n; i++) yield* rotate(job, Date.now())
      const seconds = (performance.now() - started) / 1000
      return { rotation, noop, perSecond: n / seconds, n }
    }).pipe(Effect.provide(layer)),
  )
  await sim.close()
  report("GitLab calls per rotation (grace 0)", String(out.rotation), "2", out.rotation <= 2)
  report("GitLab calls per no-op reconcile", String(out.noop), "0", out.noop === 0)
  report("lifecycle rotations/s (in-process simulator)", `${out.perSecond.toFixed(0)} (${out.n} rotations)`)
  return out
}

/** Limit on GitLab calls in any simulated hour while one revocation fails for good. */
const CALL_BUDGET_PER_HOUR = 10

const callBudget = async () => {
  // Virtual time for the runner: a wait longer than 2 s jumps the clock (and the simulator's) forward at once.
  const time = new OffsetClock({ jumpSleepsOverMs: 2_000 })
  const sim = await startSimulator({ requestLogLimit: 100_000, now: time.now })
  const { pat } = addMaintainedProject(sim, { user: "bench", path: "group/project" })
  const spec = validateSpec(
    {
      url: sim.url,
      projectID: "group/project",
      name: "bench",
      username: "bench",
      scopes: ["read_registry"],
      auth: { token: { secretRef: { name: "t", key: "token" } } },
    },
    { allowHttp: true },
  ).spec!
  const job: Job = {
    key: "budget",
    spec,
    connection: { url: sim.url, accessToken: Redacted.make(pat), allowHttp: true },
    policy: { refreshIntervalMs: 0, graceMs: 0 },
  }
  const quiet = Layer.mergeAll(Logger.layer([]), Layer.succeed(References.MinimumLogLevel, "Error"))
  const layer = Layer.mergeAll(State.layerMemory, Sink.layerMemory, gitlabLayer({ maxAttempts: 1, requestTimeout: "1 second" }), quiet)
  const hours = 12
  const perHour = await Effect.runPromise(
    Effect.gen(function* () {
      yield* reconcile(job)
      // Every DELETE now fails (503) for the rest of the run; the replaced token can never be revoked.
      sim.faults.add({ kind: "status5xx", status: 503, method: "DELETE", path: "deploy_tokens/\\d+$", times: 1_000_000 })
      yield* rotate(job, time.now())
      const start = time.now()
      sim.clearRequests()
      yield* runForever(job, { until: () => time.now() >= start + hours * 3_600_000 })
      const counts = Array.from({ length: hours }, () => 0)
      for (const r of sim.requests()) {
        const h = Math.floor((r.time - start) / 3_600_000)
        if (r.path.startsWith("/api/v4/") && h >= 0 && h < hours) counts[h]! += 1
      }
      return counts
    }).pipe(Effect.provide(layer), Effect.provideService(Clock.Clock, time.clock)),
  )
  await sim.close()
  const worst = Math.max(...perHour)
  report(
    "GitLab calls per simulated hour, a revocation failing for good",
    `${worst} worst hour (hours 1–${hours}: ${perHour.join(", ")})`,
    String(CALL_BUDGET_PER_HOUR),
    worst <= CALL_BUDGET_PER_HOUR,
  )
}

const cli = async (perSecondInProcess: number) => {
  const work = mkdtempSync(join(tmpdir(), "gldt-bench-"))
  const sim = spawn(process.execPath, [join(root, "tooling/gitlab-sim/src/main.ts"), "--port", "0"], { stdio: ["ignore", "pipe", "inherit"] })
  try {
    const line = await new Promise<string>((ok, fail) => {
      let buf = ""
      sim.stdout.on("data", (c: Buffer) => {
        buf += c.toString()
        if (buf.includes("\n")) ok(buf.split("\n")[0]!)
      })
      sim.on("exit", () => fail(new Error("simulator exited")))
    })
    const { url, pat } = JSON.parse(line) as { url: string; pat: string }
    const file = join(work, "token.yaml")
    writeFileSync(file, manifest(url, "bench"))
    const env = { ...process.env, GITLAB_TOKEN: pat }
    const flags = ["-f", file, "--allow-http", "--grace", "0", "--state", `file:${join(work, "state")}`, "--sink", `file:${join(work, "token.env")}`]
    await run(join(root, "gldt"), ["generate", ...flags], { env, cwd: work })
    const times: number[] = []
    for (let i = 0; i < 10; i++) {
      const t = performance.now()
      await run(join(root, "gldt"), ["rotate", ...flags], { env, cwd: work })
      times.push(performance.now() - t)
    }
    report("one `gldt rotate` process, end to end (median of 10)", `${median(times).toFixed(0)} ms`)
    const t = performance.now()
    await run(join(root, "gldt"), ["run", ...flags, "--refresh", "1ms", "--max-rotations", "100"], { env, cwd: work, maxBuffer: 1 << 24 })
    const loopMs = performance.now() - t
    report("100 rotations in one `gldt run` loop", `${(loopMs / 1000).toFixed(2)} s (${(loopMs / 100).toFixed(1)} ms/rotation)`)
    report("ratio: process per rotation / rotation in a loop", `${(median(times) / (loopMs / 100)).toFixed(1)}x`)
    report("ratio: loop over HTTP / in-process lifecycle", `${(loopMs / 100 / (1000 / perSecondInProcess)).toFixed(1)}x`)
  } finally {
    sim.kill("SIGTERM")
    rmSync(work, { recursive: true, force: true })
  }
}

const main = async () => {
  console.log(`gldt bench — node ${process.version}, ${new Date().toISOString()}`)
  const l = await lifecycle()
  await callBudget()
  await cli(l.perSecond)
  await vaultPlugin(report)
  // GLDT_BENCH_CONTROLLER_N=0 skips the controller part (it needs the testenv binaries).
  const n = Number(process.env.GLDT_BENCH_CONTROLLER_N ?? 1000)
  if (n > 0) {
    await controllerBench(root, report, n)
    console.log(
      "  anchor (quoted, not measured here): ESO v2.9.0 on the same testenv apiserver converged 1,000 in 106 s (--concurrent=1), 209 MiB peak RSS, 1.0 GitLab call per ExternalSecret",
    )
  }
  const broken = results.filter((r) => r.ok === false)
  if (broken.length > 0) {
    console.log(`BROKEN: ${broken.map((b) => b.name).join(", ")}`)
    process.exitCode = 1
  }
}

await main()
