/**
 * Criterion 3: `kill -9` of `gldt rotate` at random moments (the simulator slows every create and delete by
 * 50–400 ms), each followed by `gldt recover --create-settle 2s`, leaks nothing: after every recover each live
 * token gldt made is tracked by the state file, and after a final `gldt revoke` none is left, and no
 * suspect either (a suspect is still a live credential) — with the seed's manifest without expiry as
 * well as with `expiresAfter`: every create carries gldt's fingerprint.
 */
import { mkdirSync } from "node:fs"
import { afterAll, expect, it } from "vitest"
import { killRotateRounds } from "./killRounds.ts"
import {
  filesUnder,
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
  trackedIds,
  writeManifest,
} from "./support.ts"

const ROUNDS = Number(process.env.GLDT_E2E_CRASH_ROUNDS ?? 50)
const SEED = Number(process.env.GLDT_E2E_SEED ?? 20261129)
const KEY = "crash"

afterAll(() => {
  killStragglers()
  removeTempDirs()
})

/** Latency on every create and delete: 50 ms always, plus 150 ms and 200 ms each half the time, before or after applying. */
const addLatency = async (sim: Sim) => {
  for (const method of ["POST", "DELETE"]) {
    const path = method === "POST" ? "deploy_tokens$" : "deploy_tokens/\\d+$"
    await sim.addFault({ kind: "latency", method, path, ms: 50, phase: "before", probability: 1 })
    await sim.addFault({ kind: "latency", method, path, ms: 150, phase: method === "POST" ? "before" : "after", probability: 0.5, seed: SEED + 1 })
    await sim.addFault({ kind: "latency", method, path, ms: 200, phase: method === "POST" ? "after" : "before", probability: 0.5, seed: SEED + 2 })
  }
  // Now and then a create lands only after recover has first looked (still well inside --create-settle 2s):
  // recover must wait for it rather than conclude that the create made nothing.
  await sim.addFault({ kind: "latency", method: "POST", path: "deploy_tokens$", ms: 1_000, phase: "before", probability: 0.15, seed: SEED + 3 })
}

for (const expiresAfter of [null, "720h"] as const) {
  it(
    `kill -9 of rotate at random moments, then recover: nothing leaks over ${ROUNDS} rounds (${expiresAfter === null ? "no expiry, as in the seed" : `expiresAfter ${expiresAfter}`})`,
    async () => {
      const dir = tempDir("crash")
      const sim = await startSim({ tls: true, dir, seed: SEED })
      try {
        await addLatency(sim)
        const manifest = writeManifest(dir, { url: sim.url, name: KEY, expiresAfter })
        const stateDir = `${dir}/state`
        const sinkPath = `${dir}/sink/deploy-token.env`
        mkdirSync(`${dir}/sink`)
        const flags = ["-f", manifest, "--state", `file:${stateDir}`, "--sink", `file:${sinkPath}`, "--ca-file", sim.ca!, "--grace", "0"]
        const env = { GITLAB_TOKEN: sim.pat }
        const recoverArgs = ["recover", ...flags, "--create-settle", "2s", "-o", "json"]

        const stats = {
          kills: 0,
          killsBeforeCreate: 0,
          killsAfterCreate: 0,
          completed: 0,
          recovered: 0,
          retired: 0,
          delivered: 0,
          revoked: 0,
          settleWaits: 0,
          orphansBefore: 0,
          openIntents: 0,
          intentsNotLanded: 0,
          pendingBefore: 0,
          maxStateFiles: 0,
        }
        const leaks: string[] = []
        const problems: string[] = []
        const recoverTimes: number[] = []

        const { full } = await killRotateRounds({
          flags,
          cwd: dir,
          env,
          rounds: ROUNDS,
          seed: SEED,
          calibrations: 3,
          problems,
          beforeRound: () => sim.clearRequests(),
          afterRotate: async ({ round, delay, killed }) => {
            // What the kill left behind: an open intent, a pending token, live tokens the state does not track yet.
            const before = readState(stateDir, KEY)
            const orphans = liveGldtTokens(await sim.tokens()).filter((t) => !trackedIds(before).has(t.id))
            stats.orphansBefore += orphans.length
            if (before?.intent !== undefined) {
              stats.openIntents++
              if (orphans.length === 0) stats.intentsNotLanded++
            }
            if (before?.pending !== undefined) stats.pendingBefore++

            const rec = await gldt(recoverArgs, { cwd: dir, env })
            recoverTimes.push(rec.ms)
            if (rec.code !== 0) problems.push(`round ${round}: recover failed: ${show(rec)}`)
            const posts = (await sim.requests()).filter((q) => q.method === "POST").length
            if (killed) {
              stats.kills++
              if (posts > 0) stats.killsAfterCreate++
              else stats.killsBeforeCreate++
            } else stats.completed++
            let actions: Array<{ action: string; tokenId: number }> = []
            try {
              actions = (JSON.parse(rec.stdout.trim().split("\n").at(-1) ?? "{}") as { actions?: typeof actions }).actions ?? []
            } catch {
              problems.push(`round ${round}: recover printed no JSON: ${show(rec)}`)
            }
            for (const a of actions) {
              if (a.action === "recovered") stats.recovered++
              if (a.action === "retired") stats.retired++
              if (a.action === "delivered") stats.delivered++
              if (a.action === "revoked") stats.revoked++
            }
            if (rec.ms > 2_000) stats.settleWaits++

            // The invariant: every live token gldt made is tracked by the state file.
            const state = readState(stateDir, KEY)
            const tracked = trackedIds(state)
            const liveTokens = liveGldtTokens(await sim.tokens())
            for (const t of liveTokens) {
              if (!tracked.has(t.id))
                leaks.push(`round ${round} (kill after ${delay} ms, ${killed ? "killed" : "completed"}): token ${t.id} is live and untracked`)
            }
            // And recover left a consistent key: no open intent or pending token, the sink holds the current token.
            if (state?.intent !== undefined) problems.push(`round ${round}: intent still open after recover`)
            if (state?.pending !== undefined) problems.push(`round ${round}: pending token ${state.pending.id} after recover`)
            if (state?.current === undefined) problems.push(`round ${round}: no current token after recover`)
            else {
              const sink = readEnvSink(sinkPath)
              const current = liveTokens.find((t) => t.id === state.current!.id)
              if (current === undefined) problems.push(`round ${round}: current token ${state.current.id} is not live`)
              else if (sink.tokenId !== current.id || sink.token !== current.token) {
                problems.push(`round ${round}: sink holds token ${sink.tokenId}, state says ${current.id}`)
              }
            }
            if (liveTokens.length !== 1) problems.push(`round ${round}: ${liveTokens.length} live gldt tokens after recover with --grace 0`)
            // Whatever a kill left in the state directory (documents, locks, temp files) holds no secret.
            const secrets = [sim.pat, ...(await sim.tokens(true)).map((t) => t.token)]
            const stateFiles = filesUnder(stateDir)
            stats.maxStateFiles = Math.max(stats.maxStateFiles, stateFiles.length)
            for (const f of stateFiles) if (secrets.some((v) => f.content.includes(v))) problems.push(`round ${round}: ${f.path} holds a secret`)
            for (const f of filesUnder(`${dir}/sink`)) if (f.content.includes(sim.pat)) problems.push(`round ${round}: ${f.path} holds the access token`)
          },
        })

        const rev = await gldt(["revoke", ...flags, "--create-settle", "2s"], { cwd: dir, env })
        expect(rev.code, show(rev)).toBe(0)
        const suspects = new Set(readState(stateDir, KEY)?.suspects.map((s) => s.id) ?? [])
        const leftover = liveGldtTokens(await sim.tokens())
        const minted = (await sim.tokens(true)).filter((t) => t.createdBy === "api").length

        console.log(
          `crash summary (${expiresAfter === null ? "no expiry" : `expiresAfter ${expiresAfter}`}): seed ${SEED}, rounds ${ROUNDS}, kills that hit mid-run ${stats.kills} (before the create was sent ${stats.killsBeforeCreate}, after ${stats.killsAfterCreate}), rotates that finished before their kill ${stats.completed}; left for recover: open intents ${stats.openIntents} (create not yet landed when recover started ${stats.intentsNotLanded}), pending tokens ${stats.pendingBefore}, live untracked tokens ${stats.orphansBefore}; recover actions: recovered ${stats.recovered}, retired ${stats.retired}, delivered ${stats.delivered}, revoked ${stats.revoked}, recovers that waited for a create to settle (>2 s) ${stats.settleWaits}; tokens minted ${minted}; leaked after recover ${leaks.length}; live after final revoke ${leftover.length}, suspects ${suspects.size}; most files in the state dir after a recover ${stats.maxStateFiles}; uninterrupted rotate ${full.toFixed(0)} ms, recover median ${median(recoverTimes).toFixed(0)} ms`,
        )
        expect(leaks).toEqual([])
        expect(problems).toEqual([])
        expect(leftover.map((t) => t.id)).toEqual([])
        expect([...suspects]).toEqual([])
        // The randomness must actually have hit rotations mid-run, including after the create went out.
        expect(stats.kills).toBeGreaterThanOrEqual(Math.floor(ROUNDS / 3))
        expect(stats.killsAfterCreate).toBeGreaterThanOrEqual(Math.floor(ROUNDS / 10))
      } finally {
        await sim.stop()
      }
    },
    20 * 60_000,
  ) // 50 kill rounds: minutes on a loaded 2-core machine
}
