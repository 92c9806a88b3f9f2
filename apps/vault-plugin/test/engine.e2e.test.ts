/**
 * The gldt secrets engine inside a real Vault dev server, against the GitLab simulator over TLS
 * (trusted through ca_pem). Each test names the behaviour it proves; the simulator's /_sim ground
 * truth is the judge of what is live in "GitLab".
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { eventually, type Harness, liveApiTokens, startHarness, vaultLog } from "./support.ts"

interface Creds {
  readonly lease_id: string
  readonly lease_duration: number
  readonly renewable: boolean
  readonly data: { username: string; token: string; token_id: number; expires_at: string | null }
}

let h: Harness
const minted: string[] = []

const readCreds = async (role: string): Promise<Creds> => {
  const res = await h.call("GET", `gldt/creds/${role}`, undefined, 200)
  const creds = res.body as Creds
  minted.push(creds.data.token)
  return creds
}

const writeRole = (role: string, body: Record<string, unknown>) => h.call("POST", `gldt/roles/${role}`, body, 204)

beforeAll(async () => {
  h = await startHarness()
})

afterAll(async () => {
  await h?.stop()
})

describe("gldt engine in Vault", () => {
  it("register, enable, configure, read creds: a live simulator token whose values match", async () => {
    await writeRole("app", { project_id: "42", name: "ci-pull", scopes: "read_repository,read_registry", username: "ci-bot", ttl: "1h", max_ttl: "2h" })
    const creds = await readCreds("app")
    expect(creds.lease_id).toMatch(/^gldt\/creds\/app\//)
    expect(creds.renewable).toBe(true)
    expect(creds.lease_duration).toBe(3600)
    const live = liveApiTokens(await h.sim.tokens())
    const token = live.find((t) => t.id === creds.data.token_id)
    expect(token, "the leased token exists in GitLab").toBeDefined()
    expect(token!.token).toBe(creds.data.token)
    expect(token!.username).toBe("ci-bot")
    expect(creds.data.username).toBe("ci-bot")
    expect(token!.name).toBe("ci-pull")
    expect([...token!.scopes].sort()).toEqual(["read_registry", "read_repository"])
    expect(token!.ownerId).toBe(42)
    // GitLab's expiry is the backstop: past the lease's max TTL (2h), by the documented day.
    const expires = Date.parse(creds.data.expires_at!)
    expect(expires).toBe(Date.parse(token!.expiresAt!))
    expect(expires - Date.now()).toBeGreaterThan(2 * 3_600_000)
    expect(expires - Date.now()).toBeLessThan(2 * 3_600_000 + 25 * 3_600_000)
    await h.call("PUT", "sys/leases/revoke", { lease_id: creds.lease_id }, 204)
  })

  it("reading config never returns the access token", async () => {
    const res = await h.call("GET", "gldt/config", undefined, 200)
    const data = (res.body as { data: Record<string, unknown> }).data
    expect(data.url).toBe(h.sim.url)
    expect(data.ca_pem).toBe(h.sim.caPem.trim())
    expect(data).not.toHaveProperty("token")
    expect(JSON.stringify(res.body)).not.toContain(h.sim.pat)
    // A write without the token keeps the stored one (creds still work).
    await h.call("POST", "gldt/config", { default_ttl: "30m" }, 204)
    expect(JSON.stringify((await h.call("GET", "gldt/config", undefined, 200)).body)).not.toContain(h.sim.pat)
  })

  it("refuses http GitLab URLs and bad role fields, naming the field and the fix", async () => {
    const http = await h.call("POST", "gldt/config", { url: h.sim.url.replace("https:", "http:"), token: "x" })
    expect(http.status).toBe(400)
    expect(JSON.stringify(http.body)).toMatch(/url: .*plain http.*refused/)
    const both = await h.call("POST", "gldt/roles/bad", { project_id: "42", group_id: "7", scopes: ["read_repository"] })
    expect(both.status).toBe(400)
    expect(JSON.stringify(both.body)).toContain("set exactly one")
    const scope = await h.call("POST", "gldt/roles/bad", { project_id: "42", scopes: ["api"] })
    expect(scope.status).toBe(400)
    expect(JSON.stringify(scope.body)).toMatch(/scopes\[0\]: \\"api\\" is not a deploy-token scope/)
    const unknownRole = await h.call("GET", "gldt/creds/nope")
    expect(unknownRole.status).toBe(400)
    expect(JSON.stringify(unknownRole.body)).toContain('role \\"nope\\" does not exist')
    const tidyWithFields = await h.call("POST", "gldt/tidy", { all: true })
    expect(tidyWithFields.status).toBe(400)
  })

  it("vault lease revoke: the token is gone", async () => {
    await writeRole("revoke", { group_id: "7", scopes: ["read_repository"] })
    const creds = await readCreds("revoke")
    expect(liveApiTokens(await h.sim.tokens()).some((t) => t.id === creds.data.token_id)).toBe(true)
    const out = await h.cli(["lease", "revoke", creds.lease_id])
    expect(out.code, out.stderr).toBe(0)
    // The CLI queues the revocation by default: it lands within moments.
    await eventually("the revoked lease's token is deleted", async () => !liveApiTokens(await h.sim.tokens()).some((t) => t.id === creds.data.token_id), 20_000)
  })

  it("a failed DELETE fails the revocation (the lease stays, Vault retries); a token already gone (404) counts as done", async () => {
    await writeRole("flaky", { project_id: "42", name: "flaky", scopes: ["read_repository"] })
    const creds = await readCreds("flaky")
    // More 503s than the client's own retries: the revocation itself fails.
    const fault = await h.sim.control<{ id: string }>("POST", "faults", {
      kind: "status5xx",
      status: 503,
      method: "DELETE",
      path: "deploy_tokens/\\d+$",
      times: 20,
    })
    const failed = await h.call("PUT", "sys/leases/revoke", { lease_id: creds.lease_id, sync: true })
    expect(failed.status).toBeGreaterThanOrEqual(400)
    expect(JSON.stringify(failed.body)).toContain("Vault retries")
    expect(liveApiTokens(await h.sim.tokens()).some((t) => t.id === creds.data.token_id)).toBe(true)
    const lease = await h.call("PUT", "sys/leases/lookup", { lease_id: creds.lease_id })
    expect(lease.status, "the lease is still there to be retried").toBe(200)
    await h.sim.control("DELETE", `faults/${fault.id}`)
    // Someone deleted the token meanwhile: GitLab's 404 settles the lease.
    await h.sim.control("DELETE", `tokens/${creds.data.token_id}`)
    await h.call("PUT", "sys/leases/revoke", { lease_id: creds.lease_id, sync: true }, 204)
    expect((await h.call("PUT", "sys/leases/lookup", { lease_id: creds.lease_id })).status).toBe(400)
  })

  it("lease expiry: the token is gone", async () => {
    await writeRole("short", { project_id: "42", name: "short-lived", scopes: ["read_repository"], ttl: 2, max_ttl: 4 })
    const creds = await readCreds("short")
    expect(creds.lease_duration).toBe(2)
    await eventually(
      "Vault revokes the expired lease's token",
      async () => !liveApiTokens(await h.sim.tokens()).some((t) => t.id === creds.data.token_id),
      20_000,
    )
  })

  it("vault lease renew extends the lease up to the max TTL, never past it", async () => {
    await writeRole("renew", { project_id: "42", name: "renewable", scopes: ["read_repository"], ttl: 3, max_ttl: 8 })
    const creds = await readCreds("renew")
    const first = await h.cli(["lease", "renew", "-format=json", "-increment=5s", creds.lease_id])
    expect(first.code, first.stderr).toBe(0)
    const renewed = JSON.parse(first.stdout) as { lease_duration: number }
    expect(renewed.lease_duration).toBeGreaterThan(3)
    expect(renewed.lease_duration).toBeLessThanOrEqual(8)
    // Past the max TTL the lease cannot be extended: Vault caps it to what is left.
    const second = await h.cli(["lease", "renew", "-format=json", "-increment=60s", creds.lease_id])
    expect(second.code, second.stderr).toBe(0)
    const capped = JSON.parse(second.stdout) as { lease_duration: number }
    expect(capped.lease_duration).toBeLessThanOrEqual(8)
    expect(liveApiTokens(await h.sim.tokens()).some((t) => t.id === creds.data.token_id)).toBe(true)
    await eventually("the token is revoked at the max TTL", async () => !liveApiTokens(await h.sim.tokens()).some((t) => t.id === creds.data.token_id), 20_000)
  })

  it("20 reads, then revoke-prefix: zero live tokens of ours", async () => {
    await writeRole("many", { project_id: "42", name: "many", scopes: ["read_registry"] })
    const leases = await Promise.all(Array.from({ length: 20 }, () => readCreds("many")))
    expect(new Set(leases.map((c) => c.data.token_id)).size).toBe(20)
    expect(liveApiTokens(await h.sim.tokens(), "many")).toHaveLength(20)
    await h.call("PUT", "sys/leases/revoke-prefix/gldt/creds/many", {}, 204)
    await eventually("every token of the prefix is revoked", async () => liveApiTokens(await h.sim.tokens(), "many").length === 0, 30_000)
  })

  it("killing the plugin mid-request: Vault restarts it and no token leaks", async () => {
    await writeRole("crash", { project_id: "42", name: "crash", scopes: ["read_repository"] })
    const [pid] = h.pluginPids()
    expect(pid, "the engine runs as its own process").toBeDefined()
    // The create is applied in GitLab, then its answer is held back: the plugin dies in between.
    await h.sim.control("POST", "faults", { kind: "latency", method: "POST", path: "deploy_tokens$", ms: 15_000, phase: "after", times: 1 })
    const inFlight = h.vault.request("GET", "gldt/creds/crash")
    await eventually("the create reached GitLab", async () => liveApiTokens(await h.sim.tokens(), "crash").length === 1, 20_000)
    const orphan = liveApiTokens(await h.sim.tokens(), "crash")[0]!.id
    process.kill(pid!, "SIGKILL")
    // Vault either retries the request on a restarted plugin or reports the crash; both are fine, a leak is not.
    await inFlight.catch(() => undefined)
    // Vault restarts the plugin when a request finds it gone; a request racing the exit may still fail once.
    let after: Creds | undefined
    await eventually("Vault serves creds again from a restarted plugin", async () => {
      const res = await h.vault.request("GET", "gldt/creds/crash")
      if (res.status === 200) after = res.body as Creds
      return after !== undefined
    })
    minted.push(after!.data.token)
    const restarted = h.pluginPids()
    expect(restarted.length).toBeGreaterThan(0)
    expect(restarted).not.toContain(pid)
    expect(after!.data.token_id).not.toBe(orphan)
    // Recovery on start (and tidy) revokes the token whose lease never reached Vault.
    await eventually("the killed request's token is revoked", async () => !liveApiTokens(await h.sim.tokens()).some((t) => t.id === orphan), 30_000)
    const tidy = await h.call("POST", "gldt/tidy", {}, 200)
    expect((tidy.body as { data: { unsettled: number } }).data.unsettled).toBe(0)
    // Every live token of the role is held by a lease Vault knows about.
    const leases = (await h.call("LIST", "sys/leases/lookup/gldt/creds/crash", undefined, 200)).body as { data: { keys: string[] } }
    expect(liveApiTokens(await h.sim.tokens(), "crash")).toHaveLength(leases.data.keys.length)
    await h.call("PUT", "sys/leases/revoke-prefix/gldt/creds/crash", {}, 204)
    await eventually("no token of the role is left", async () => liveApiTokens(await h.sim.tokens(), "crash").length === 0, 30_000)
  })

  it("no access token or deploy-token value reaches Vault's log", () => {
    const text = vaultLog(h.vault)
    expect(text).toContain("deploy token leased")
    expect(text).not.toContain(h.sim.pat)
    for (const t of minted) expect(text).not.toContain(t)
  })
})
