/**
 * The Helm chart, checked with the real `helm` (built from its Go module by @gldt/testenv): it
 * lints, the committed plain manifests are its rendering, the API server accepts every object
 * (server-side dry run), and the controller running with exactly the chart's RBAC (as its
 * ServiceAccount) delivers, rotates its Lease and revokes: least privilege that is enough.
 */
import { execFileSync } from "node:child_process"
import { readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { ensureTool, type Kube } from "@gldt/testenv"
import { afterAll, assert, beforeAll, describe, it } from "vitest"
import { parseAllDocuments } from "yaml"
import { APP_DIR, CHART_DIR, RENDERINGS, render } from "../scripts/render-manifests.ts"
import {
  apply,
  authSecretYaml,
  decode,
  eventually,
  getJson,
  killAll,
  live,
  type Sim,
  seedManifests,
  startCluster,
  startController,
  startSim,
} from "./support.ts"

let helm: string
let kube: Kube
let sim: Sim

beforeAll(async () => {
  helm = (await ensureTool("helm")).info.path
  ;[kube, sim] = await Promise.all([startCluster(), startSim()])
}, 1_800_000)

afterAll(async () => {
  killAll()
  await sim?.stop()
  await kube?.stop()
})

type Doc = { kind: string; metadata: { name: string }; rules?: Array<{ resources: string[]; verbs: string[] }> }
const docs = (text: string) =>
  parseAllDocuments(text)
    .map((d) => d.toJS() as Doc)
    .filter((d) => d !== null)

describe("chart", () => {
  it("passes helm lint", () => {
    const out = execFileSync(helm, ["lint", CHART_DIR, "--strict"], { encoding: "utf8" })
    assert.include(out, "0 chart(s) failed")
  })

  it("the committed plain manifests are the chart's rendering", () => {
    for (const r of RENDERINGS) {
      assert.strictEqual(
        readFileSync(join(APP_DIR, "deploy", r.file), "utf8"),
        render(helm, r.args),
        `${r.file} is stale: node apps/controller/scripts/render-manifests.ts`,
      )
    }
  })

  it("renders a Deployment with probes, a metrics Service and RBAC without wildcards", () => {
    const objects = docs(render(helm, RENDERINGS[1]!.args))
    const kinds = objects.map((o) => o.kind).sort()
    assert.deepStrictEqual(kinds, ["ClusterRole", "ClusterRoleBinding", "Deployment", "Role", "RoleBinding", "Service", "ServiceAccount"])
    const deployment = objects.find((o) => o.kind === "Deployment") as unknown as {
      spec: { replicas: number; template: { spec: { containers: Array<{ args: string[]; livenessProbe: unknown; readinessProbe: unknown }> } } }
    }
    assert.strictEqual(deployment.spec.replicas, 2)
    const container = deployment.spec.template.spec.containers[0]!
    assert.include(container.args, "--leader-elect")
    assert.isDefined(container.livenessProbe)
    assert.isDefined(container.readinessProbe)
    for (const role of objects.filter((o) => o.kind === "ClusterRole" || o.kind === "Role")) {
      for (const rule of role.rules ?? []) {
        assert.notInclude(rule.verbs, "*")
        assert.notInclude(rule.resources, "*")
      }
    }
  })

  it("every rendered object is accepted by the API server (server-side dry run)", async () => {
    await kube.kubectl(["create", "namespace", "gldt-system"])
    for (const r of RENDERINGS) {
      await kube.kubectl(["apply", "--dry-run=server", "-f", join(APP_DIR, "deploy", r.file)])
    }
  })

  it("the controller with exactly the chart's RBAC delivers, leads and revokes", async () => {
    // The chart's RBAC objects for the HA rendering, applied for real, then a token of its ServiceAccount.
    const rbac = docs(readFileSync(join(APP_DIR, "deploy", "gldt-controller-ha.yaml"), "utf8")).filter((o) => o.kind !== "Deployment")
    await kube.kubectl(["apply", "-f", "-"], { input: rbac.map((o) => JSON.stringify(o)).join("\n") })
    const token = (await kube.kubectl(["create", "token", "gldt-gldt-controller", "-n", "gldt-system", "--duration=1h"])).stdout.trim()
    const kubeconfig = join(kube.dir, "sa-kubeconfig.yaml")
    writeFileSync(
      kubeconfig,
      JSON.stringify({
        apiVersion: "v1",
        kind: "Config",
        clusters: [{ name: "c", cluster: { server: kube.server, "certificate-authority-data": Buffer.from(kube.caPem).toString("base64") } }],
        users: [{ name: "sa", user: { token } }],
        contexts: [{ name: "c", context: { cluster: "c", user: "sa" } }],
        "current-context": "c",
      }),
    )
    const ns = await kube.newNamespace("rbac")
    await apply(kube, ns, authSecretYaml(sim.pat))
    // The CA through a caProvider ConfigMap, so the ConfigMap verbs (read, watch, finalizer patch) are exercised too.
    await apply(kube, ns, `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: gitlab-ca\ndata:\n  ca.crt: ${JSON.stringify(sim.caPem)}\n`)
    await apply(
      kube,
      ns,
      seedManifests({ url: sim.url, caPem: sim.caPem, caProvider: { type: "ConfigMap", name: "gitlab-ca", key: "ca.crt" } }).replace(
        'name: "eso-managed"',
        'name: "rbac-token"',
      ),
    )
    const caFinalizers = async () =>
      ((await getJson(kube, ["configmap", "gitlab-ca"], ns))?.metadata as { finalizers?: string[] } | undefined)?.finalizers ?? []
    const c = startController({ ...kube, kubeconfig }, [
      "--leader-elect",
      "--leader-election-namespace",
      "gldt-system",
      "--namespace",
      ns,
      "--metrics-bind-address",
      "0",
      "--health-probe-bind-address",
      "0",
    ])
    try {
      const secret = await eventually(async () => {
        const s = await getJson(kube, ["secret", "gitlab-deploy-token"], ns)
        if (s === undefined) throw new Error(`no Secret yet:\n${c.logs().slice(-3000)}`)
        return decode((s.data as Record<string, string>).token)
      }, 90_000)
      assert.isTrue(live(await sim.tokens()).some((t) => t.token === secret))
      assert.include(await caFinalizers(), "gldt.dev/ca-in-use")
      assert.notInclude(c.logs(), "forbidden")
      await kube.kubectl(["delete", "externalsecret", "gitlab-deploy-token", "--wait=true", "--timeout=30s"], { namespace: ns })
      assert.lengthOf(
        live(await sim.tokens()).filter((t) => t.name === "rbac-token"),
        0,
      )
      await eventually(async () => assert.notInclude(await caFinalizers(), "gldt.dev/ca-in-use"), 30_000)
      assert.notInclude(c.logs(), "forbidden", "an API call was refused by the chart's RBAC")
    } finally {
      await c.stop()
    }
  }, 300_000)
})
