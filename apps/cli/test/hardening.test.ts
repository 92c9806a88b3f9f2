/**
 * Issue 7 end to end, through `./gldt` and the standalone simulator: the seed's manifest without
 * expiry survives lost creates with exactly one live token, targets are kept by numeric id across a
 * rename, revoke and recover need no writable sink, run does not spin on a revocation that cannot
 * succeed, and suspects are listed and resolved by id.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { afterAll, expect, it } from "vitest"
import { gldt, killStragglers, liveGldtTokens, readState, removeTempDirs, show, sleep, spawnGldt, startSim, tempDir, writeManifest } from "./support.ts"

afterAll(() => {
  killStragglers()
  removeTempDirs()
})

it("the seed's manifest without expiry: after lost creates, 5xx and resets, recover + rotate leave exactly one live token, revoke none, no suspects", async () => {
  const dir = tempDir("no-expiry")
  const sim = await startSim({ tls: true, dir })
  try {
    const manifest = writeManifest(dir, { url: sim.url, name: "noexp", expiresAfter: null })
    const flags = ["-f", manifest, "--state", `file:${dir}/state`, "--sink", `file:${dir}/sink.env`, "--ca-file", sim.ca!, "--create-settle", "1s"]
    const run = (...args: string[]) => gldt(args, { cwd: dir, env: { GITLAB_TOKEN: sim.pat } })
    const gen = await run("generate", ...flags)
    expect(gen.code, show(gen)).toBe(0)
    // The token carries a fingerprint date in 2999, never GitLab's "forever" (reported as null).
    expect(liveGldtTokens(await sim.tokens())[0]!.expiresAt).toMatch(/^2999-/)
    for (const fault of [
      { kind: "appliedButLost", lose: 504 },
      { kind: "appliedButLost", lose: "reset" },
      { kind: "appliedButLost", lose: 502 },
      { kind: "status5xx", status: 503 },
      { kind: "reset" },
    ]) {
      await sim.addFault({ ...fault, method: "POST", path: "deploy_tokens$", times: 1 })
      const r = await run("rotate", ...flags)
      expect(r.code, show(r)).not.toBe(2)
      await sim.clearFaults()
    }
    const rec = await run("recover", ...flags, "--grace", "0")
    expect(rec.code, show(rec)).toBe(0)
    const rot = await run("rotate", ...flags, "--grace", "0")
    expect(rot.code, show(rot)).toBe(0)
    expect(liveGldtTokens(await sim.tokens()), "exactly one live token of ours").toHaveLength(1)
    expect(readState(`${dir}/state`, "noexp")?.suspects).toEqual([])
    const rev = await run("revoke", ...flags)
    expect(rev.code, show(rev)).toBe(0)
    expect(liveGldtTokens(await sim.tokens())).toEqual([])
    expect(readState(`${dir}/state`, "noexp")).toBeUndefined()
  } finally {
    await sim.stop()
  }
})

it("a project renamed mid-life stays revocable by id; a new project at the old path is never reported revoked", async () => {
  const dir = tempDir("moved")
  const sim = await startSim({ tls: true, dir })
  try {
    const manifest = writeManifest(dir, { url: sim.url, name: "moved" })
    const flags = ["-f", manifest, "--state", `file:${dir}/state`, "--sink", `file:${dir}/sink.env`, "--ca-file", sim.ca!]
    const run = (...args: string[]) => gldt(args, { cwd: dir, env: { GITLAB_TOKEN: sim.pat } })
    expect((await run("generate", ...flags)).code).toBe(0)
    const rot = await run("rotate", ...flags)
    expect(rot.code, show(rot)).toBe(0)
    const ours = liveGldtTokens(await sim.tokens()).map((t) => t.id)
    expect(ours).toHaveLength(2)
    await sim.control("POST", "projects/42/move", { path: "group/renamed" })
    await sim.control("POST", "projects", { path: "group/project", members: { root: "maintainer" } })
    const squatter = await sim.foreignToken({
      target: { project: "group/project" },
      name: "eso-managed",
      username: "eso",
      scopes: ["read_repository", "read_registry"],
    })
    const rev = await run("revoke", ...flags)
    expect(rev.code, show(rev)).toBe(0)
    const reported = [...rev.stdout.matchAll(/^revoked token (\d+)/gm)].map((m) => Number(m[1]))
    expect(reported.sort()).toEqual([...ours].sort())
    expect(liveGldtTokens(await sim.tokens()), "what was reported revoked is gone").toEqual([])
    expect((await sim.tokens()).map((t) => t.id)).toContain(squatter.id)
  } finally {
    await sim.stop()
  }
})

it("revoke and recover need no writable sink: a decommissioned consumer whose directory is gone is still revocable", async () => {
  const dir = tempDir("no-sink")
  const sim = await startSim({ tls: true, dir })
  try {
    const manifest = writeManifest(dir, { url: sim.url, name: "gone" })
    const flags = ["-f", manifest, "--state", `file:${dir}/state`, "--sink", `file:${dir}/consumer/sink.env`, "--ca-file", sim.ca!]
    const run = (...args: string[]) => gldt(args, { cwd: dir, env: { GITLAB_TOKEN: sim.pat } })
    mkdirSync(join(dir, "consumer"))
    expect((await run("generate", ...flags)).code).toBe(0)
    rmSync(join(dir, "consumer"), { recursive: true })
    const rec = await run("recover", ...flags)
    expect(rec.code, show(rec)).toBe(0)
    const rev = await run("revoke", ...flags)
    expect(rev.code, show(rev)).toBe(0)
    expect(liveGldtTokens(await sim.tokens())).toEqual([])
  } finally {
    await sim.stop()
  }
})

it("run does not spin when a revocation cannot succeed (token at another instance): one attempt, then back-off", async () => {
  const dir = tempDir("calm")
  const sim = await startSim({ tls: true, dir })
  try {
    const first = writeManifest(dir, { url: sim.url, name: "calm" }, "first.yaml")
    const common = ["--state", `file:${dir}/state`, "--sink", `file:${dir}/sink.env`, "--ca-file", sim.ca!]
    expect((await gldt(["generate", "-f", first, ...common], { cwd: dir, env: { GITLAB_TOKEN: sim.pat } })).code).toBe(0)
    // Same server, other spelling: to gldt another instance, where this access token is never sent.
    const other = writeManifest(dir, { url: sim.url.replace("127.0.0.1", "localhost"), name: "calm" }, "other.yaml")
    await sim.clearRequests()
    const p = spawnGldt(["run", "-f", other, ...common, "--grace", "0", "--refresh", "1h"], { cwd: dir, env: { GITLAB_TOKEN: sim.pat } })
    await sleep(5_000)
    p.child.kill("SIGTERM")
    const r = await p.done
    expect(r.code, show(r)).toBe(0)
    const failures = r.stdout.match(/^could not revoke token \d+/gm) ?? []
    expect(failures.length, show(r)).toBe(1)
    const requests = await sim.requests()
    expect(requests.filter((q) => q.method === "GET").length, "no list loop").toBeLessThanOrEqual(3)
    const record = readState(`${dir}/state`, "calm") as unknown as { retiring: Array<{ revokeAttempts?: number; retryAt?: number }> }
    expect(record.retiring[0]?.revokeAttempts).toBe(1)
    expect(record.retiring[0]?.retryAt).toBeGreaterThan(Date.now())
  } finally {
    await sim.stop()
  }
})

it("gldt suspects lists suspects; suspects revoke and forget resolve one by id; revoke releases the rest after --suspect-wait", async () => {
  const dir = tempDir("suspects")
  const sim = await startSim({ tls: true, dir })
  try {
    const manifest = writeManifest(dir, { url: sim.url, name: "sus" })
    const state = `file:${dir}/state`
    const flags = ["-f", manifest, "--state", state, "--sink", `file:${dir}/sink.env`, "--ca-file", sim.ca!]
    const run = (...args: string[]) => gldt(args, { cwd: dir, env: { GITLAB_TOKEN: sim.pat } })
    expect((await run("generate", ...flags)).code).toBe(0)
    // An interrupted create recorded by a gldt before fingerprints (no expiry in its intent), and two
    // look-alikes made by someone else since: nothing can prove which one it made.
    const scopes = ["read_repository", "read_registry"]
    const a = await sim.foreignToken({ target: "project:42", name: "eso-managed", username: "eso", scopes })
    const b = await sim.foreignToken({ target: "project:42", name: "eso-managed", username: "eso", scopes })
    const c = await sim.foreignToken({ target: "project:42", name: "eso-managed", username: "eso", scopes })
    const file = join(dir, "state", "sus.json")
    const doc = JSON.parse(readFileSync(file, "utf8"))
    const cur = doc.record.current
    doc.record.intent = {
      generation: doc.record.generation + 1,
      location: cur.location,
      name: cur.name,
      username: "eso",
      scopes,
      expiresAt: null,
      specHash: cur.specHash,
      watermark: cur.id,
      createdAt: 0,
    }
    doc.record.generation += 1
    writeFileSync(file, JSON.stringify(doc))
    const rec = await run("recover", ...flags)
    expect(rec.code, show(rec)).toBe(0)
    expect(rec.stdout).toMatch(new RegExp(`suspects left for a person to decide: ${a.id}, ${b.id}, ${c.id}`))
    // The consumer goes away: its own token is revoked, the suspects wait for a person.
    const rev = await run("revoke", ...flags, "--suspect-wait", "1h")
    expect(rev.code, show(rev)).toBe(0)
    expect(rev.stdout).toMatch(new RegExp(`suspects left for a person to decide: ${a.id}, ${b.id}, ${c.id}`))
    expect(liveGldtTokens(await sim.tokens())).toEqual([])
    expect(readState(`${dir}/state`, "sus")?.suspects.map((x) => x.id)).toEqual([a.id, b.id, c.id])
    const list = await gldt(["suspects", "--state", state], { cwd: dir, env: {} })
    expect(list.code, show(list)).toBe(0)
    expect(list.stdout).toMatch(new RegExp(`^sus: suspect token ${a.id} .*gldt suspects revoke ${a.id}`, "m"))
    const revoked = await run("suspects", "revoke", String(a.id), ...flags)
    expect(revoked.code, show(revoked)).toBe(0)
    expect((await sim.tokens()).map((t) => t.id)).not.toContain(a.id)
    const unknown = await gldt(["suspects", "forget", "999999", "--key", "sus", "--state", state], { cwd: dir, env: {} })
    expect(unknown.code, show(unknown)).toBe(2)
    expect(unknown.stderr).toMatch(/token 999999 is not a suspect of sus \(its suspects: \d+, \d+\)/)
    const forgot = await gldt(["suspects", "forget", String(b.id), "--key", "sus", "--state", state], { cwd: dir, env: {} })
    expect(forgot.code, show(forgot)).toBe(0)
    expect(
      (await sim.tokens()).map((t) => t.id),
      "forget leaves GitLab alone",
    ).toContain(b.id)
    // After the wait (here 0), a revoke releases what is left, with the ids, and the record goes.
    const release = await run("revoke", ...flags, "--suspect-wait", "0")
    expect(release.code, show(release)).toBe(0)
    expect(release.stdout).toMatch(new RegExp(`^released token ${c.id} `, "m"))
    expect(release.stderr).toMatch(new RegExp(`releasing suspects.*tokenIds=${c.id}`))
    expect(readState(`${dir}/state`, "sus")).toBeUndefined()
    expect(
      (await sim.tokens()).map((t) => t.id),
      "a released suspect is never revoked",
    ).toContain(c.id)
    const empty = await gldt(["suspects", "--state", state, "-o", "json"], { cwd: dir, env: {} })
    expect(JSON.parse(empty.stdout)).toEqual({ command: "suspects", suspects: [] })
  } finally {
    await sim.stop()
  }
})
