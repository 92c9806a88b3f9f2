import { afterEach, beforeEach, describe, expect, it } from "vitest"
import { call, type Fixture, setup } from "./helpers.ts"

let fx: Fixture
let ids: number[]
beforeEach(async () => {
  fx = await setup()
  ids = []
  for (let i = 0; i < 45; i++) ids.push(fx.sim.createForeignToken({ target: { project: 42 }, name: `t${i}`, scopes: ["read_repository"] }).id)
})
afterEach(async () => {
  await fx.sim.close()
})

const list = (query: string) => call(fx.sim, `/api/v4/projects/group%2Fproject/deploy_tokens${query}`, { pat: fx.pats.maintainer })
const idsOf = (body: unknown): number[] => (body as { id: number }[]).map((t) => t.id)

describe("offset pagination", () => {
  it("first page: defaults, empty X-Prev-Page, totals and Link rels", async () => {
    const res = await list("")
    const base = `${fx.sim.url}/api/v4/projects/group%2Fproject/deploy_tokens`
    expect(idsOf(res.body)).toEqual(ids.slice(0, 20))
    expect(res.headers.get("x-per-page")).toBe("20")
    expect(res.headers.get("x-page")).toBe("1")
    expect(res.headers.get("x-next-page")).toBe("2")
    expect(res.headers.has("x-prev-page")).toBe(true)
    expect(res.headers.get("x-prev-page")).toBe("")
    expect(res.headers.get("x-total")).toBe("45")
    expect(res.headers.get("x-total-pages")).toBe("3")
    expect(res.headers.get("link")).toBe(
      [
        `<${base}?id=group%2Fproject&page=2&per_page=20>; rel="next"`,
        `<${base}?id=group%2Fproject&page=1&per_page=20>; rel="first"`,
        `<${base}?id=group%2Fproject&page=3&per_page=20>; rel="last"`,
      ].join(", "),
    )
  })

  it("middle and last pages; Link keeps other params (sorted) and rel order prev, next, first, last", async () => {
    const middle = await list("?page=2&active=true")
    expect(idsOf(middle.body)).toEqual(ids.slice(20, 40))
    expect(middle.headers.get("x-next-page")).toBe("3")
    expect(middle.headers.get("x-prev-page")).toBe("1")
    const rels = [...(middle.headers.get("link") ?? "").matchAll(/rel="(\w+)"/g)].map((m) => m[1])
    expect(rels).toEqual(["prev", "next", "first", "last"])
    expect(middle.headers.get("link")).toContain('?active=true&id=group%2Fproject&page=1&per_page=20>; rel="prev"')

    const last = await list("?page=3")
    expect(idsOf(last.body)).toEqual(ids.slice(40))
    expect(last.headers.get("x-next-page")).toBe("")
    expect(last.headers.get("x-prev-page")).toBe("2")
    expect(last.headers.get("link")).not.toContain('rel="next"')
  })

  it("a page past the end → 200 [] with both neighbours empty", async () => {
    const res = await list("?page=9")
    expect(res.status).toBe(200)
    expect(res.body).toEqual([])
    expect(res.headers.get("x-page")).toBe("9")
    expect(res.headers.get("x-next-page")).toBe("")
    expect(res.headers.get("x-prev-page")).toBe("")
    expect(res.headers.get("x-total")).toBe("45")
    expect(res.headers.get("x-total-pages")).toBe("3")
  })

  it("per_page is capped at 100 (the Link keeps the requested value); odd values fall back", async () => {
    const capped = await list("?per_page=1000")
    expect(capped.headers.get("x-per-page")).toBe("100")
    expect(idsOf(capped.body)).toEqual(ids)
    expect(capped.headers.get("x-total-pages")).toBe("1")
    expect(capped.headers.get("link")).toContain("per_page=1000")
    expect((await list("?per_page=0")).headers.get("x-per-page")).toBe("20")
    expect((await list("?per_page=-5")).headers.get("x-per-page")).toBe("20")
    const pageZero = await list("?page=0&per_page=5")
    expect(pageZero.headers.get("x-page")).toBe("1")
    expect(idsOf(pageZero.body)).toEqual(ids.slice(0, 5))
  })

  it("HEAD answers the same status and pagination headers without a body", async () => {
    const res = await call(fx.sim, "/api/v4/projects/42/deploy_tokens?page=2", { method: "HEAD", pat: fx.pats.maintainer })
    expect(res.status).toBe(200)
    expect(res.text).toBe("")
    expect(res.headers.get("x-page")).toBe("2")
    expect(res.headers.get("x-total")).toBe("45")
  })

  it("invalid page/per_page → 400 naming each bad param", async () => {
    expect((await list("?page=x")).body).toEqual({ error: "page is invalid" })
    expect((await list("?per_page=x&active=maybe")).body).toEqual({ error: "per_page is invalid, active is invalid" })
  })

  it("an empty list still has X-Total-Pages 1 and first/last links", async () => {
    const res = await call(fx.sim, "/api/v4/projects/44/deploy_tokens", { pat: fx.pats.maintainer })
    expect(res.body).toEqual([])
    expect(res.headers.get("x-total")).toBe("0")
    expect(res.headers.get("x-total-pages")).toBe("1")
    expect(res.headers.get("x-next-page")).toBe("")
    expect(res.headers.get("link")).toMatch(/rel="first".*rel="last"/)
  })

  it("more than 10,000 rows: no X-Total, X-Total-Pages or rel=last", async () => {
    for (let i = 0; i < 10_000; i++) fx.sim.createForeignToken({ target: { group: 7 }, name: "bulk", scopes: ["read_registry"] })
    const res = await call(fx.sim, "/api/v4/groups/7/deploy_tokens?per_page=100&page=2", { pat: fx.pats.groupOwner })
    expect((res.body as unknown[]).length).toBe(100)
    expect(res.headers.get("x-total")).toBe("10000")
    fx.sim.createForeignToken({ target: { group: 7 }, name: "one more", scopes: ["read_registry"] })
    const big = await call(fx.sim, "/api/v4/groups/7/deploy_tokens?per_page=100&page=2", { pat: fx.pats.groupOwner })
    expect(big.headers.has("x-total")).toBe(false)
    expect(big.headers.has("x-total-pages")).toBe(false)
    expect(big.headers.get("x-next-page")).toBe("3")
    expect(big.headers.get("x-prev-page")).toBe("1")
    expect(big.headers.get("link")).not.toContain('rel="last"')
    const end = await call(fx.sim, "/api/v4/groups/7/deploy_tokens?per_page=100&page=101", { pat: fx.pats.groupOwner })
    expect((end.body as unknown[]).length).toBe(1)
    expect(end.headers.get("x-next-page")).toBe("")
  })
})
