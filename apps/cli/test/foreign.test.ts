/**
 * Criterion 2: deploy tokens someone else made with the same name, username and scopes survive rotations,
 * a lost create that recovery has to sort out, `gldt recover` and `gldt revoke`.
 */
import { afterAll, expect, it } from "vitest"
import { gldt, killStragglers, liveGldtTokens, readState, removeTempDirs, show, startSim, tempDir, writeManifest } from "./support.ts"

afterAll(() => {
  killStragglers()
  removeTempDirs()
})

it("look-alike tokens made by someone else survive rotate, recover and revoke", async () => {
  const dir = tempDir("foreign")
  const sim = await startSim({ tls: true, dir })
  try {
    const scopes = ["read_repository", "read_registry"]
    const manifest = writeManifest(dir, { url: sim.url, name: "foreign", tokenName: "eso-managed", username: "eso", scopes })
    const flags = ["-f", manifest, "--state", `file:${dir}/state`, "--sink", `file:${dir}/sink.env`, "--ca-file", sim.ca!]
    const run = (...args: string[]) => gldt(args, { cwd: dir, env: { GITLAB_TOKEN: sim.pat } })

    const foreign: Array<{ id: number; token: string }> = []
    // One before gldt ever looked at the project (below its watermark), without expiry.
    foreign.push(await sim.foreignToken({ target: "project:group/project", name: "eso-managed", username: "eso", scopes }))
    const expectForeignIntact = async (when: string) => {
      const tokens = await sim.tokens()
      for (const f of foreign) {
        const t = tokens.find((x) => x.id === f.id)
        expect(t, `${when}: foreign token ${f.id} still exists`).toBeDefined()
        expect(t!.revoked, `${when}: foreign token ${f.id} not revoked`).toBe(false)
        expect(t!.token).toBe(f.token)
        expect(t!.createdBy).toBe("foreign")
      }
      const deletes = (await sim.requests()).filter((r) => r.method === "DELETE")
      // By path or by numeric id (gldt resolves the path before its first mint).
      for (const f of foreign)
        expect(
          deletes.filter((d) => d.path.endsWith(`/deploy_tokens/${f.id}`)),
          when,
        ).toEqual([])
    }

    const gen = await run("generate", ...flags)
    expect(gen.code, show(gen)).toBe(0)
    // Two more after gldt's first mint (above its watermark): one without expiry, one with an expiry like gldt's.
    foreign.push(await sim.foreignToken({ target: "project:42", name: "eso-managed", username: "eso", scopes }))
    const like = new Date(Date.now() + 720 * 3_600_000).toISOString()
    foreign.push(await sim.foreignToken({ target: { project: "group/project" }, name: "eso-managed", username: "eso", scopes, expiresAt: like }))

    for (let i = 0; i < 3; i++) {
      const r = await run("rotate", ...flags, "--grace", "0")
      expect(r.code, show(r)).toBe(0)
      await expectForeignIntact(`after rotation ${i + 1}`)
      expect(liveGldtTokens(await sim.tokens())).toHaveLength(1)
    }

    // A create that GitLab applies but whose answer is lost: gldt must find its own token among the look-alikes.
    await sim.addFault({ kind: "appliedButLost", method: "POST", path: "deploy_tokens$", lose: 504 })
    const lost = await run("rotate", ...flags, "--grace", "0")
    expect(lost.code, show(lost)).toBe(1)
    expect(lost.stderr).toMatch(/^gldt: error: GitLab answered 504/)
    // The token of the lost create was recognised by its expiry fingerprint and revoked; the previous one stays current.
    const newest = (await sim.tokens(true)).filter((t) => t.createdBy === "api").at(-1)!
    expect(newest.deletedAt, "the lost create's token was revoked").toBeDefined()
    expect(liveGldtTokens(await sim.tokens())).toHaveLength(1)
    expect(lost.stdout + lost.stderr).not.toMatch(/gldt-[A-Za-z0-9_-]{20}/)
    await expectForeignIntact("after a lost create")

    const rec = await run("recover", ...flags, "--grace", "0", "--create-settle", "1s")
    expect(rec.code, show(rec)).toBe(0)
    for (const f of foreign) expect(rec.stdout, show(rec)).toContain(`untracked look-alike token ${f.id} `)
    await expectForeignIntact("after recover")
    const liveAfterRecover = liveGldtTokens(await sim.tokens())
    expect(liveAfterRecover).toHaveLength(1)
    expect(readState(`${dir}/state`, "foreign")?.current?.id).toBe(liveAfterRecover[0]!.id)
    expect(readState(`${dir}/state`, "foreign")?.suspects).toEqual([])

    const rev = await run("revoke", ...flags)
    expect(rev.code, show(rev)).toBe(0)
    await expectForeignIntact("after revoke")
    expect(liveGldtTokens(await sim.tokens())).toEqual([])
    expect((await sim.tokens()).map((t) => t.id).sort((a, b) => a - b)).toEqual(foreign.map((f) => f.id).sort((a, b) => a - b))
  } finally {
    await sim.stop()
  }
})
