/**
 * The engine without Vault: its logical backend driven directly, with an in-memory mount storage
 * and the in-process GitLab simulator over TLS. Proves the lease semantics (mint with intent,
 * revoke with 404-is-done and retry on failure, renew capped by max TTL) and tidy's recovery.
 */
import { type SimDeployToken, type Simulator, seedDefaultWorld, startSimulator } from "@gldt/gitlab-sim"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { Request, Response, Storage } from "../vault/Logical.ts"
import { Engine, SECRET_TYPE } from "./Engine.ts"

const memoryStorage = (): Storage & { readonly map: Map<string, Buffer> } => {
  const map = new Map<string, Buffer>()
  return {
    map,
    list: async (prefix) => {
      const out = new Set<string>()
      for (const k of map.keys()) {
        if (!k.startsWith(prefix)) continue
        const rest = k.slice(prefix.length)
        const slash = rest.indexOf("/")
        out.add(slash < 0 ? rest : rest.slice(0, slash + 1))
      }
      return [...out].sort()
    },
    get: async (key) => (map.has(key) ? { key, value: map.get(key)! } : undefined),
    put: async (key, value) => void map.set(key, Buffer.from(value)),
    delete: async (key) => void map.delete(key),
  }
}

const req = (operation: string, path: string, data: Record<string, unknown> = {}, secret?: Request["secret"]): Request => ({
  id: "t",
  operation,
  path,
  data,
  secret,
  mountPoint: "gldt/",
})

const live = (tokens: ReadonlyArray<SimDeployToken>) => tokens.filter((t) => t.createdBy === "api" && !t.revoked)

let sim: Simulator
let pat: string

beforeAll(async () => {
  sim = await startSimulator({ tls: true })
  pat = seedDefaultWorld(sim).pat
})
afterAll(async () => {
  await sim?.close()
})

const newEngine = async (settleMs = 100) => {
  const storage = memoryStorage()
  const engine = new Engine({ createSettleMs: settleMs, gitlab: { baseDelay: "10 millis", maxAttempts: 2 } })
  await engine.setup({
    storage,
    system: { defaultLeaseTtlMs: async () => 3_600_000, maxLeaseTtlMs: async () => 24 * 3_600_000 },
    config: {},
    backendUuid: "u",
  })
  await engine.handleRequest(req("update", "config", { url: sim.url, token: pat, ca_pem: sim.caPem }))
  await engine.handleRequest(req("update", "roles/r", { project_id: "42", name: "unit", scopes: "read_repository" }))
  return { engine, storage }
}

const leaseOf = (res: Response | undefined): Request["secret"] => ({
  leaseId: "gldt/creds/r/x",
  leaseOptions: { ttlMs: res!.secret!.ttlMs, maxTtlMs: res!.secret!.maxTtlMs, renewable: true, incrementMs: 0, issueTime: Date.now() },
  internalData: res!.secret!.internalData,
})

describe("Engine", () => {
  it("mints under a lease whose internal data names the key, never the value", async () => {
    const { engine, storage } = await newEngine()
    const res = await engine.handleRequest(req("read", "creds/r"))
    const data = res!.data as { token: string; token_id: number }
    expect(live(sim.tokens()).some((t) => t.id === data.token_id && t.token === data.token)).toBe(true)
    expect(res!.secret!.internalData.secret_type).toBe(SECRET_TYPE)
    expect(JSON.stringify(res!.secret!.internalData)).not.toContain(data.token)
    // The mount's storage tracks ids, never the deploy token's value.
    for (const v of storage.map.values()) expect(v.toString()).not.toContain(data.token)
    await engine.handleRequest(req("revoke", "creds/r", {}, leaseOf(res)))
    expect(live(sim.tokens()).some((t) => t.id === data.token_id)).toBe(false)
  })

  it("revoke: a failure is an error (Vault retries) and the token stays tracked; the retry deletes it; 404 counts as done", async () => {
    const { engine } = await newEngine()
    const res = await engine.handleRequest(req("read", "creds/r"))
    const id = (res!.data as { token_id: number }).token_id
    const fault = sim.faults.add({ kind: "status5xx", status: 503, method: "DELETE", path: /deploy_tokens\/\d+$/, times: 10 })
    await expect(engine.handleRequest(req("revoke", "creds/r", {}, leaseOf(res)))).rejects.toThrow(/revoking the deploy token failed/)
    sim.faults.remove(fault)
    expect(live(sim.tokens()).some((t) => t.id === id)).toBe(true)
    // Vault's retry is not held back by core's own back-off: it deletes the token now.
    await engine.handleRequest(req("revoke", "creds/r", {}, leaseOf(res)))
    expect(live(sim.tokens()).some((t) => t.id === id)).toBe(false)
    // Someone deleted another lease's token meanwhile: the revocation's 404 settles that lease.
    const other = await engine.handleRequest(req("read", "creds/r"))
    sim.deleteToken((other!.data as { token_id: number }).token_id)
    await engine.handleRequest(req("revoke", "creds/r", {}, leaseOf(other)))
    await expect(engine.tidy("test")).resolves.toMatchObject({ orphansRevoked: 0, expiredRevoked: 0, errors: [] })
  })

  it("renew extends up to the max TTL and refuses past it", async () => {
    const { engine } = await newEngine()
    await engine.handleRequest(req("update", "roles/short", { project_id: "42", name: "short", scopes: ["read_repository"], ttl: 2, max_ttl: 5 }))
    const res = await engine.handleRequest(req("read", "creds/short"))
    expect(res!.secret).toMatchObject({ ttlMs: 2000, maxTtlMs: 5000, renewable: true })
    const lease = leaseOf(res)!
    const renewed = await engine.handleRequest(req("renew", "creds/short", {}, { ...lease, leaseOptions: { ...lease.leaseOptions, incrementMs: 60_000 } }))
    expect(renewed!.secret!.ttlMs).toBeLessThanOrEqual(5000)
    expect(renewed!.secret!.ttlMs).toBeGreaterThan(4000)
    const old = { ...lease, leaseOptions: { ...lease.leaseOptions, issueTime: Date.now() - 6000 } }
    await expect(engine.handleRequest(req("renew", "creds/short", {}, old))).rejects.toThrow(/max TTL/)
    await engine.handleRequest(req("revoke", "creds/short", {}, lease))
  })

  it("tidy revokes a token whose lease never reached Vault", async () => {
    const { engine, storage } = await newEngine()
    const res = await engine.handleRequest(req("read", "creds/r"))
    const id = (res!.data as { token_id: number }).token_id
    // As if the plugin died after minting, before Vault received the secret.
    for (const k of [...storage.map.keys()]) if (k.startsWith("leases/")) storage.map.delete(k)
    await expect(engine.tidy("test")).resolves.toMatchObject({ orphansRevoked: 1, unsettled: 0, errors: [] })
    expect(live(sim.tokens()).some((t) => t.id === id)).toBe(false)
  })

  it("a create whose answer was lost fails the read, and tidy revokes what it made once found", async () => {
    const { engine } = await newEngine(50)
    const before = new Set(sim.tokens().map((t) => t.id))
    sim.faults.add({ kind: "appliedButLost", method: "POST", path: /deploy_tokens$/, lose: 502, times: 1 })
    await expect(engine.handleRequest(req("read", "creds/r"))).rejects.toThrow(/GitLab: Unavailable/)
    const made = live(sim.tokens()).filter((t) => !before.has(t.id))
    // The lifecycle resolved it at once (the nonce in expires_at names it) or left it to tidy.
    await engine.tidy("test")
    for (const t of made) expect(live(sim.tokens()).some((l) => l.id === t.id)).toBe(false)
  })

  it("reading config never returns the access token", async () => {
    const { engine } = await newEngine()
    const res = await engine.handleRequest(req("read", "config"))
    expect(res!.data).not.toHaveProperty("token")
    expect(JSON.stringify(res)).not.toContain(pat)
  })
})
