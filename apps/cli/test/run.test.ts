/**
 * Criterion 7: `gldt run --refresh 100ms --grace 0 --max-rotations 5` rotates five times and exits 0, and
 * `gldt run` stopped with SIGTERM exits 0 and leaves nothing leaked or half-done.
 */
import { afterAll, expect, it } from "vitest"
import {
  gldt,
  killStragglers,
  liveGldtTokens,
  readEnvSink,
  readState,
  removeTempDirs,
  seededRng,
  show,
  sleep,
  spawnGldt,
  startSim,
  tempDir,
  trackedIds,
  writeManifest,
} from "./support.ts"

afterAll(() => {
  killStragglers()
  removeTempDirs()
})

it("run --refresh 100ms --grace 0 --max-rotations 5 rotates five times and exits 0", async () => {
  const dir = tempDir("run-max")
  const sim = await startSim({ tls: true, dir })
  try {
    // No ExternalSecret in the file, so --refresh sets the interval.
    const manifest = writeManifest(dir, { url: sim.url, name: "run-max" })
    const sinkPath = `${dir}/sink.env`
    const r = await gldt(
      [
        "run",
        "-f",
        manifest,
        "--state",
        `file:${dir}/state`,
        "--sink",
        `file:${sinkPath}`,
        "--ca-file",
        sim.ca!,
        "--refresh",
        "100ms",
        "--grace",
        "0",
        "--max-rotations",
        "5",
      ],
      { cwd: dir, env: { GITLAB_TOKEN: sim.pat }, timeoutMs: 60_000 },
    )
    expect(r.code, show(r)).toBe(0)
    expect(r.signal).toBeNull()
    // From scratch: one mint, then exactly five rotations, each revoking its predecessor at once.
    expect(r.stdout.match(/^minted token \d+/gm), show(r)).toHaveLength(1)
    expect(r.stdout.match(/^rotated token \d+ \(refresh interval elapsed\)/gm), show(r)).toHaveLength(5)
    const log = await sim.requests()
    expect(log.filter((q) => q.method === "POST" && q.status === 201)).toHaveLength(6)
    expect(log.filter((q) => q.method === "DELETE" && q.status === 204)).toHaveLength(5)
    const liveTokens = liveGldtTokens(await sim.tokens())
    expect(liveTokens).toHaveLength(1)
    expect(readEnvSink(sinkPath).token).toBe(liveTokens[0]!.token)
    expect(readState(`${dir}/state`, "run-max")?.current?.id).toBe(liveTokens[0]!.id)
    console.log(`run --max-rotations 5: ${r.ms.toFixed(0)} ms wall time`)
  } finally {
    await sim.stop()
  }
})

it("run stopped with SIGTERM exits 0 cleanly and leaks nothing", async () => {
  const dir = tempDir("run-term")
  const sim = await startSim({ tls: true, dir })
  const rng = seededRng(7)
  try {
    // Creates and deletes take a while, so a SIGTERM often lands in the middle of a reconcile.
    await sim.addFault({ kind: "latency", method: "POST", path: "deploy_tokens$", ms: 80, probability: 1 })
    await sim.addFault({ kind: "latency", method: "DELETE", path: "deploy_tokens/\\d+$", ms: 80, phase: "after", probability: 1 })
    const manifest = writeManifest(dir, { url: sim.url, name: "run-term" })
    const sinkPath = `${dir}/sink.env`
    const base = ["-f", manifest, "--state", `file:${dir}/state`, "--sink", `file:${sinkPath}`, "--ca-file", sim.ca!]
    const args = ["run", ...base, "--refresh", "100ms", "--grace", "0"]
    for (let stop = 1; stop <= 3; stop++) {
      const p = spawnGldt(args, { cwd: dir, env: { GITLAB_TOKEN: sim.pat }, timeoutMs: 60_000 })
      // Wait for a couple of rotations, then stop it at a random moment.
      const deadline = Date.now() + 30_000
      while ((p.output().stdout.match(/^rotated token/gm)?.length ?? 0) < 2 && Date.now() < deadline && p.child.exitCode === null) await sleep(20)
      await sleep(Math.round(rng() * 250))
      const signalledAt = performance.now()
      p.child.kill("SIGTERM")
      const r = await p.done
      const stopMs = performance.now() - signalledAt
      expect(r.signal, show(r)).toBeNull()
      expect(r.code, show(r)).toBe(0)
      expect(r.stderr, show(r)).toBe("")
      expect(stopMs, "stops promptly").toBeLessThan(5_000)

      const state = readState(`${dir}/state`, "run-term")
      expect(state?.intent, "no open intent").toBeUndefined()
      expect(state?.pending, "no undelivered token").toBeUndefined()
      const tracked = trackedIds(state)
      const liveTokens = liveGldtTokens(await sim.tokens())
      expect(
        liveTokens.filter((t) => !tracked.has(t.id)).map((t) => t.id),
        "untracked live tokens",
      ).toEqual([])
      expect(liveTokens.map((t) => t.id)).toEqual([state?.current?.id])
      expect(readEnvSink(sinkPath).token).toBe(liveTokens[0]!.token)
    }
    const rev = await gldt(["revoke", ...base], { cwd: dir, env: { GITLAB_TOKEN: sim.pat } })
    expect(rev.code, show(rev)).toBe(0)
    expect(liveGldtTokens(await sim.tokens())).toEqual([])
  } finally {
    await sim.stop()
  }
})
