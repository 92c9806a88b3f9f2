import { X509Certificate } from "node:crypto"
import { request } from "node:https"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { generateTlsMaterial, type Simulator, seedDefaultWorld, startSimulator } from "../src/index.ts"

interface HttpsResult {
  readonly status: number
  readonly body: string
}

const get = (url: string, options: { ca?: string; headers?: Record<string, string>; method?: string; body?: string }): Promise<HttpsResult> =>
  new Promise((resolve, reject) => {
    const req = request(url, { method: options.method ?? "GET", headers: options.headers, ...(options.ca === undefined ? {} : { ca: options.ca }) }, (res) => {
      const chunks: Buffer[] = []
      res.on("data", (c: Buffer) => chunks.push(c))
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") }))
    })
    req.on("error", reject)
    req.end(options.body)
  })

let sim: Simulator
let pat: string
beforeAll(async () => {
  sim = await startSimulator({ tls: true })
  pat = seedDefaultWorld(sim).pat
})
afterAll(async () => {
  await sim.close()
})

describe("TLS mode", () => {
  it("serves https with a certificate signed by caPem for 127.0.0.1 and localhost", async () => {
    expect(sim.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/)
    expect(sim.caPem).toMatch(/^-----BEGIN CERTIFICATE-----\n/)
    const ca = sim.caPem ?? ""
    const viaIp = await get(`${sim.apiUrl}/projects/42/deploy_tokens`, { ca, headers: { "PRIVATE-TOKEN": pat } })
    expect(viaIp.status).toBe(200)
    expect(JSON.parse(viaIp.body)).toEqual([])
    const viaName = await get(`https://localhost:${sim.port}/api/v4/projects/group%2Fproject/deploy_tokens`, { ca, headers: { "PRIVATE-TOKEN": pat } })
    expect(viaName.status).toBe(200)
  })

  it("faults work over TLS: appliedButLost resets the connection after creating the token", async () => {
    sim.faults.add({ kind: "appliedButLost", method: "POST" })
    const post = get(`${sim.apiUrl}/projects/42/deploy_tokens`, {
      ca: sim.caPem ?? "",
      method: "POST",
      headers: { "PRIVATE-TOKEN": pat, "content-type": "application/json" },
      body: JSON.stringify({ name: "tls", scopes: ["read_repository"] }),
    })
    await expect(post).rejects.toThrow(/socket hang up|ECONNRESET/)
    expect(sim.tokens().map((t) => t.name)).toEqual(["tls"])
    sim.faults.add({ kind: "reset" })
    await expect(get(`${sim.apiUrl}/projects/42/deploy_tokens`, { ca: sim.caPem ?? "", headers: { "PRIVATE-TOKEN": pat } })).rejects.toThrow()
    const after = await get(`${sim.apiUrl}/projects/42/deploy_tokens`, { ca: sim.caPem ?? "", headers: { "PRIVATE-TOKEN": pat } })
    expect(JSON.parse(after.body)).toHaveLength(1)
  })

  it("is rejected without the CA", async () => {
    await expect(get(`${sim.apiUrl}/deploy_tokens`, {})).rejects.toThrow(/certificate|self.signed|issuer/i)
  })

  it("generated material: CA is a CA, server cert names localhost/127.0.0.1/::1 and verifies", () => {
    const material = generateTlsMaterial({ dnsNames: ["gitlab.test"] })
    const ca = new X509Certificate(material.caPem)
    const cert = new X509Certificate(material.certPem)
    expect(ca.ca).toBe(true)
    expect(cert.ca).toBe(false)
    expect(cert.checkIssued(ca)).toBe(true)
    expect(cert.verify(ca.publicKey)).toBe(true)
    expect(cert.checkHost("localhost")).toBe("localhost")
    expect(cert.checkHost("gitlab.test")).toBe("gitlab.test")
    expect(cert.checkIP("127.0.0.1")).toBe("127.0.0.1")
    expect(cert.checkIP("::1")).toBe("::1")
    expect(cert.checkHost("example.com")).toBeUndefined()
    expect(new Date(cert.validTo).getTime()).toBeGreaterThan(Date.now() + 300 * 86_400_000)
  })
})
