/**
 * Without GITLAB_TOKEN, a reachable kubeconfig supplies the access token: gldt reads the Secret the
 * manifest's spec.auth.token.secretRef names, from a real kube-apiserver (tooling/testenv).
 */
import { writeFileSync } from "node:fs"
import { join } from "node:path"
import { type Kube, startKube } from "@gldt/testenv"
import { afterAll, beforeAll, expect, it } from "vitest"
import { gldt, killStragglers, removeTempDirs, type Sim, show, startSim, tempDir, writeManifest } from "./support.ts"

let kube: Kube
let sim: Sim
let dir: string

beforeAll(async () => {
  dir = tempDir("kubeconfig")
  ;[kube, sim] = await Promise.all([startKube({ controllerManager: false }), startSim({ tls: false, dir })])
}, 2_400_000)

afterAll(async () => {
  await sim?.stop()
  await kube?.stop()
  killStragglers()
  removeTempDirs()
})

/** A fresh namespace and a kubeconfig whose current context points at it (the manifest names none). */
const namespaceWithKubeconfig = async () => {
  const ns = await kube.newNamespace("gldt-cli")
  const kubeconfig = join(dir, `kubeconfig-${ns}`)
  writeFileSync(kubeconfig, (await kube.kubectl(["config", "view", "--raw", "--kubeconfig", kube.kubeconfig])).stdout)
  await kube.kubectl(["config", "set-context", "--current", `--namespace=${ns}`, "--kubeconfig", kubeconfig])
  return { ns, kubeconfig }
}

it("reads the access token from spec.auth.token.secretRef through KUBECONFIG when GITLAB_TOKEN is unset", async () => {
  const { ns, kubeconfig } = await namespaceWithKubeconfig()
  await kube.kubectl(["create", "secret", "generic", "gitlab-api-token", `--from-literal=token=${sim.pat}`], { namespace: ns })
  const manifest = writeManifest(dir, { url: sim.url, name: "from-cluster" }, "from-cluster.yaml")
  const r = await gldt(["preflight", "-f", manifest, "--allow-http", "-o", "json"], { cwd: dir, env: { KUBECONFIG: kubeconfig } })
  expect(r.code, show(r)).toBe(0)
  expect(JSON.parse(r.stdout)).toMatchObject({ command: "preflight", ok: true, canManage: true })
  expect(r.stdout + r.stderr).not.toContain(sim.pat)
})

it("a missing Secret is bad input that names it, and nothing is sent to GitLab", async () => {
  const { ns, kubeconfig } = await namespaceWithKubeconfig()
  const manifest = writeManifest(dir, { url: sim.url, name: "no-secret" }, "no-secret.yaml")
  await sim.clearRequests()
  const r = await gldt(["generate", "-f", manifest, "--allow-http"], { cwd: dir, env: { KUBECONFIG: kubeconfig } })
  expect(r.code, show(r)).toBe(2)
  expect(r.stderr).toContain(`spec.auth.token.secretRef: Secret ${ns}/gitlab-api-token does not exist`)
  expect(await sim.requests()).toEqual([])
})
