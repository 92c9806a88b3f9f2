import { afterEach, beforeEach, describe, expect, it } from "vitest"
import { parseRubyDateTime, toSentence } from "../src/params.ts"
import { call, type Fixture, setup } from "./helpers.ts"

let fx: Fixture
beforeEach(async () => {
  fx = await setup()
})
afterEach(async () => {
  await fx.sim.close()
})

const URL = "/api/v4/projects/42/deploy_tokens"

describe("create parameter encodings", () => {
  it("JSON array, JSON comma-separated string, form scopes[], form comma-separated, query string", async () => {
    const results = [
      await call(fx.sim, URL, { pat: fx.pats.maintainer, json: { name: "a", scopes: ["write_package_registry", "read_repository"] } }),
      await call(fx.sim, URL, { pat: fx.pats.maintainer, json: { name: "b", scopes: "write_package_registry, read_repository" } }),
      await call(fx.sim, URL, { pat: fx.pats.maintainer, form: "name=c&scopes[]=write_package_registry&scopes[]=read_repository" }),
      await call(fx.sim, URL, { pat: fx.pats.maintainer, form: "name=d&scopes=write_package_registry%2Cread_repository" }),
      await call(fx.sim, `${URL}?name=e&scopes=write_package_registry,read_repository`, { pat: fx.pats.maintainer, method: "POST" }),
      await call(fx.sim, URL, { pat: fx.pats.maintainer, json: { name: "f", scopes: ["write_package_registry,read_repository"] } }),
    ]
    for (const res of results) {
      expect(res.status).toBe(201)
      expect((res.body as { scopes: string[] }).scopes).toEqual(["read_repository", "write_package_registry"])
    }
    expect(fx.sim.tokens().map((t) => t.name)).toEqual(["a", "b", "c", "d", "e", "f"])
  })

  it("scopes come back in canonical order, duplicates collapsed, all seven accepted", async () => {
    const all = [
      "write_virtual_registry",
      "read_virtual_registry",
      "write_package_registry",
      "read_package_registry",
      "write_registry",
      "read_registry",
      "read_repository",
      "read_registry",
    ]
    const res = await call(fx.sim, URL, { pat: fx.pats.maintainer, json: { name: "all", scopes: all } })
    expect((res.body as { scopes: string[] }).scopes).toEqual([
      "read_repository",
      "read_registry",
      "write_registry",
      "read_package_registry",
      "write_package_registry",
      "read_virtual_registry",
      "write_virtual_registry",
    ])
  })

  it("expires_at: dates, date-times with offsets (form needs %2B), stored as UTC ms", async () => {
    const cases: [string, string][] = [
      ["2031-01-01", "2031-01-01T00:00:00.000Z"],
      ["2031-03-15T08:00:00Z", "2031-03-15T08:00:00.000Z"],
      ["2031-03-15T08:00:00+02:00", "2031-03-15T06:00:00.000Z"],
      ["2031-03-15T08:00:00.123456-0130", "2031-03-15T09:30:00.123Z"],
      ["2031-03-15 08:00", "2031-03-15T08:00:00.000Z"],
      ["20310315T080000Z", "2031-03-15T08:00:00.000Z"],
    ]
    for (const [input, output] of cases) {
      const res = await call(fx.sim, URL, { pat: fx.pats.maintainer, json: { name: "x", scopes: ["read_repository"], expires_at: input } })
      expect(res.status, input).toBe(201)
      expect((res.body as { expires_at: string }).expires_at).toBe(output)
    }
    const form = await call(fx.sim, URL, { pat: fx.pats.maintainer, form: "name=f&scopes=read_repository&expires_at=2031-03-15T08:00:00%2B02:00" })
    expect((form.body as { expires_at: string }).expires_at).toBe("2031-03-15T06:00:00.000Z")
  })

  it("username: blank or whitespace means the default; numbers coerce to strings", async () => {
    const blank = (await call(fx.sim, URL, { pat: fx.pats.maintainer, json: { name: "x", scopes: ["read_repository"], username: "   " } })).body as {
      id: number
      username: string
    }
    expect(blank.username).toBe(`gitlab+deploy-token-${blank.id}`)
    const numeric = (await call(fx.sim, URL, { pat: fx.pats.maintainer, json: { name: 5, scopes: ["read_repository"], username: 123 } })).body as {
      name: string
      username: string
    }
    expect(numeric).toMatchObject({ name: "5", username: "123" })
    const invalid = await call(fx.sim, URL, { pat: fx.pats.maintainer, json: { name: ["x"], scopes: ["read_repository"], username: { a: 1 } } })
    expect(invalid.body).toEqual({ error: "name is invalid, username is invalid" })
  })

  it("edge cases: empty name allowed; JSON null name → 500; malformed JSON → 400; null scopes → 400", async () => {
    expect((await call(fx.sim, URL, { pat: fx.pats.maintainer, json: { name: "", scopes: ["read_repository"] } })).status).toBe(201)
    const nullName = await call(fx.sim, URL, { pat: fx.pats.maintainer, json: { name: null, scopes: ["read_repository"] } })
    expect(nullName.status).toBe(500)
    expect(nullName.body).toEqual({ message: "500 Internal Server Error" })
    const bad = await call(fx.sim, URL, { pat: fx.pats.maintainer, headers: { "content-type": "application/json" }, method: "POST" })
    expect(bad.body).toEqual({ error: "name is missing, scopes is missing" })
    const malformed = await fetch(fx.sim.url + URL, {
      method: "POST",
      headers: { "PRIVATE-TOKEN": fx.pats.maintainer, "content-type": "application/json" },
      body: "{nope",
    })
    expect(malformed.status).toBe(400)
    const nullScopes = await call(fx.sim, URL, { pat: fx.pats.maintainer, json: { name: "x", scopes: null } })
    expect(nullScopes.body).toEqual({ error: "scopes does not have a valid value" })
    expect(fx.sim.tokens()).toHaveLength(1)
  })

  it("parameter errors come before authentication (Grape validates first)", async () => {
    const res = await call(fx.sim, URL, { pat: "glpat-unknown", json: { scopes: ["read_repository"] } })
    expect(res.status).toBe(400)
    expect(res.body).toEqual({ error: "name is missing" })
  })

  it("PAT via Authorization: Bearer and ?private_token= is accepted like PRIVATE-TOKEN", async () => {
    expect((await call(fx.sim, URL, { headers: { authorization: `Bearer ${fx.pats.maintainer}` } })).status).toBe(200)
    const viaQuery = await call(fx.sim, `${URL}?private_token=${fx.pats.maintainer}`)
    expect(viaQuery.status).toBe(200)
    expect(viaQuery.headers.get("link")).not.toContain(fx.pats.maintainer)
  })
})

describe("helpers", () => {
  it("parseRubyDateTime accepts ISO forms and rejects junk", () => {
    expect(parseRubyDateTime("2024-02-29")).toBe(Date.UTC(2024, 1, 29))
    expect(parseRubyDateTime("2023-02-29")).toBeNull()
    expect(parseRubyDateTime("0001-01-01T00:00:00Z")).toBe(new Date("0001-01-01T00:00:00Z").getTime())
    expect(parseRubyDateTime("Jan 2 2031")).toBe(Date.UTC(2031, 0, 2))
    expect(parseRubyDateTime("foo")).toBeNull()
    expect(parseRubyDateTime("12")).toBeNull()
  })

  it("toSentence joins like ActiveSupport", () => {
    expect(toSentence(["a"])).toBe("a")
    expect(toSentence(["a", "b"])).toBe("a and b")
    expect(toSentence(["a", "b", "c"])).toBe("a, b, and c")
  })
})
