/**
 * The client's failures on a real Vault dev server, each a typed error saying what to fix: sealed,
 * unreachable, permission denied, expired token, KV v1; AppRole login with renewal and re-login.
 */
import * as http from "node:http"
import { Effect, Redacted } from "effect"
import { startVault, type Vault } from "@gldt/testenv"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { checkAddr, VaultClient, type VaultClientOptions } from "../src/VaultClient.ts"
import { api, clientLayer, collectingLogger, failure, run, sleep, tokenAuth, tokenWithPolicy, unique, useVault } from "./helpers.ts"

const vault = useVault()

const get = (path: string) =>
  Effect.gen(function* () {
    return yield* (yield* VaultClient).request({ method: "GET", path, capabilities: ["read"] })
  })

describe("VaultClient errors", () => {
  it("permission denied names the path and the capability the policy lacks", async () => {
    const t = await tokenWithPolicy(vault(), `path "secret/data/allowed" { capabilities = ["read"] }`)
    const e = await failure(clientLayer(vault(), { auth: tokenAuth(t) }), get("secret/data/forbidden/x"))
    expect(e._tag).toBe("VaultPermissionDenied")
    expect(e.message).toBe(
      'permission denied on secret/data/forbidden/x: the Vault token\'s policy needs "read" on path "secret/data/forbidden/x" (add: path "secret/data/forbidden/x" { capabilities = ["read"] })',
    )
    expect(e.message).not.toContain(t)
  })

  it("an unknown or revoked token is VaultTokenExpired telling how to get a fresh one", async () => {
    const t = await tokenWithPolicy(vault(), `path "secret/*" { capabilities = ["read"] }`)
    await api(vault(), "POST", "auth/token/revoke", { token: t })
    const e = await failure(clientLayer(vault(), { auth: tokenAuth(t) }), get("secret/data/x"))
    expect(e._tag).toBe("VaultTokenExpired")
    expect(e.message).toContain("the Vault token is invalid, expired or revoked")
    expect(e.message).toContain("VAULT_TOKEN")
    expect(e.message).not.toContain(t)
  })

  it("a token whose TTL runs out while in use is VaultTokenExpired naming when it expired", async () => {
    const t = await tokenWithPolicy(vault(), `path "secret/*" { capabilities = ["read"] }`, { ttl: "3s", renewable: false })
    const layer = clientLayer(vault(), { auth: tokenAuth(t) })
    const e = await run(
      layer,
      Effect.gen(function* () {
        const first = yield* get("secret/data/x")
        expect(first.status).toBe(404)
        yield* Effect.promise(() => sleep(3_500))
        return yield* Effect.flip(get("secret/data/x"))
      }),
    )
    expect(e._tag).toBe("VaultTokenExpired")
    expect(e.message).toMatch(/^the Vault token expired at \d{4}-\d\d-\d\dT[\d:.]+Z; give a fresh token/)
  })

  it("a renewable token with a short TTL is renewed while in use", async () => {
    const t = await tokenWithPolicy(vault(), `path "secret/*" { capabilities = ["read"] }`, { ttl: "3s", renewable: true })
    const logs: string[] = []
    const started = Date.now()
    await run(
      clientLayer(vault(), { auth: tokenAuth(t) }),
      Effect.gen(function* () {
        for (let i = 0; i < 8; i++) {
          expect((yield* get("secret/data/x")).status).toBe(404)
          yield* Effect.promise(() => sleep(750))
        }
      }),
      collectingLogger(logs),
    )
    expect(Date.now() - started).toBeGreaterThan(5_500)
    // Every request above succeeded for 6 s, twice the token's TTL: only renewals kept it alive.
    expect(logs.filter((l) => l.includes("renewed the token")).length).toBeGreaterThanOrEqual(2)
  })

  it("a given token first used late is renewed by the TTL it was created with, not by what was left of it", async () => {
    const t = await tokenWithPolicy(vault(), `path "secret/*" { capabilities = ["read"] }`, { ttl: "6s", renewable: true })
    // Lookup-self will say 2 or 3 s are left; renewing by that would shrink every lease.
    await sleep(3_000)
    const logs: string[] = []
    await run(
      clientLayer(vault(), { auth: tokenAuth(t) }),
      Effect.gen(function* () {
        for (let i = 0; i < 4; i++) {
          expect((yield* get("secret/data/x")).status).toBe(404)
          yield* Effect.promise(() => sleep(700))
        }
      }),
      collectingLogger(logs),
    )
    const renewals = logs.filter((l) => l.includes("renewed the token"))
    expect(renewals.length).toBeGreaterThanOrEqual(1)
    expect(renewals.every((l) => l.includes("(lease 6 s)"))).toBe(true)
  })

  it("a sealed Vault is VaultSealed telling to unseal it", async () => {
    const own = await startVault({ log: () => undefined })
    try {
      const layer = clientLayer(own)
      expect((await run(layer, get("secret/data/x"))).status).toBe(404)
      await api(own, "PUT", "sys/seal")
      const e = await failure(layer, get("secret/data/x"))
      expect(e._tag).toBe("VaultSealed")
      expect(e.message).toBe(`Vault at ${own.addr} is sealed; unseal it (vault operator unseal) and retry — nothing was written`)
    } finally {
      await own.stop()
    }
  })

  it("an unreachable Vault is VaultUnreachable naming the address, after a bounded number of attempts", async () => {
    const server = http.createServer()
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r))
    const port = (server.address() as { port: number }).port
    await new Promise<void>((r) => server.close(() => r()))
    const started = Date.now()
    const e = await failure(VaultClient.layer({ addr: `http://127.0.0.1:${port}`, auth: tokenAuth("hvs.not-used-anywhere") }), get("secret/data/x"))
    expect(e._tag).toBe("VaultUnreachable")
    expect(e.message).toContain(`cannot reach Vault at http://127.0.0.1:${port}: ECONNREFUSED`)
    expect(e.message).toContain("check VAULT_ADDR")
    expect(e.message).not.toContain("hvs.not-used-anywhere")
    expect(Date.now() - started).toBeLessThan(10_000)
  })

  it("plain http to a remote host is refused unless allowed; loopback is fine", () => {
    const remote = checkAddr("http://vault.example.com:8200", false)
    expect(remote).toMatchObject({ _tag: "VaultConfigError" })
    expect((remote as Error).message).toContain("refusing to send a Vault token over plain http to http://vault.example.com:8200")
    expect(checkAddr("http://vault.example.com:8200", true)).toBeInstanceOf(URL)
    expect(checkAddr("http://127.0.0.1:8200/", false)).toBeInstanceOf(URL)
    expect(checkAddr("https://user:pw@vault.example.com", false)).toMatchObject({ _tag: "VaultConfigError" })
    expect(checkAddr("vault.example.com", false)).toMatchObject({ _tag: "VaultConfigError" })
  })
})

describe("AppRole", () => {
  const setup = async (role: Record<string, unknown>) => {
    const mount = unique("approle")
    await api(vault(), "POST", `sys/auth/${mount}`, { type: "approle" })
    const policy = unique("p")
    await api(vault(), "PUT", `sys/policies/acl/${policy}`, { policy: `path "secret/*" { capabilities = ["read"] }` })
    await api(vault(), "POST", `auth/${mount}/role/gldt`, { token_policies: [policy], ...role })
    const roleId = ((await api(vault(), "GET", `auth/${mount}/role/gldt/role-id`)) as { data: { role_id: string } }).data.role_id
    const secretId = ((await api(vault(), "POST", `auth/${mount}/role/gldt/secret-id`)) as { data: { secret_id: string } }).data.secret_id
    return { mount, roleId, secretId }
  }

  it("logs in, renews while the lease allows, and logs in again once the token reaches its max TTL", async () => {
    const { mount, roleId, secretId } = await setup({ token_ttl: "2s", token_max_ttl: "4s" })
    const logs: string[] = []
    await run(
      VaultClient.layer({ addr: vault().addr, auth: { method: "approle", roleId, secretId: Redacted.make(secretId), mount } }),
      Effect.gen(function* () {
        for (let i = 0; i < 14; i++) {
          expect((yield* get("secret/data/x")).status).toBe(404)
          yield* Effect.promise(() => sleep(500))
        }
      }),
      collectingLogger(logs),
    )
    const logins = logs.filter((l) => l.includes(`logged in with approle at auth/${mount}`))
    expect(logins.length).toBeGreaterThanOrEqual(2)
    expect(logs.some((l) => l.includes("renewed the token"))).toBe(true)
    expect(logs.join("\n")).not.toContain(secretId)
  })

  it("a wrong secret id is VaultAuthFailed saying what to check, without the secret id", async () => {
    const { mount, roleId } = await setup({})
    const wrong = "00000000-1111-2222-3333-444444444444"
    const e = await failure(
      VaultClient.layer({ addr: vault().addr, auth: { method: "approle", roleId, secretId: Redacted.make(wrong), mount } }),
      get("secret/data/x"),
    )
    expect(e._tag).toBe("VaultAuthFailed")
    expect(e.message).toContain(`Vault refused the approle login at auth/${mount}/login`)
    expect(e.message).toContain("check the role id and secret id")
    expect(e.message).not.toContain(wrong)
  })
})

describe("namespace", () => {
  let seen: http.IncomingHttpHeaders[] = []
  const fake = http.createServer((req, res) => {
    seen.push(req.headers)
    res.writeHead(200, { "content-type": "application/json" })
    res.end(JSON.stringify({ data: { ttl: 0, renewable: false } }))
  })
  afterAll(() => new Promise<void>((r) => fake.close(() => r())))

  it("sends X-Vault-Namespace (from the option) on every request, including the token lookup", async () => {
    await new Promise<void>((r) => fake.listen(0, "127.0.0.1", r))
    const addr = `http://127.0.0.1:${(fake.address() as { port: number }).port}`
    seen = []
    await run(VaultClient.layer({ addr, namespace: "/team-a/ci/", auth: tokenAuth("hvs.fake") }), get("secret/data/x"))
    expect(seen.map((h) => h["x-vault-namespace"])).toEqual(["team-a/ci", "team-a/ci"])
    expect(seen.map((h) => h["x-vault-token"])).toEqual(["hvs.fake", "hvs.fake"])
  })
})

describe("TLS", () => {
  let tlsVault: Vault | undefined
  beforeAll(async () => {
    tlsVault = await startVault({ log: () => undefined, tls: { sans: ["vault.gldt.test"] } })
  }, 40 * 60_000)
  afterAll(() => tlsVault?.stop())

  it("trusts Vault's certificate only with its CA, and checks the configured TLS server name", async () => {
    const tv = tlsVault!
    expect(tv.addr.startsWith("https://127.0.0.1:")).toBe(true)
    const withCa = (extra: Partial<VaultClientOptions> = {}) => clientLayer(tv, { caPem: tv.caPem, ...extra })
    expect((await run(withCa(), get("secret/data/x"))).status).toBe(404)
    // The name the certificate carries besides the address.
    expect((await run(withCa({ tlsServerName: "vault.gldt.test" }), get("secret/data/x"))).status).toBe(404)

    const untrusted = await failure(clientLayer(tv), get("secret/data/x"))
    expect(untrusted._tag).toBe("VaultUnreachable")
    expect(untrusted.message).toMatch(/SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE|unable to verify/)
    expect(untrusted.message).toContain("VAULT_CACERT")

    const wrongName = await failure(withCa({ tlsServerName: "other.gldt.test" }), get("secret/data/x"))
    expect(wrongName._tag).toBe("VaultUnreachable")
    expect(wrongName.message).toContain("ERR_TLS_CERT_ALTNAME_INVALID")
  })
})
