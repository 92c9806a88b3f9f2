/**
 * Criterion 4: two `gldt rotate` processes started at the same moment on one state directory mint once:
 * the one that waited for the lock sees a token minted after its own request and does nothing.
 */
import { afterAll, expect, it } from "vitest"
import { gldt, killStragglers, liveGldtTokens, readEnvSink, removeTempDirs, show, spawnGldt, startSim, tempDir, writeManifest } from "./support.ts"

const TRIALS = 5

afterAll(() => {
  killStragglers()
  removeTempDirs()
})

it(`two concurrent rotates mint exactly one token (${TRIALS} trials)`, async () => {
  const dir = tempDir("concurrent")
  const sim = await startSim({ tls: true, dir })
  try {
    const manifest = writeManifest(dir, { url: sim.url, name: "concurrent" })
    const sinkPath = `${dir}/sink.env`
    const flags = ["-f", manifest, "--state", `file:${dir}/state`, "--sink", `file:${sinkPath}`, "--ca-file", sim.ca!, "--grace", "0", "-o", "json"]
    const env = { GITLAB_TOKEN: sim.pat }
    const gen = await gldt(["generate", ...flags], { cwd: dir, env })
    expect(gen.code, show(gen)).toBe(0)

    const perTrial: number[] = []
    for (let trial = 1; trial <= TRIALS; trial++) {
      await sim.clearRequests()
      const before = (await sim.tokens(true)).length
      const a = spawnGldt(["rotate", ...flags], { cwd: dir, env })
      const b = spawnGldt(["rotate", ...flags], { cwd: dir, env })
      const [ra, rb] = await Promise.all([a.done, b.done])
      expect(ra.code, `trial ${trial} A: ${show(ra)}`).toBe(0)
      expect(rb.code, `trial ${trial} B: ${show(rb)}`).toBe(0)
      const posts = (await sim.requests()).filter((r) => r.method === "POST")
      perTrial.push(posts.length)
      expect(posts, `trial ${trial}: POSTs\nA: ${show(ra)}\nB: ${show(rb)}`).toHaveLength(1)
      expect((await sim.tokens(true)).length - before, `trial ${trial}: tokens created`).toBe(1)
      // One of them rotated, the other found the fresh token and did nothing.
      const reports = [ra, rb].map((r) => JSON.parse(r.stdout) as { actions: Array<{ action: string }> })
      expect(reports.map((r) => r.actions.some((x) => x.action === "rotated")).sort()).toEqual([false, true])
      expect(
        reports.find((r) => r.actions.length === 0),
        `trial ${trial}: one run is a no-op`,
      ).toBeDefined()
      const liveTokens = liveGldtTokens(await sim.tokens())
      expect(liveTokens).toHaveLength(1)
      expect(readEnvSink(sinkPath).token).toBe(liveTokens[0]!.token)
    }
    console.log(`concurrency: POSTs per trial of two simultaneous rotates: ${perTrial.join(", ")}`)
  } finally {
    await sim.stop()
  }
})
