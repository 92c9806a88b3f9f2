import { afterEach, beforeEach, describe, expect, it } from "vitest"
import { FaultController, startSimulator } from "../src/index.ts"
import { call, createToken, type Fixture, setup } from "./helpers.ts"

let fx: Fixture
beforeEach(async () => {
  fx = await setup()
})
afterEach(async () => {
  await fx.sim.close()
})

const CREATE = "/api/v4/projects/42/deploy_tokens"
const VALID = { name: "x", scopes: ["read_repository"] }

/** fetch rejects when the server destroys the connection. */
const expectConnectionError = async (p: Promise<unknown>): Promise<void> => {
  await expect(p).rejects.toThrow(/fetch failed|socket|ECONNRESET|other side closed/i)
}

describe("fault kinds", () => {
  it("latency delays the response, then proceeds normally", async () => {
    fx.sim.faults.add({ kind: "latency", ms: 150, method: "GET", path: "/deploy_tokens$" })
    const started = performance.now()
    const res = await call(fx.sim, CREATE, { pat: fx.pats.maintainer })
    expect(performance.now() - started).toBeGreaterThanOrEqual(140)
    expect(res.status).toBe(200)
    const fast = performance.now()
    await call(fx.sim, CREATE, { pat: fx.pats.maintainer })
    expect(performance.now() - fast).toBeLessThan(140)
    expect(fx.sim.requests().map((r) => r.fault)).toEqual(["latency", null])
  })

  it("latency with phase 'after' applies the operation before delaying the answer", async () => {
    fx.sim.faults.add({ kind: "latency", ms: 300, phase: "after", method: "POST" })
    const controller = new AbortController()
    const pending = fetch(fx.sim.url + CREATE, {
      method: "POST",
      headers: { "PRIVATE-TOKEN": fx.pats.maintainer, "content-type": "application/json" },
      body: JSON.stringify(VALID),
      signal: controller.signal,
    })
    await new Promise((r) => setTimeout(r, 100))
    // The token exists although the client has not seen the response yet.
    expect(fx.sim.tokens()).toHaveLength(1)
    controller.abort()
    await expect(pending).rejects.toThrow()
  })

  it.each([500, 502, 503, 504] as const)("status5xx %i is returned without applying the operation", async (status) => {
    fx.sim.faults.add({ kind: "status5xx", status, method: "POST" })
    const res = await call(fx.sim, CREATE, { pat: fx.pats.maintainer, json: VALID })
    expect(res.status).toBe(status)
    if (status === 500) expect(res.body).toEqual({ message: "500 Internal Server Error" })
    else expect(res.text).toContain(String(status))
    expect(fx.sim.tokens()).toEqual([])
    // times defaults to 1: the retry succeeds.
    expect((await call(fx.sim, CREATE, { pat: fx.pats.maintainer, json: VALID })).status).toBe(201)
    expect(fx.sim.tokens()).toHaveLength(1)
  })

  it("status5xx on DELETE leaves the token in place", async () => {
    const { id } = await createToken(fx)
    fx.sim.faults.add({ kind: "status5xx", status: 503, method: "DELETE" })
    expect((await call(fx.sim, `${CREATE}/${id}`, { method: "DELETE", pat: fx.pats.maintainer })).status).toBe(503)
    expect(fx.sim.tokens().map((t) => t.id)).toEqual([id])
  })

  it("rateLimit answers a row-41 429 without applying the operation", async () => {
    fx.sim.faults.add({ kind: "rateLimit", retryAfter: 7, limit: 600, method: "POST" })
    const res = await call(fx.sim, CREATE, { pat: fx.pats.maintainer, json: VALID })
    expect(res.status).toBe(429)
    expect(res.text).toBe("Retry later\n")
    expect(res.headers.get("content-type")).toBe("text/plain")
    expect(res.headers.get("retry-after")).toBe("7")
    expect(res.headers.get("ratelimit-name")).toBe("throttle_authenticated_api")
    expect(res.headers.get("ratelimit-limit")).toBe("600")
    expect(res.headers.get("ratelimit-observed")).toBe("601")
    expect(res.headers.get("ratelimit-remaining")).toBe("0")
    expect(Number(res.headers.get("ratelimit-reset"))).toBe(Math.floor(fx.sim.now() / 1000) + 7)
    expect(res.headers.get("ratelimit-resettime")).toBe(new Date((Math.floor(fx.sim.now() / 1000) + 7) * 1000).toUTCString())
    expect(fx.sim.tokens()).toEqual([])
  })

  it("reset destroys the connection without applying the operation", async () => {
    fx.sim.faults.add({ kind: "reset", method: "POST" })
    await expectConnectionError(call(fx.sim, CREATE, { pat: fx.pats.maintainer, json: VALID }))
    expect(fx.sim.tokens()).toEqual([])
    const log = fx.sim.requests()
    expect(log).toHaveLength(1)
    expect(log[0]).toMatchObject({ method: "POST", status: 0, fault: "reset", appliedStatus: null })
    expect((await call(fx.sim, CREATE, { pat: fx.pats.maintainer, json: VALID })).status).toBe(201)
  })

  it("appliedButLost (reset) on POST: the token exists although the client saw an error", async () => {
    fx.sim.faults.add({ kind: "appliedButLost", method: "POST", path: "/deploy_tokens$" })
    await expectConnectionError(call(fx.sim, CREATE, { pat: fx.pats.maintainer, json: { ...VALID, username: "orphan" } }))
    const tokens = fx.sim.tokens()
    expect(tokens).toHaveLength(1)
    expect(tokens[0]).toMatchObject({ username: "orphan", createdBy: "api", active: true })
    expect(tokens[0]?.token).toMatch(/^gldt-/)
    expect(fx.sim.requests()[0]).toMatchObject({ status: 0, fault: "appliedButLost", appliedStatus: 201 })
    // The orphan shows up in the list, the only way a client can find it.
    const list = await call(fx.sim, CREATE, { pat: fx.pats.maintainer })
    expect((list.body as { username: string }[]).map((t) => t.username)).toEqual(["orphan"])
  })

  it.each([502, 504] as const)("appliedButLost with lose=%i on POST answers a gateway error after creating", async (lose) => {
    fx.sim.faults.add({ kind: "appliedButLost", lose, method: "POST" })
    const res = await call(fx.sim, CREATE, { pat: fx.pats.maintainer, json: VALID })
    expect(res.status).toBe(lose)
    expect(res.text).not.toContain("gldt-")
    expect(fx.sim.tokens()).toHaveLength(1)
    expect(fx.sim.requests()[0]).toMatchObject({ status: lose, appliedStatus: 201 })
  })

  it("appliedButLost on DELETE: the token is gone although the client saw an error", async () => {
    const a = await createToken(fx)
    const b = await createToken(fx)
    fx.sim.faults.add({ kind: "appliedButLost", lose: 504, method: "DELETE", times: 2 })
    expect((await call(fx.sim, `${CREATE}/${a.id}`, { method: "DELETE", pat: fx.pats.maintainer })).status).toBe(504)
    fx.sim.faults.clear()
    fx.sim.faults.add({ kind: "appliedButLost", method: "DELETE" })
    await expectConnectionError(call(fx.sim, `${CREATE}/${b.id}`, { method: "DELETE", pat: fx.pats.maintainer }))
    expect(fx.sim.tokens()).toEqual([])
    // Retrying the DELETE now gives 404, which clients must treat as success.
    expect((await call(fx.sim, `${CREATE}/${a.id}`, { method: "DELETE", pat: fx.pats.maintainer })).status).toBe(404)
    expect(fx.sim.tokens({ includeDeleted: true }).map((t) => t.id)).toEqual([a.id, b.id])
  })

  it("appliedButLost never fires on GET (and is not used up by it)", async () => {
    fx.sim.faults.add({ kind: "appliedButLost", lose: 502 })
    expect((await call(fx.sim, CREATE, { pat: fx.pats.maintainer })).status).toBe(200)
    expect(fx.sim.faults.list()[0]).toMatchObject({ remaining: 1, fired: 0 })
    expect((await call(fx.sim, CREATE, { pat: fx.pats.maintainer, json: VALID })).status).toBe(502)
    expect(fx.sim.faults.list()).toEqual([])
  })
})

describe("fault matching", () => {
  it("matches on method and path regex; times, skip and remove", async () => {
    const { id } = await createToken(fx)
    fx.sim.faults.add({ kind: "status5xx", status: 502, method: "GET", path: /deploy_tokens\/\d+$/, times: 2 })
    const listed = await call(fx.sim, CREATE, { pat: fx.pats.maintainer })
    expect(listed.status).toBe(200)
    const one = `${CREATE}/${id}`
    expect((await call(fx.sim, one, { pat: fx.pats.maintainer })).status).toBe(502)
    expect((await call(fx.sim, one, { pat: fx.pats.maintainer })).status).toBe(502)
    expect((await call(fx.sim, one, { pat: fx.pats.maintainer })).status).toBe(200)

    fx.sim.faults.add({ kind: "status5xx", status: 500, method: "*", skip: 2 })
    const statuses: number[] = []
    for (let i = 0; i < 4; i++) statuses.push((await call(fx.sim, one, { pat: fx.pats.maintainer })).status)
    expect(statuses).toEqual([200, 200, 500, 200])

    const ruleId = fx.sim.faults.add({ kind: "status5xx", times: Number.POSITIVE_INFINITY })
    expect(fx.sim.faults.list()[0]).toMatchObject({ id: ruleId, remaining: null })
    expect((await call(fx.sim, one, { pat: fx.pats.maintainer })).status).toBe(500)
    expect((await call(fx.sim, one, { pat: fx.pats.maintainer })).status).toBe(500)
    expect(fx.sim.faults.remove(ruleId)).toBe(true)
    expect((await call(fx.sim, one, { pat: fx.pats.maintainer })).status).toBe(200)
  })

  it("latency stacks with an outcome fault; the log records both", async () => {
    fx.sim.faults.add({ kind: "latency", ms: 50 })
    fx.sim.faults.add({ kind: "status5xx", status: 503 })
    const res = await call(fx.sim, CREATE, { pat: fx.pats.maintainer })
    expect(res.status).toBe(503)
    expect(fx.sim.requests()[0]).toMatchObject({ fault: "status5xx", faults: ["latency", "status5xx"] })
    expect(fx.sim.requests()[0]?.durationMs).toBeGreaterThanOrEqual(45)
  })

  it("probability rules are deterministic for a given seed", async () => {
    const pattern = async (seed: number): Promise<number[]> => {
      const sim = await startSimulator({ seed })
      try {
        sim.faults.add({ kind: "status5xx", status: 503, probability: 0.5 })
        const out: number[] = []
        for (let i = 0; i < 24; i++) out.push((await fetch(`${sim.url}/api/v4/deploy_tokens`)).status)
        return out
      } finally {
        await sim.close()
      }
    }
    const a = await pattern(42)
    expect(await pattern(42)).toEqual(a)
    expect(a).toContain(503)
    expect(a).toContain(401)
    expect(await pattern(7)).not.toEqual(a)

    const c1 = new FaultController()
    const c2 = new FaultController()
    c1.add({ kind: "reset", probability: 0.3, seed: 99 })
    c2.add({ kind: "reset", probability: 0.3, seed: 99 })
    const run = (c: FaultController) => Array.from({ length: 50 }, () => c.decide("GET", "/x").terminal?.kind ?? "-").join("")
    expect(run(c1)).toBe(run(c2))
  })

  it("rejects malformed rules", () => {
    expect(() => fx.sim.faults.add({ kind: "nope" } as never)).toThrow(/kind/)
    expect(() => fx.sim.faults.add({ kind: "status5xx", status: 501 } as never)).toThrow(/status/)
    expect(() => fx.sim.faults.add({ kind: "appliedButLost", lose: 500 } as never)).toThrow(/lose/)
    expect(() => fx.sim.faults.add({ kind: "reset", probability: 2 })).toThrow(/probability/)
    expect(() => fx.sim.faults.add({ kind: "latency" } as never)).toThrow(/ms/)
  })

  it("/_sim endpoints are never faulted, and faults can be managed over HTTP", async () => {
    const added = await call(fx.sim, "/_sim/faults", { json: { kind: "status5xx", status: 502, method: "POST", path: "deploy_tokens$", times: 1 } })
    expect(added.status).toBe(201)
    const id = (added.body as { id: string }).id
    fx.sim.faults.add({ kind: "reset" })
    expect((await call(fx.sim, "/_sim/faults")).body).toMatchObject([{ id, kind: "status5xx", path: "deploy_tokens$", remaining: 1 }, { kind: "reset" }])
    expect((await call(fx.sim, `/_sim/faults/${id}`, { method: "DELETE" })).status).toBe(204)
    expect((await call(fx.sim, "/_sim/faults", { method: "DELETE" })).status).toBe(204)
    expect(fx.sim.faults.list()).toEqual([])
    expect((await call(fx.sim, "/_sim/faults", { json: { kind: "bogus" } })).status).toBe(400)
  })
})

describe("built-in throttle", () => {
  it("counts anonymous clients per IP with throttle_unauthenticated_api, and can be turned off", async () => {
    fx.sim.setRateLimit({ limit: 1, periodSeconds: 3600 })
    expect((await call(fx.sim, "/api/v4/projects/43/deploy_tokens")).status).toBe(403)
    const limited = await call(fx.sim, "/api/v4/projects/43/deploy_tokens")
    expect(limited.status).toBe(429)
    expect(limited.headers.get("ratelimit-name")).toBe("throttle_unauthenticated_api")
    expect(limited.headers.get("ratelimit-limit")).toBe("1")
    fx.sim.setRateLimit(null)
    expect((await call(fx.sim, "/api/v4/projects/43/deploy_tokens")).status).toBe(403)
  })
})
