import { afterEach, beforeEach, describe, expect, it } from "vitest"
import { call, createToken, DAY, type Fixture, NOW, setup } from "./helpers.ts"

let fx: Fixture
beforeEach(async () => {
  fx = await setup()
})
afterEach(async () => {
  await fx.sim.close()
})

describe("in-process inspection API", () => {
  it("tokens() is the ground truth, including foreign and (optionally) deleted tokens", async () => {
    const api = await createToken(fx, { name: "mine", username: "ci", scopes: ["read_registry", "read_repository"], expires_at: "2031-01-01" })
    const foreign = fx.sim.createForeignToken({ target: { group: "group" }, name: "theirs", scopes: ["read_registry"], expiresAt: "2030-06-16T00:00:00Z" })
    expect(foreign.token).toMatch(/^gldt-[A-Za-z0-9_-]{20}$/)
    const legacy = fx.sim.createForeignToken({
      target: { project: "group/project" },
      name: "legacy",
      scopes: ["read_repository"],
      token: "abcdefghijklmnopqrst",
    })
    expect(fx.sim.tokens()).toEqual([
      {
        id: api.id,
        type: "project",
        ownerId: 42,
        ownerPath: "group/project",
        name: "mine",
        username: "ci",
        customUsername: "ci",
        scopes: ["read_repository", "read_registry"],
        expiresAt: "2031-01-01T00:00:00.000Z",
        revoked: false,
        active: true,
        expired: false,
        createdBy: "api",
        createdByUser: "maint",
        createdAt: new Date(NOW).toISOString(),
        token: api.token,
      },
      expect.objectContaining({
        id: foreign.id,
        type: "group",
        ownerId: 7,
        ownerPath: "group",
        createdBy: "foreign",
        createdByUser: null,
        username: `gitlab+deploy-token-${foreign.id}`,
        customUsername: null,
      }),
      expect.objectContaining({ id: legacy.id, token: "abcdefghijklmnopqrst" }),
    ])
    fx.sim.revokeInUi(foreign.id)
    expect(fx.sim.tokens()[1]).toMatchObject({ revoked: true, active: false })
    expect(fx.sim.deleteToken(api.id)).toBe(true)
    expect(fx.sim.deleteToken(api.id)).toBe(false)
    expect(fx.sim.tokens().map((t) => t.id)).toEqual([foreign.id, legacy.id])
    const withDeleted = fx.sim.tokens({ includeDeleted: true })
    expect(withDeleted.at(-1)).toMatchObject({ id: api.id, active: false, deletedAt: new Date(NOW).toISOString() })
    expect(() => fx.sim.revokeInUi(api.id)).toThrow(/unknown deploy token/)
  })

  it("ids are global and ascending across projects and groups", async () => {
    const a = await createToken(fx)
    const b = await createToken(fx, {}, "/api/v4/groups/7/deploy_tokens", fx.pats.groupOwner)
    const c = fx.sim.createForeignToken({ target: { project: 44 }, name: "c", scopes: ["read_repository"] })
    const d = await createToken(fx)
    expect([a.id, b.id, c.id, d.id]).toEqual([1, 2, 3, 4])
  })

  it("the clock drives expired/active; the API flag lags until the end of the expiry day", async () => {
    const t = await createToken(fx, { expires_at: "2030-06-16T06:00:00Z" })
    const read = async () => (await call(fx.sim, `/api/v4/projects/42/deploy_tokens/${t.id}`, { pat: fx.pats.maintainer })).body as { expired: boolean }
    expect((await read()).expired).toBe(false)
    fx.sim.advanceClock(DAY)
    expect(fx.sim.tokens()[0]).toMatchObject({ active: false, expired: false })
    expect((await read()).expired).toBe(false)
    const active = await call(fx.sim, "/api/v4/projects/42/deploy_tokens?active=true", { pat: fx.pats.maintainer })
    expect(active.body).toEqual([])
    fx.sim.advanceClock(DAY)
    expect((await read()).expired).toBe(true)
    fx.sim.setClockOffset(0)
    expect(fx.sim.now()).toBe(NOW)
  })

  it("requests() logs method, path, status, time, fault and user; clearRequests() empties it", async () => {
    fx.sim.faults.add({ kind: "status5xx", status: 502, method: "DELETE" })
    await createToken(fx)
    await call(fx.sim, "/api/v4/projects/42/deploy_tokens/1", { method: "DELETE", pat: fx.pats.maintainer })
    await call(fx.sim, "/_sim/tokens")
    expect(fx.sim.requests()).toEqual([
      expect.objectContaining({ seq: 1, method: "POST", path: "/api/v4/projects/42/deploy_tokens", status: 201, time: NOW, fault: null, user: "maint" }),
      expect.objectContaining({
        seq: 2,
        method: "DELETE",
        path: "/api/v4/projects/42/deploy_tokens/1",
        status: 502,
        fault: "status5xx",
        faults: ["status5xx"],
      }),
    ])
    fx.sim.clearRequests()
    expect(fx.sim.requests()).toEqual([])
  })

  it("world setup validates its input", () => {
    expect(() => fx.sim.addUser({ name: "maint" })).toThrow(/already exists/)
    expect(() => fx.sim.addProject({ path: "noslash" })).toThrow(/namespace\/project/)
    expect(() => fx.sim.addProject({ id: 42, path: "x/y" })).toThrow(/already exists/)
    expect(() => fx.sim.addGroup({ path: "group" })).toThrow(/already exists/)
    expect(() => fx.sim.addAccessToken({ user: "ghost", scopes: ["api"] })).toThrow(/unknown user/)
    expect(() => fx.sim.createForeignToken({ target: { project: 999 }, name: "x", scopes: ["read_repository"] })).toThrow(/unknown project/)
    expect(() => fx.sim.createForeignToken({ target: { project: 42 }, name: "x", scopes: ["api" as never] })).toThrow(/scope/)
    expect(fx.sim.addAccessToken({ user: "maint", scopes: ["api"] })).toMatch(/^glpat-[A-Za-z0-9_-]{20}$/)
    expect(fx.sim.addProject({ path: "auto/one" }).id).toBe(45)
  })

  it("group memberships are inherited by subgroups and projects", async () => {
    fx.sim.addGroup({ id: 70, path: "group/sub" })
    fx.sim.addProject({ id: 700, path: "group/sub/deep" })
    const res = await call(fx.sim, "/api/v4/projects/group%2Fsub%2Fdeep/deploy_tokens", {
      pat: fx.pats.groupMaintainer,
      json: { name: "x", scopes: ["read_repository"] },
    })
    expect(res.status).toBe(201)
    expect(
      (await call(fx.sim, "/api/v4/groups/group%2Fsub/deploy_tokens", { pat: fx.pats.groupOwner, json: { name: "y", scopes: ["read_registry"] } })).status,
    ).toBe(201)
    expect(
      (await call(fx.sim, "/api/v4/groups/group%2Fsub/deploy_tokens", { pat: fx.pats.groupMaintainer, json: { name: "y", scopes: ["read_registry"] } })).status,
    ).toBe(403)
    fx.sim.setMember({ group: 7 }, "gmaint", null)
    expect((await call(fx.sim, "/api/v4/projects/700/deploy_tokens", { pat: fx.pats.groupMaintainer })).status).toBe(404)
  })
})

describe("/_sim control endpoints", () => {
  it("tokens, foreign-tokens, revoke, delete", async () => {
    const created = await call(fx.sim, "/_sim/foreign-tokens", {
      json: { target: "project:42", name: "ui", username: "u", scopes: ["read_repository"], expiresAt: "2031-01-01" },
    })
    expect(created.status).toBe(201)
    const { id, token } = created.body as { id: number; token: string }
    const list = await call(fx.sim, "/_sim/tokens")
    expect(list.body).toEqual([expect.objectContaining({ id, token, createdBy: "foreign", username: "u", expiresAt: "2031-01-01T00:00:00.000Z" })])
    const revoked = await call(fx.sim, `/_sim/tokens/${id}/revoke`, { method: "POST" })
    expect(revoked.body).toMatchObject({ id, revoked: true })
    const api = await call(fx.sim, `/api/v4/projects/42/deploy_tokens/${id}`, { pat: fx.pats.maintainer })
    expect(api.body).toMatchObject({ revoked: true })
    expect((await call(fx.sim, `/_sim/tokens/${id}`, { method: "DELETE" })).status).toBe(204)
    expect((await call(fx.sim, `/_sim/tokens/${id}`)).body).toMatchObject({ id, deletedAt: expect.any(String) })
    expect((await call(fx.sim, "/_sim/tokens?includeDeleted=true")).body).toHaveLength(1)
    expect((await call(fx.sim, "/_sim/tokens/999/revoke", { method: "POST" })).status).toBe(404)
    expect((await call(fx.sim, "/_sim/foreign-tokens", { json: { target: "nowhere", name: "x", scopes: [] } })).status).toBe(400)
  })

  it("requests, clock, rate-limit, world setup and health", async () => {
    await call(fx.sim, "/api/v4/deploy_tokens")
    const log = await call(fx.sim, "/_sim/requests")
    expect(log.body).toEqual([expect.objectContaining({ method: "GET", path: "/api/v4/deploy_tokens", status: 401 })])
    expect((await call(fx.sim, "/_sim/requests", { method: "DELETE" })).status).toBe(204)
    expect(fx.sim.requests()).toEqual([])

    expect((await call(fx.sim, "/_sim/clock", { json: { advanceMs: DAY } })).body).toMatchObject({ now: NOW + DAY, offsetMs: DAY })
    expect((await call(fx.sim, "/_sim/clock", { json: { offsetMs: 5 } })).body).toMatchObject({ now: NOW + 5 })
    expect((await call(fx.sim, "/_sim/clock", { json: { now: "2031-01-01T00:00:00Z" } })).body).toMatchObject({ iso: "2031-01-01T00:00:00.000Z" })
    expect((await call(fx.sim, "/_sim/clock", { json: {} })).status).toBe(400)

    expect((await call(fx.sim, "/_sim/rate-limit", { json: { limit: 5, periodSeconds: 10 } })).body).toEqual({ limit: 5, periodSeconds: 10 })
    expect((await call(fx.sim, "/_sim/rate-limit", { json: {} })).body).toBeNull()

    expect((await call(fx.sim, "/_sim/users", { json: { name: "newbie" } })).status).toBe(201)
    const pat = ((await call(fx.sim, "/_sim/access-tokens", { json: { user: "newbie", scopes: ["api"] } })).body as { token: string }).token
    expect((await call(fx.sim, "/_sim/groups", { json: { id: 90, path: "ng", members: { newbie: "owner" } } })).status).toBe(201)
    expect((await call(fx.sim, "/_sim/projects", { json: { id: 91, path: "ng/p" } })).body).toMatchObject({ id: 91, path: "ng/p", visibility: "private" })
    expect((await call(fx.sim, "/api/v4/projects/91/deploy_tokens", { pat })).status).toBe(200)
    expect((await call(fx.sim, "/_sim/projects/91/move", { json: { path: "ng/q" } })).body).toMatchObject({ path: "ng/q", movedFrom: ["ng/p"] })
    expect((await call(fx.sim, "/_sim/members", { json: { target: { project: 91 }, user: "dev", role: "maintainer" } })).status).toBe(204)
    expect((await call(fx.sim, "/api/v4/projects/91/deploy_tokens", { pat: fx.pats.developer })).status).toBe(200)
    const world = (await call(fx.sim, "/_sim/world")).body as { users: unknown[]; projects: unknown[]; groups: unknown[] }
    expect(world.projects).toContainEqual(expect.objectContaining({ id: 91, path: "ng/q" }))
    expect((await call(fx.sim, "/_sim/health")).body).toEqual({ ok: true, url: fx.sim.url })
    expect((await call(fx.sim, "/_sim/nope")).status).toBe(404)
  })
})
