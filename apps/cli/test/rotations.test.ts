/**
 * Criterion 1: over HTTPS (the simulator's own CA, `--ca-file`) and over HTTP (`--allow-http`), 30 rotations
 * with `--grace 0` leave exactly one live token made by gldt, and the sink holds that very token.
 */
import { afterAll, describe, expect, it } from "vitest"
import {
  gldt,
  killStragglers,
  liveGldtTokens,
  median,
  readEnvSink,
  readState,
  removeTempDirs,
  type Sim,
  show,
  startSim,
  tempDir,
  writeManifest,
} from "./support.ts"

const ROTATIONS = 30

afterAll(() => {
  killStragglers()
  removeTempDirs()
})

describe.each([
  { transport: "https", tls: true },
  { transport: "http", tls: false },
])("over $transport", ({ transport, tls }) => {
  it(`${ROTATIONS} rotations with --grace 0 leave exactly one live gldt token, and the sink holds it`, async () => {
    const dir = tempDir(`rot-${transport}`)
    const sim: Sim = await startSim({ tls, dir })
    try {
      expect(sim.url.startsWith(`${transport}://`)).toBe(true)
      const manifest = writeManifest(dir, { url: sim.url, name: `rot-${transport}` })
      const sinkPath = `${dir}/sink.env`
      const transportFlags = tls ? ["--ca-file", sim.ca!] : ["--allow-http"]
      const flags = ["-f", manifest, "--state", `file:${dir}/state`, "--sink", `file:${sinkPath}`, ...transportFlags]
      const run = (...args: string[]) => gldt(args, { cwd: dir, env: { GITLAB_TOKEN: sim.pat } })

      // The transport is really checked: HTTPS without the CA fails, HTTP without --allow-http is bad input.
      const unverified = await run("generate", "-f", manifest, "--state", `file:${dir}/state`, "--sink", `file:${sinkPath}`)
      expect(unverified.code, show(unverified)).toBe(tls ? 1 : 2)
      expect(await sim.tokens(true)).toEqual([])

      const first = await run("generate", ...flags)
      expect(first.code, show(first)).toBe(0)

      const times: number[] = []
      for (let i = 1; i <= ROTATIONS; i++) {
        const r = await run("rotate", ...flags, "--grace", "0")
        times.push(r.ms)
        expect(r.code, `rotation ${i}: ${show(r)}`).toBe(0)
        const liveTokens = liveGldtTokens(await sim.tokens())
        expect(
          liveTokens.map((t) => t.id),
          `rotation ${i}`,
        ).toHaveLength(1)
        const only = liveTokens[0]!
        const sink = readEnvSink(sinkPath)
        expect(sink.tokenId, `rotation ${i}`).toBe(only.id)
        expect(sink.token, `rotation ${i}: the sink's value is the simulator's secret of token ${only.id}`).toBe(only.token)
        expect(sink.username).toBe(only.username)
        expect(readState(`${dir}/state`, `rot-${transport}`)?.current?.id).toBe(only.id)
      }

      const log = await sim.requests()
      const posts = log.filter((r) => r.method === "POST")
      const deletes = log.filter((r) => r.method === "DELETE")
      expect(posts.filter((r) => r.status === 201)).toHaveLength(ROTATIONS + 1)
      expect(posts).toHaveLength(ROTATIONS + 1)
      expect(deletes.filter((r) => r.status === 204)).toHaveLength(ROTATIONS)
      const all = await sim.tokens(true)
      expect(all.filter((t) => t.createdBy === "api")).toHaveLength(ROTATIONS + 1)
      expect(all.filter((t) => t.deletedAt !== undefined)).toHaveLength(ROTATIONS)

      const revoked = await run("revoke", ...flags)
      expect(revoked.code, show(revoked)).toBe(0)
      expect(liveGldtTokens(await sim.tokens())).toEqual([])
      console.log(
        `[${transport}] ${ROTATIONS} rotations: ./gldt rotate wall time median ${median(times).toFixed(0)} ms, min ${Math.min(...times).toFixed(0)} ms, max ${Math.max(...times).toFixed(0)} ms, total ${(times.reduce((a, b) => a + b, 0) / 1000).toFixed(1)} s`,
      )
    } finally {
      await sim.stop()
    }
  })
})
