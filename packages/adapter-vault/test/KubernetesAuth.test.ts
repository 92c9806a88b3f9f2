/**
 * Kubernetes auth end to end: Vault's kubernetes auth method checks a service-account JWT with a real
 * kube-apiserver's TokenReview; the client reads the JWT from a file at login.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { type Kube, startKube, startVault, type Vault } from "@gldt/testenv"
import { Effect } from "effect"
import { afterAll, beforeAll, expect, it } from "vitest"
import { VaultClient } from "../src/VaultClient.ts"
import { api, collectingLogger, failure, run } from "./helpers.ts"

let kube: Kube | undefined
let vault: Vault | undefined
const dir = mkdtempSync(join(tmpdir(), "gldt-vault-k8s-"))

beforeAll(async () => {
  ;[kube, vault] = await Promise.all([startKube({ controllerManager: false, log: () => undefined }), startVault({ log: () => undefined })])
  await api(vault, "POST", "sys/auth/kubernetes", { type: "kubernetes" })
  // Vault reviews service-account tokens with the apiserver's admin token (allowed to create TokenReviews).
  await api(vault, "POST", "auth/kubernetes/config", {
    kubernetes_host: kube.server,
    kubernetes_ca_cert: kube.caPem,
    token_reviewer_jwt: kube.token,
    disable_local_ca_jwt: true,
  })
  await api(vault, "PUT", "sys/policies/acl/k8s-reader", { policy: `path "secret/data/k8s/*" { capabilities = ["read"] }` })
}, 40 * 60_000)

afterAll(async () => {
  await Promise.all([kube?.stop(), vault?.stop()])
  rmSync(dir, { recursive: true, force: true })
})

/** A namespace with a service account, a Vault role bound to it, and the account's JWT in a file. */
const serviceAccount = async (name: string) => {
  const ns = await kube!.newNamespace("vault-auth")
  await kube!.kubectl(["create", "serviceaccount", name], { namespace: ns })
  const jwt = (await kube!.kubectl(["create", "token", name, "--duration=10m"], { namespace: ns })).stdout.trim()
  const file = join(dir, `${ns}-${name}.jwt`)
  writeFileSync(file, `${jwt}\n`, { mode: 0o600 })
  await api(vault!, "POST", `auth/kubernetes/role/${ns}`, {
    bound_service_account_names: ["gldt"],
    bound_service_account_namespaces: [ns],
    token_policies: ["k8s-reader"],
    token_ttl: "1h",
  })
  return { ns, jwt, file }
}

const read = Effect.gen(function* () {
  return yield* (yield* VaultClient).request({ method: "GET", path: "secret/data/k8s/x", capabilities: ["read"] })
})

it("logs in with a service-account JWT read from a file, and uses the token it gets", async () => {
  const { ns, file, jwt } = await serviceAccount("gldt")
  const logs: string[] = []
  const answer = await run(VaultClient.layer({ addr: vault!.addr, auth: { method: "kubernetes", role: ns, jwtFile: file } }), read, collectingLogger(logs))
  expect(answer.status).toBe(404)
  expect(logs.some((l) => l.includes("logged in with kubernetes at auth/kubernetes (lease 3600 s, renewable)"))).toBe(true)
  expect(logs.join("\n")).not.toContain(jwt)
})

it("a service account the role is not bound to is VaultAuthFailed naming the role; a missing JWT file names the file", async () => {
  const { ns, file, jwt } = await serviceAccount("someone-else")
  const e = await failure(VaultClient.layer({ addr: vault!.addr, auth: { method: "kubernetes", role: ns, jwtFile: file } }), read)
  expect(e._tag).toBe("VaultAuthFailed")
  expect(e.message).toContain(`check the role "${ns}", that the service account is bound to it`)
  expect(e.message).not.toContain(jwt)
  const missing = await failure(VaultClient.layer({ addr: vault!.addr, auth: { method: "kubernetes", role: ns, jwtFile: join(dir, "nope") } }), read)
  expect(missing.message).toContain(`cannot read the service-account token file ${join(dir, "nope")} (ENOENT)`)
})
