/**
 * Conformance with the simulator's contract (../CONTRACT.md): one test per numbered row, named
 * `row N: …`, all through real HTTP against the in-process server.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest"
import { basic, call, createToken, type Fixture, gitProbe, jwtProbe, NOW, setup } from "./helpers.ts"

let fx: Fixture
beforeEach(async () => {
  fx = await setup()
})
afterEach(async () => {
  await fx.sim.close()
})

const UNAUTHORIZED = { message: "401 Unauthorized" }
const FORBIDDEN = { message: "403 Forbidden" }
const PROJECT_NOT_FOUND = { message: "404 Project Not Found" }
const GROUP_NOT_FOUND = { message: "404 Group Not Found" }
const NOT_FOUND = { message: "404 Not found" }
const ROUTE_NOT_FOUND = { error: "404 Not Found" }
const VALID = { name: "deploy", scopes: ["read_repository"] }

describe("authentication (rows 1–8)", () => {
  it("row 1: unknown or garbage PAT → 401 {message: 401 Unauthorized} on every endpoint", async () => {
    const { id } = await createToken(fx)
    for (const pat of ["glpat-doesnotexist0000000", "garbage !!"]) {
      const requests = [
        call(fx.sim, "/api/v4/deploy_tokens", { pat }),
        call(fx.sim, "/api/v4/projects/42/deploy_tokens", { pat }),
        call(fx.sim, `/api/v4/projects/42/deploy_tokens/${id}`, { pat }),
        call(fx.sim, "/api/v4/projects/42/deploy_tokens", { pat, json: VALID }),
        call(fx.sim, `/api/v4/projects/42/deploy_tokens/${id}`, { pat, method: "DELETE" }),
        call(fx.sim, "/api/v4/groups/7/deploy_tokens", { pat }),
        call(fx.sim, "/api/v4/groups/7/deploy_tokens", { pat, json: VALID }),
      ]
      for (const res of await Promise.all(requests)) {
        expect(res.status).toBe(401)
        expect(res.body).toEqual(UNAUTHORIZED)
        expect(res.headers.get("content-type")).toBe("application/json")
      }
    }
    expect(fx.sim.tokens().map((t) => t.id)).toEqual([id])
  })

  it("row 2: expired PAT → 401 invalid_token 'Token is expired…' + WWW-Authenticate", async () => {
    const byClock = fx.sim.addAccessToken({ user: "maint", scopes: ["api"], expiresAt: NOW - 1 })
    for (const pat of [fx.pats.expired, byClock]) {
      for (const res of [
        await call(fx.sim, "/api/v4/projects/42/deploy_tokens", { pat }),
        await call(fx.sim, "/api/v4/projects/42/deploy_tokens", { pat, json: VALID }),
        await call(fx.sim, "/api/v4/deploy_tokens", { pat }),
      ]) {
        expect(res.status).toBe(401)
        expect(res.body).toEqual({
          error: "invalid_token",
          error_description: "Token is expired. You can either do re-authorization or token refresh.",
        })
        expect(res.headers.get("www-authenticate")).toMatch(/^Bearer realm=.*error="invalid_token"/)
      }
    }
    expect(fx.sim.tokens()).toEqual([])
  })

  it("row 3: revoked PAT → 401 invalid_token 'Token was revoked…'", async () => {
    const res = await call(fx.sim, "/api/v4/projects/42/deploy_tokens", { pat: fx.pats.revoked, json: VALID })
    expect(res.status).toBe(401)
    expect(res.body).toEqual({ error: "invalid_token", error_description: "Token was revoked. You have to re-authorize from the user." })
    // Revoking later through the hook behaves the same.
    const pat = fx.sim.addAccessToken({ user: "maint", scopes: ["api"] })
    expect((await call(fx.sim, "/api/v4/projects/42/deploy_tokens", { pat })).status).toBe(200)
    fx.sim.revokeAccessToken(pat)
    const after = await call(fx.sim, "/api/v4/projects/42/deploy_tokens", { pat })
    expect(after.status).toBe(401)
    expect((after.body as { error_description: string }).error_description).toBe("Token was revoked. You have to re-authorize from the user.")
    expect(fx.sim.tokens()).toEqual([])
  })

  it("row 4: read_api PAT on POST/DELETE → 403 insufficient_scope with scope 'api read_api'", async () => {
    const { id } = await createToken(fx)
    const expected = {
      error: "insufficient_scope",
      error_description: "The request requires higher privileges than provided by the access token.",
      scope: "api read_api",
    }
    const post = await call(fx.sim, "/api/v4/projects/42/deploy_tokens", { pat: fx.pats.readApi, json: VALID })
    const del = await call(fx.sim, `/api/v4/projects/42/deploy_tokens/${id}`, { pat: fx.pats.readApi, method: "DELETE" })
    for (const res of [post, del]) {
      expect(res.status).toBe(403)
      expect(res.body).toEqual(expected)
    }
    expect(fx.sim.tokens().map((t) => t.id)).toEqual([id])
    // A PAT with neither api nor read_api is refused even on GET.
    const get = await call(fx.sim, "/api/v4/projects/42/deploy_tokens", { pat: fx.pats.readUserOnly })
    expect(get.status).toBe(403)
    expect(get.body).toEqual(expected)
  })

  it("row 5: read_api PAT may GET (same as api)", async () => {
    const { id } = await createToken(fx)
    const list = await call(fx.sim, "/api/v4/projects/42/deploy_tokens", { pat: fx.pats.readApi })
    expect(list.status).toBe(200)
    expect((list.body as { id: number }[]).map((t) => t.id)).toEqual([id])
    const one = await call(fx.sim, `/api/v4/projects/42/deploy_tokens/${id}`, { pat: fx.pats.readApi })
    expect(one.status).toBe(200)
    expect((one.body as { id: number }).id).toBe(id)
  })

  it("row 6: a deploy token used as PRIVATE-TOKEN (or Bearer) → 401 Unauthorized", async () => {
    const { token } = await createToken(fx, { scopes: ["read_repository", "read_registry"] })
    const asPrivate = await call(fx.sim, "/api/v4/projects/42/deploy_tokens", { pat: token })
    expect(asPrivate.status).toBe(401)
    expect(asPrivate.body).toEqual(UNAUTHORIZED)
    const asBearer = await call(fx.sim, "/api/v4/projects/42/deploy_tokens", { headers: { authorization: `Bearer ${token}` } })
    expect(asBearer.status).toBe(401)
    expect(asBearer.body).toEqual(UNAUTHORIZED)
  })

  it("row 7: GET /deploy_tokens without credentials → 401", async () => {
    const res = await call(fx.sim, "/api/v4/deploy_tokens")
    expect(res.status).toBe(401)
    expect(res.body).toEqual(UNAUTHORIZED)
  })

  it("row 8: GET /deploy_tokens as non-admin, or admin without admin mode → 403", async () => {
    for (const pat of [fx.pats.maintainer, fx.pats.owner, fx.pats.adminModeWithoutScope]) {
      const res = await call(fx.sim, "/api/v4/deploy_tokens", { pat })
      expect(res.status).toBe(403)
      expect(res.body).toEqual(FORBIDDEN)
    }
    expect((await call(fx.sim, "/api/v4/deploy_tokens", { pat: fx.pats.adminModeWithScope })).status).toBe(200)
  })
})

describe("instance list (row 9)", () => {
  it("row 9: admin lists all project and group tokens id ASC, paginated; active=true filters", async () => {
    const a = await createToken(fx)
    const g = await createToken(fx, {}, "/api/v4/groups/7/deploy_tokens", fx.pats.groupOwner)
    const b = await createToken(fx, {}, "/api/v4/projects/44/deploy_tokens")
    const revoked = await createToken(fx)
    fx.sim.revokeInUi(revoked.id)
    const expired = await createToken(fx, { expires_at: new Date(NOW - 1000).toISOString() })
    const foreign = fx.sim.createForeignToken({ target: { group: 8 }, name: "f", scopes: ["read_registry"] })

    const all = await call(fx.sim, "/api/v4/deploy_tokens", { pat: fx.pats.admin })
    expect(all.status).toBe(200)
    expect((all.body as { id: number }[]).map((t) => t.id)).toEqual([a.id, g.id, b.id, revoked.id, expired.id, foreign.id])
    expect(all.headers.get("x-total")).toBe("6")
    expect(all.headers.get("x-per-page")).toBe("20")
    expect(all.headers.get("x-page")).toBe("1")
    expect(all.headers.get("x-next-page")).toBe("")
    expect(all.headers.get("x-prev-page")).toBe("")
    expect(all.headers.get("link")).toContain('rel="first"')
    // The entity says nothing about the owner.
    expect(Object.keys((all.body as object[])[0] ?? {})).toEqual(["id", "name", "username", "expires_at", "scopes", "revoked", "expired"])

    const active = await call(fx.sim, "/api/v4/deploy_tokens?active=true", { pat: fx.pats.admin })
    expect((active.body as { id: number }[]).map((t) => t.id)).toEqual([a.id, g.id, b.id, foreign.id])
    expect(active.headers.get("x-total")).toBe("4")

    const paged = await call(fx.sim, "/api/v4/deploy_tokens?per_page=2&page=2", { pat: fx.pats.admin })
    expect((paged.body as { id: number }[]).map((t) => t.id)).toEqual([b.id, revoked.id])
    expect(paged.headers.get("x-next-page")).toBe("3")
    expect(paged.headers.get("x-prev-page")).toBe("1")
  })
})

describe("project and group lookup (rows 10–12)", () => {
  it("row 10: a raw / in :id → 404 {error: 404 Not Found}", async () => {
    for (const [method, path] of [
      ["GET", "/api/v4/projects/group/project/deploy_tokens"],
      ["POST", "/api/v4/projects/group/project/deploy_tokens"],
      ["DELETE", "/api/v4/projects/group/project/deploy_tokens/1"],
      ["GET", "/api/v4/groups/group/sub/deploy_tokens"],
    ] as const) {
      const res = await call(fx.sim, path, { method, pat: fx.pats.admin, ...(method === "POST" ? { json: VALID } : {}) })
      expect(res.status).toBe(404)
      expect(res.body).toEqual(ROUTE_NOT_FOUND)
    }
    expect(fx.sim.tokens()).toEqual([])
  })

  it("row 11: missing, invisible, anonymous-private or non-numeric-without-%2F project → 404 Project Not Found", async () => {
    const cases: [string, string | undefined][] = [
      ["/api/v4/projects/999/deploy_tokens", fx.pats.admin],
      ["/api/v4/projects/group%2Fnope/deploy_tokens", fx.pats.admin],
      ["/api/v4/projects/42/deploy_tokens", fx.pats.outsider],
      ["/api/v4/projects/group%2Fproject/deploy_tokens", fx.pats.outsider],
      ["/api/v4/projects/42/deploy_tokens", undefined],
      ["/api/v4/projects/project/deploy_tokens", fx.pats.admin],
      ["/api/v4/projects/42/deploy_tokens/1", fx.pats.outsider],
    ]
    for (const [path, pat] of cases) {
      for (const method of ["GET", "POST", "DELETE"]) {
        const url = method === "DELETE" ? (path.endsWith("/1") ? path : `${path}/1`) : path.replace(/\/1$/, "")
        const res = await call(fx.sim, url, { method, pat, ...(method === "POST" ? { json: VALID } : {}) })
        expect(res.status, `${method} ${url}`).toBe(404)
        expect(res.body).toEqual(PROJECT_NOT_FOUND)
      }
    }
    expect(fx.sim.tokens()).toEqual([])
  })

  it("row 12: missing or invisible group → 404 Group Not Found", async () => {
    for (const [path, pat] of [
      ["/api/v4/groups/999/deploy_tokens", fx.pats.admin],
      ["/api/v4/groups/nope/deploy_tokens", fx.pats.admin],
      ["/api/v4/groups/7/deploy_tokens", fx.pats.outsider],
      ["/api/v4/groups/group/deploy_tokens", undefined],
    ] as const) {
      for (const method of ["GET", "POST"]) {
        const res = await call(fx.sim, path, { method, pat, ...(method === "POST" ? { json: VALID } : {}) })
        expect(res.status).toBe(404)
        expect(res.body).toEqual(GROUP_NOT_FOUND)
      }
      const del = await call(fx.sim, `${path}/1`, { method: "DELETE", pat })
      expect(del.body).toEqual(GROUP_NOT_FOUND)
    }
  })
})

describe("project list and get (rows 13–18)", () => {
  it("row 13: list as anonymous on a public project, or with role < Maintainer → 403", async () => {
    for (const [path, pat] of [
      ["/api/v4/projects/43/deploy_tokens", undefined],
      ["/api/v4/projects/43/deploy_tokens", fx.pats.outsider],
      ["/api/v4/projects/43/deploy_tokens", fx.pats.developer],
      ["/api/v4/projects/42/deploy_tokens", fx.pats.developer],
      ["/api/v4/projects/42/deploy_tokens", fx.pats.guest],
    ] as const) {
      const res = await call(fx.sim, path, { pat })
      expect(res.status).toBe(403)
      expect(res.body).toEqual(FORBIDDEN)
    }
  })

  it("row 14: Maintainer+ lists only this project's tokens, id ASC, per_page capped at 100, active=false means all", async () => {
    const a = await createToken(fx, { name: "a" })
    await createToken(fx, { name: "elsewhere" }, "/api/v4/projects/44/deploy_tokens")
    await createToken(fx, { name: "group" }, "/api/v4/groups/7/deploy_tokens", fx.pats.groupOwner)
    const revoked = await createToken(fx, { name: "revoked" })
    fx.sim.revokeInUi(revoked.id)
    const expired = await createToken(fx, { name: "expired", expires_at: "2020-01-01" })
    const foreign = fx.sim.createForeignToken({ target: { project: 42 }, name: "foreign", scopes: ["read_registry"] })
    const ids = [a.id, revoked.id, expired.id, foreign.id]

    for (const pat of [fx.pats.maintainer, fx.pats.groupOwner, fx.pats.groupMaintainer, fx.pats.admin]) {
      const res = await call(fx.sim, "/api/v4/projects/group%2Fproject/deploy_tokens", { pat })
      expect(res.status).toBe(200)
      expect((res.body as { id: number }[]).map((t) => t.id)).toEqual(ids)
    }
    const activeFalse = await call(fx.sim, "/api/v4/projects/42/deploy_tokens?active=false", { pat: fx.pats.maintainer })
    expect((activeFalse.body as { id: number }[]).map((t) => t.id)).toEqual(ids)
    const activeTrue = await call(fx.sim, "/api/v4/projects/42/deploy_tokens?active=true", { pat: fx.pats.maintainer })
    expect((activeTrue.body as { id: number }[]).map((t) => t.id)).toEqual([a.id, foreign.id])
    const capped = await call(fx.sim, "/api/v4/projects/42/deploy_tokens?per_page=1000", { pat: fx.pats.maintainer })
    expect(capped.headers.get("x-per-page")).toBe("100")
    const one = await call(fx.sim, "/api/v4/projects/42/deploy_tokens?per_page=1&page=2", { pat: fx.pats.maintainer })
    expect((one.body as { id: number }[]).map((t) => t.id)).toEqual([revoked.id])
  })

  it("row 15: active=maybe on any list → 400 {error: active is invalid}", async () => {
    for (const [path, pat] of [
      ["/api/v4/projects/42/deploy_tokens?active=maybe", fx.pats.maintainer],
      ["/api/v4/groups/7/deploy_tokens?active=maybe", fx.pats.groupOwner],
      ["/api/v4/deploy_tokens?active=maybe", fx.pats.admin],
    ] as const) {
      const res = await call(fx.sim, path, { pat })
      expect(res.status).toBe(400)
      expect(res.body).toEqual({ error: "active is invalid" })
    }
    // Grape's other boolean spellings are accepted.
    for (const v of ["1", "yes", "t", "0", "no", "f", "TRUE"]) {
      expect((await call(fx.sim, `/api/v4/projects/42/deploy_tokens?active=${v}`, { pat: fx.pats.maintainer })).status).toBe(200)
    }
  })

  it("row 16: GET with a non-integer token id → 400 {error: token_id is invalid}", async () => {
    for (const tid of ["123abc", "abc", "1.5"]) {
      const res = await call(fx.sim, `/api/v4/projects/42/deploy_tokens/${tid}`, { pat: fx.pats.maintainer })
      expect(res.status).toBe(400)
      expect(res.body).toEqual({ error: "token_id is invalid" })
    }
  })

  it("row 17: GET unknown token id → 404 Not found (deleted, another project's, a group token)", async () => {
    const other = await createToken(fx, {}, "/api/v4/projects/44/deploy_tokens")
    const groupToken = await createToken(fx, {}, "/api/v4/groups/7/deploy_tokens", fx.pats.groupOwner)
    const deleted = await createToken(fx)
    expect((await call(fx.sim, `/api/v4/projects/42/deploy_tokens/${deleted.id}`, { pat: fx.pats.maintainer, method: "DELETE" })).status).toBe(204)
    for (const tid of [other.id, groupToken.id, deleted.id, 999_999]) {
      const res = await call(fx.sim, `/api/v4/projects/42/deploy_tokens/${tid}`, { pat: fx.pats.maintainer })
      expect(res.status).toBe(404)
      expect(res.body).toEqual(NOT_FOUND)
    }
  })

  it("row 18: GET a token of P as Maintainer+ → 200 entity without token", async () => {
    const created = await createToken(fx, { name: "n", username: "ci-bot", scopes: ["read_registry", "read_repository"], expires_at: "2031-02-03T04:05:06Z" })
    const res = await call(fx.sim, `/api/v4/projects/42/deploy_tokens/${created.id}`, { pat: fx.pats.maintainer })
    expect(res.status).toBe(200)
    expect(res.body).toEqual({
      id: created.id,
      name: "n",
      username: "ci-bot",
      expires_at: "2031-02-03T04:05:06.000Z",
      scopes: ["read_repository", "read_registry"],
      revoked: false,
      expired: false,
    })
    expect(res.text).not.toContain(created.token)
  })
})

describe("project create (rows 19–30)", () => {
  const post = (body: unknown, pat = fx.pats.maintainer) => call(fx.sim, "/api/v4/projects/42/deploy_tokens", { pat, json: body })

  it("row 19: POST with role < Maintainer → 403 and nothing is created", async () => {
    for (const [path, pat] of [
      ["/api/v4/projects/42/deploy_tokens", fx.pats.developer],
      ["/api/v4/projects/42/deploy_tokens", fx.pats.guest],
      ["/api/v4/projects/43/deploy_tokens", fx.pats.outsider],
      ["/api/v4/projects/43/deploy_tokens", undefined],
    ] as const) {
      const res = await call(fx.sim, path, { pat, json: VALID })
      expect(res.status).toBe(403)
      expect(res.body).toEqual(FORBIDDEN)
    }
    expect(fx.sim.tokens()).toEqual([])
  })

  it("row 20: name missing → 400 {error: name is missing}", async () => {
    const res = await post({ scopes: ["read_repository"] })
    expect(res.status).toBe(400)
    expect(res.body).toEqual({ error: "name is missing" })
    expect(fx.sim.tokens()).toEqual([])
  })

  it("row 21: scopes missing → 400 {error: scopes is missing}", async () => {
    const res = await post({ name: "x" })
    expect(res.status).toBe(400)
    expect(res.body).toEqual({ error: "scopes is missing" })
    const both = await post({})
    expect(both.body).toEqual({ error: "name is missing, scopes is missing" })
  })

  it("row 22: a scope outside the seven → 400 {error: scopes does not have a valid value}", async () => {
    for (const scopes of [["read_repository", "all_access"], "read_repository,api", ["READ_REPOSITORY"]]) {
      const res = await post({ name: "x", scopes })
      expect(res.status).toBe(400)
      expect(res.body).toEqual({ error: "scopes does not have a valid value" })
    }
    expect(fx.sim.tokens()).toEqual([])
  })

  it('row 23: scopes [] or "" → 400 {message: Scopes can\'t be blank}', async () => {
    for (const scopes of [[], ""]) {
      const res = await post({ name: "x", scopes })
      expect(res.status).toBe(400)
      expect(res.body).toEqual({ message: "Scopes can't be blank" })
    }
    const form = await call(fx.sim, "/api/v4/projects/42/deploy_tokens", { pat: fx.pats.maintainer, form: "name=x&scopes=" })
    expect(form.body).toEqual({ message: "Scopes can't be blank" })
    expect(fx.sim.tokens()).toEqual([])
  })

  it("row 24: unparseable expires_at → 400 {error: expires_at is invalid}", async () => {
    for (const expires_at of ["foo", "2030-02-30", "2030-13-01", 12345]) {
      const res = await post({ ...VALID, expires_at })
      expect(res.status).toBe(400)
      expect(res.body).toEqual({ error: "expires_at is invalid" })
    }
    expect(fx.sim.tokens()).toEqual([])
  })

  it("row 25: username with characters outside [a-zA-Z0-9.+_-] → 400 message", async () => {
    for (const username of ["bad name", "émile", "a/b", "x@y"]) {
      const res = await post({ ...VALID, username })
      expect(res.status).toBe(400)
      expect(res.body).toEqual({ message: "Username can contain only letters, digits, '_', '-', '+', and '.'" })
    }
  })

  it("row 26: username or name > 255 → 400 too long; several errors joined with to_sentence", async () => {
    const long = "a".repeat(256)
    expect((await post({ ...VALID, username: long })).body).toEqual({ message: "Username is too long (maximum is 255 characters)" })
    expect((await post({ ...VALID, name: long })).body).toEqual({ message: "Name is too long (maximum is 255 characters)" })
    expect((await post({ ...VALID, name: "a".repeat(255), username: "u".repeat(255) })).status).toBe(201)
    const several = await post({ name: long, scopes: [], username: `${"!".repeat(256)}` })
    expect(several.status).toBe(400)
    expect(several.body).toEqual({
      message:
        "Scopes can't be blank, Username is too long (maximum is 255 characters), Username can contain only letters, digits, '_', '-', '+', and '.', and Name is too long (maximum is 255 characters)",
    })
    const two = await post({ name: "ok", scopes: [], username: "bad name" })
    expect(two.body).toEqual({ message: "Scopes can't be blank and Username can contain only letters, digits, '_', '-', '+', and '.'" })
  })

  it("row 27: the same username as an existing active token → 201 again", async () => {
    const first = await post({ ...VALID, username: "deployer" })
    const second = await post({ ...VALID, username: "deployer" })
    expect(first.status).toBe(201)
    expect(second.status).toBe(201)
    const tokens = fx.sim.tokens()
    expect(tokens.map((t) => t.username)).toEqual(["deployer", "deployer"])
    expect(tokens.every((t) => t.active)).toBe(true)
  })

  it("row 28: expires_at in the past → 201; expired false if today else true; never authenticates", async () => {
    const today = await post({ ...VALID, username: "today", expires_at: new Date(NOW - 3_600_000).toISOString() })
    const yesterday = await post({ ...VALID, username: "yday", expires_at: "2030-06-14" })
    const zero = await post({ ...VALID, username: "zero", expires_at: "0001-01-01T00:00:00Z" })
    expect([today.status, yesterday.status, zero.status]).toEqual([201, 201, 201])
    expect((today.body as { expired: boolean }).expired).toBe(false)
    expect((yesterday.body as { expired: boolean }).expired).toBe(true)
    expect(zero.body).toMatchObject({ expires_at: "0001-01-01T00:00:00.000Z", expired: true })
    for (const res of [today, yesterday, zero]) {
      const t = res.body as { username: string; token: string }
      expect((await gitProbe(fx, t.username, t.token)).status).toBe(401)
    }
  })

  it("row 29: valid POST → 201 entity with token; defaults for username/expires_at; canonical scopes", async () => {
    const res = await post({ name: "deploy", scopes: ["write_registry", "read_repository", "read_registry", "read_repository"] })
    expect(res.status).toBe(201)
    const body = res.body as Record<string, unknown>
    expect(Object.keys(body)).toEqual(["id", "name", "username", "expires_at", "scopes", "revoked", "expired", "token"])
    expect(body).toMatchObject({
      name: "deploy",
      username: `gitlab+deploy-token-${body.id}`,
      expires_at: null,
      scopes: ["read_repository", "read_registry", "write_registry"],
      revoked: false,
      expired: false,
    })
    expect(body.token).toMatch(/^gldt-[A-Za-z0-9_-]{20}$/)
    for (const expires_at of ["", null]) {
      const again = await post({ ...VALID, expires_at, username: "" })
      expect(again.body).toMatchObject({ expires_at: null, username: `gitlab+deploy-token-${(again.body as { id: number }).id}` })
    }
    const truth = fx.sim.tokens()[0]
    expect(truth).toMatchObject({
      id: body.id,
      type: "project",
      ownerId: 42,
      ownerPath: "group/project",
      createdBy: "api",
      createdByUser: "maint",
      token: body.token,
    })
  })

  it("row 30: the same body twice → two distinct tokens", async () => {
    const body = { name: "same", username: "same", scopes: ["read_repository"], expires_at: "2031-01-01" }
    const a = (await post(body)).body as { id: number; token: string }
    const b = (await post(body)).body as { id: number; token: string }
    expect(a.id).not.toBe(b.id)
    expect(b.id).toBeGreaterThan(a.id)
    expect(a.token).not.toBe(b.token)
    expect(fx.sim.tokens()).toHaveLength(2)
  })
})

describe("project delete (rows 31–34)", () => {
  it("row 31: DELETE with role < Maintainer → 403, even for a token id that does not exist", async () => {
    const { id } = await createToken(fx)
    for (const tid of [id, 999_999]) {
      for (const pat of [fx.pats.developer, fx.pats.guest]) {
        const res = await call(fx.sim, `/api/v4/projects/42/deploy_tokens/${tid}`, { method: "DELETE", pat })
        expect(res.status).toBe(403)
        expect(res.body).toEqual(FORBIDDEN)
      }
    }
    expect(fx.sim.tokens().map((t) => t.id)).toEqual([id])
  })

  it("row 32: DELETE as Maintainer+ → 204 empty; row removed; token stops authenticating at once", async () => {
    const t = await createToken(fx, { username: "ci", scopes: ["read_repository"] })
    expect((await gitProbe(fx, "ci", t.token)).status).toBe(200)
    const res = await call(fx.sim, `/api/v4/projects/group%2Fproject/deploy_tokens/${t.id}`, { method: "DELETE", pat: fx.pats.maintainer })
    expect(res.status).toBe(204)
    expect(res.text).toBe("")
    expect(fx.sim.tokens()).toEqual([])
    expect((await gitProbe(fx, "ci", t.token)).status).toBe(401)
    // A UI-revoked token can still be deleted.
    const r = await createToken(fx)
    fx.sim.revokeInUi(r.id)
    expect((await call(fx.sim, `/api/v4/projects/42/deploy_tokens/${r.id}`, { method: "DELETE", pat: fx.pats.admin })).status).toBe(204)
  })

  it("row 33: DELETE an already deleted or foreign token id → 404 Not found", async () => {
    const t = await createToken(fx)
    const other = await createToken(fx, {}, "/api/v4/projects/44/deploy_tokens")
    expect((await call(fx.sim, `/api/v4/projects/42/deploy_tokens/${t.id}`, { method: "DELETE", pat: fx.pats.maintainer })).status).toBe(204)
    for (const tid of [t.id, other.id]) {
      const res = await call(fx.sim, `/api/v4/projects/42/deploy_tokens/${tid}`, { method: "DELETE", pat: fx.pats.maintainer })
      expect(res.status).toBe(404)
      expect(res.body).toEqual(NOT_FOUND)
    }
    expect(fx.sim.tokens().map((x) => x.id)).toEqual([other.id])
  })

  it("row 34: DELETE with a non-integer token id → 400 {error: token_id is invalid}", async () => {
    const res = await call(fx.sim, "/api/v4/projects/42/deploy_tokens/abc", { method: "DELETE", pat: fx.pats.maintainer })
    expect(res.status).toBe(400)
    expect(res.body).toEqual({ error: "token_id is invalid" })
  })
})

describe("group tokens (rows 35–38)", () => {
  it("row 35: group GET list/single as Maintainer+ → G's own tokens only", async () => {
    const g = await createToken(fx, { name: "g" }, "/api/v4/groups/7/deploy_tokens", fx.pats.groupOwner)
    const p = await createToken(fx, { name: "p" })
    await createToken(fx, { name: "other group" }, "/api/v4/groups/8/deploy_tokens", fx.pats.admin)
    for (const pat of [fx.pats.groupMaintainer, fx.pats.groupOwner, fx.pats.admin]) {
      const list = await call(fx.sim, "/api/v4/groups/group/deploy_tokens", { pat })
      expect(list.status).toBe(200)
      expect((list.body as { id: number }[]).map((t) => t.id)).toEqual([g.id])
      expect(list.headers.get("x-total")).toBe("1")
      const one = await call(fx.sim, `/api/v4/groups/7/deploy_tokens/${g.id}`, { pat })
      expect(one.status).toBe(200)
      expect((one.body as { name: string }).name).toBe("g")
      const wrong = await call(fx.sim, `/api/v4/groups/7/deploy_tokens/${p.id}`, { pat })
      expect(wrong.status).toBe(404)
      expect(wrong.body).toEqual(NOT_FOUND)
    }
    expect((await call(fx.sim, "/api/v4/groups/7/deploy_tokens/x1", { pat: fx.pats.groupOwner })).body).toEqual({ error: "token_id is invalid" })
  })

  it("row 36: group GET anonymous or role < Maintainer on a public group → 403", async () => {
    for (const pat of [undefined, fx.pats.developer, fx.pats.outsider]) {
      const res = await call(fx.sim, "/api/v4/groups/8/deploy_tokens", { pat })
      expect(res.status).toBe(403)
      expect(res.body).toEqual(FORBIDDEN)
    }
  })

  it("row 37: group POST/DELETE as Maintainer (not Owner) → 403", async () => {
    const g = await createToken(fx, {}, "/api/v4/groups/7/deploy_tokens", fx.pats.groupOwner)
    const post = await call(fx.sim, "/api/v4/groups/7/deploy_tokens", { pat: fx.pats.groupMaintainer, json: VALID })
    const del = await call(fx.sim, `/api/v4/groups/7/deploy_tokens/${g.id}`, { pat: fx.pats.groupMaintainer, method: "DELETE" })
    for (const res of [post, del]) {
      expect(res.status).toBe(403)
      expect(res.body).toEqual(FORBIDDEN)
    }
    expect(fx.sim.tokens().map((t) => t.id)).toEqual([g.id])
  })

  it("row 38: group POST/DELETE as Owner → as rows 20–34", async () => {
    const url = "/api/v4/groups/7/deploy_tokens"
    const pat = fx.pats.groupOwner
    expect((await call(fx.sim, url, { pat, json: { scopes: ["read_registry"] } })).body).toEqual({ error: "name is missing" })
    expect((await call(fx.sim, url, { pat, json: { name: "x", scopes: [] } })).body).toEqual({ message: "Scopes can't be blank" })
    const created = await call(fx.sim, url, { pat, json: { name: "g", scopes: ["read_virtual_registry", "read_registry"], username: "grp" } })
    expect(created.status).toBe(201)
    const body = created.body as { id: number; token: string; scopes: string[] }
    expect(body.scopes).toEqual(["read_registry", "read_virtual_registry"])
    expect(body.token).toMatch(/^gldt-[A-Za-z0-9_-]{20}$/)
    expect(fx.sim.tokens()[0]).toMatchObject({ type: "group", ownerId: 7, ownerPath: "group" })
    expect((await call(fx.sim, `${url}/abc`, { pat, method: "DELETE" })).body).toEqual({ error: "token_id is invalid" })
    const del = await call(fx.sim, `${url}/${body.id}`, { pat, method: "DELETE" })
    expect(del.status).toBe(204)
    expect(del.text).toBe("")
    const again = await call(fx.sim, `${url}/${body.id}`, { pat, method: "DELETE" })
    expect(again.status).toBe(404)
    expect(again.body).toEqual(NOT_FOUND)
  })
})

describe("moved projects (rows 39–40)", () => {
  it("row 39: POST/DELETE via a moved project's old path → 405", async () => {
    const t = await createToken(fx)
    const post = await call(fx.sim, "/api/v4/projects/old%2Fproject/deploy_tokens", { pat: fx.pats.maintainer, json: VALID })
    const del = await call(fx.sim, `/api/v4/projects/old%2Fproject/deploy_tokens/${t.id}`, { pat: fx.pats.maintainer, method: "DELETE" })
    for (const res of [post, del]) {
      expect(res.status).toBe(405)
      expect(res.body).toEqual({ message: "Non GET methods are not allowed for moved projects" })
    }
    expect(fx.sim.tokens().map((x) => x.id)).toEqual([t.id])
  })

  it("row 40: GET via a moved project's old path → 301 Location /api/v4/projects/<id>/deploy_tokens", async () => {
    const t = await createToken(fx)
    const res = await call(fx.sim, "/api/v4/projects/old%2Fproject/deploy_tokens", { pat: fx.pats.maintainer })
    expect(res.status).toBe(301)
    expect(res.headers.get("location")).toBe("/api/v4/projects/42/deploy_tokens")
    const followed = await call(fx.sim, "/api/v4/projects/old%2Fproject/deploy_tokens", { pat: fx.pats.maintainer, redirect: "follow" })
    expect(followed.status).toBe(200)
    expect((followed.body as { id: number }[]).map((x) => x.id)).toEqual([t.id])
    // A rename at run time behaves the same.
    fx.sim.moveProject(42, "group/renamed")
    const renamed = await call(fx.sim, `/api/v4/projects/group%2Fproject/deploy_tokens/${t.id}`, { pat: fx.pats.maintainer })
    expect(renamed.status).toBe(301)
    expect(renamed.headers.get("location")).toBe(`/api/v4/projects/42/deploy_tokens/${t.id}`)
    // …but not for callers who cannot see the project.
    expect((await call(fx.sim, "/api/v4/projects/old%2Fproject/deploy_tokens", { pat: fx.pats.outsider })).status).toBe(404)
  })
})

describe("namespace lookup (resolving a path to its numeric id)", () => {
  it("GET /projects/:path and /groups/:path answer the id; a moved project's old path answers 301 to it; unseen is 404", async () => {
    const project = await call(fx.sim, "/api/v4/projects/group%2Fproject", { pat: fx.pats.maintainer })
    expect(project.status).toBe(200)
    expect(project.body).toMatchObject({ id: 42, path_with_namespace: "group/project" })
    const group = await call(fx.sim, "/api/v4/groups/group", { pat: fx.pats.owner })
    expect(group.body).toMatchObject({ id: 7, full_path: "group" })
    const moved = await call(fx.sim, "/api/v4/projects/old%2Fproject", { pat: fx.pats.maintainer })
    expect(moved.status).toBe(301)
    expect(moved.headers.get("location")).toBe("/api/v4/projects/42")
    const followed = await call(fx.sim, "/api/v4/projects/old%2Fproject", { pat: fx.pats.maintainer, redirect: "follow" })
    expect(followed.body).toMatchObject({ id: 42 })
    expect((await call(fx.sim, "/api/v4/projects/group%2Fproject", { pat: fx.pats.outsider })).body).toEqual(PROJECT_NOT_FOUND)
  })

  it("GitLab's forever date 3000-01-01 is stored as no expiry and reported as null; 2999 dates are kept exactly", async () => {
    const url = "/api/v4/projects/42/deploy_tokens"
    const forever = await call(fx.sim, url, { pat: fx.pats.maintainer, json: { ...VALID, expires_at: "3000-01-01T00:00:00Z" } })
    expect((forever.body as { expires_at: unknown }).expires_at).toBeNull()
    const marked = await call(fx.sim, url, { pat: fx.pats.maintainer, json: { ...VALID, expires_at: "2999-06-01T12:34:56.789Z" } })
    expect((marked.body as { expires_at: unknown }).expires_at).toBe("2999-06-01T12:34:56.789Z")
  })
})

describe("throttling (row 41)", () => {
  it("row 41: over the throttle → 429 text/plain 'Retry later\\n' + RateLimit-* + Retry-After", async () => {
    let clock = Date.UTC(2030, 0, 1, 0, 0, 10)
    const throttled = await setup({ now: () => clock, rateLimit: { limit: 2, periodSeconds: 60 } })
    try {
      const path = "/api/v4/projects/42/deploy_tokens"
      const ok1 = await call(throttled.sim, path, { pat: throttled.pats.maintainer })
      const ok2 = await call(throttled.sim, path, { pat: throttled.pats.maintainer })
      expect([ok1.status, ok2.status]).toEqual([200, 200])
      expect(ok2.headers.get("ratelimit-remaining")).toBe("0")
      const limited = await call(throttled.sim, path, { pat: throttled.pats.maintainer, json: VALID })
      expect(limited.status).toBe(429)
      expect(limited.text).toBe("Retry later\n")
      expect(limited.headers.get("content-type")).toBe("text/plain")
      expect(limited.headers.get("ratelimit-name")).toBe("throttle_authenticated_api")
      expect(limited.headers.get("ratelimit-limit")).toBe("2")
      expect(limited.headers.get("ratelimit-observed")).toBe("3")
      expect(limited.headers.get("ratelimit-remaining")).toBe("0")
      expect(limited.headers.get("ratelimit-reset")).toBe(String(Date.UTC(2030, 0, 1, 0, 1, 0) / 1000))
      expect(limited.headers.get("ratelimit-resettime")).toBe(new Date(Date.UTC(2030, 0, 1, 0, 1, 0)).toUTCString())
      expect(limited.headers.get("retry-after")).toBe("50")
      expect(throttled.sim.tokens()).toEqual([])
      // Another user has their own budget; the next window resets.
      expect((await call(throttled.sim, path, { pat: throttled.pats.admin })).status).toBe(200)
      clock += 50_000
      expect((await call(throttled.sim, path, { pat: throttled.pats.maintainer })).status).toBe(200)
    } finally {
      await throttled.sim.close()
    }
  })
})

describe("using deploy tokens (rows 42–44)", () => {
  it("row 42: a deleted, revoked or expired deploy token no longer authenticates (git 401, /jwt/auth 401, packages 401)", async () => {
    const scopes = ["read_repository", "read_registry", "read_package_registry", "write_package_registry"]
    const deleted = await createToken(fx, { username: "del", scopes })
    const revoked = await createToken(fx, { username: "rev", scopes })
    const expiring = await createToken(fx, { username: "exp", scopes, expires_at: new Date(NOW + 60_000).toISOString() })
    for (const t of [deleted, revoked, expiring]) {
      expect((await gitProbe(fx, t.username, t.token)).status).toBe(200)
      expect((await jwtProbe(fx, t.username, t.token)).status).toBe(200)
      const put = await call(fx.sim, `/api/v4/projects/42/packages/generic/pkg/1.0/${t.username}.txt`, {
        method: "PUT",
        headers: { "deploy-token": t.token },
      })
      expect(put.status).toBe(201)
    }
    await call(fx.sim, `/api/v4/projects/42/deploy_tokens/${deleted.id}`, { method: "DELETE", pat: fx.pats.maintainer })
    fx.sim.revokeInUi(revoked.id)
    fx.sim.advanceClock(60_001)
    for (const t of [deleted, revoked, expiring]) {
      const git = await gitProbe(fx, t.username, t.token)
      expect(git.status).toBe(401)
      expect(git.headers.get("www-authenticate")).toBe('Basic realm="GitLab"')
      const jwt = await jwtProbe(fx, t.username, t.token)
      expect(jwt.status).toBe(401)
      expect(jwt.body).toMatchObject({ errors: [{ code: "UNAUTHORIZED" }] })
      const pkg = await call(fx.sim, `/api/v4/projects/42/packages/generic/pkg/1.0/${t.username}.txt`, { headers: { "deploy-token": t.token } })
      expect(pkg.status).toBe(401)
    }
    // The `expired` flag still reads false on the day of expiry (auth already stopped).
    const listed = await call(fx.sim, `/api/v4/projects/42/deploy_tokens/${expiring.id}`, { pat: fx.pats.maintainer })
    expect((listed.body as { expired: boolean }).expired).toBe(false)
  })

  it("row 42: registry JWTs issued earlier keep working until they expire", async () => {
    const t = await createToken(fx, { username: "reg", scopes: ["read_registry"] })
    const jwt = (await jwtProbe(fx, "reg", t.token)).body as { token: string; expires_in: number }
    expect(jwt.expires_in).toBe(300)
    const ping = () => call(fx.sim, "/v2/", { headers: { authorization: `Bearer ${jwt.token}` } })
    expect((await ping()).status).toBe(200)
    await call(fx.sim, `/api/v4/projects/42/deploy_tokens/${t.id}`, { method: "DELETE", pat: fx.pats.maintainer })
    expect((await jwtProbe(fx, "reg", t.token)).status).toBe(401)
    expect((await ping()).status).toBe(200)
    fx.sim.advanceClock(300_000)
    const expired = await ping()
    expect(expired.status).toBe(401)
    expect(expired.headers.get("www-authenticate")).toContain("/jwt/auth")
  })

  it("row 43: git/registry with a Basic username ≠ the token's username (exact, case-sensitive) → auth fails", async () => {
    const t = await createToken(fx, { username: "Deployer", scopes: ["read_repository", "read_registry"] })
    expect((await gitProbe(fx, "Deployer", t.token)).status).toBe(200)
    for (const username of ["deployer", "someone", `gitlab+deploy-token-${t.id}`]) {
      expect((await gitProbe(fx, username, t.token)).status).toBe(401)
      expect((await jwtProbe(fx, username, t.token)).status).toBe(401)
    }
    // Default usernames work only with the default username.
    const d = await createToken(fx, { scopes: ["read_repository"] })
    expect((await gitProbe(fx, `gitlab+deploy-token-${d.id}`, d.token)).status).toBe(200)
    expect((await gitProbe(fx, "Deployer", d.token)).status).toBe(401)
  })

  it("row 44: package API with Basic auth, wrong username and right password → accepted", async () => {
    const t = await createToken(fx, { username: "pkg", scopes: ["read_package_registry", "write_package_registry"] })
    const url = "/api/v4/projects/42/packages/generic/tool/2.0/tool.bin"
    const put = await call(fx.sim, url, { method: "PUT", headers: basic("not-the-username", t.token), raw: "payload" })
    expect(put.status).toBe(201)
    const get = await call(fx.sim, url, { headers: basic("whatever", t.token) })
    expect(get.status).toBe(200)
    expect(get.text).toBe("payload")
    // The same wrong username is refused by git.
    expect((await gitProbe(fx, "not-the-username", t.token)).status).toBe(401)
  })
})
