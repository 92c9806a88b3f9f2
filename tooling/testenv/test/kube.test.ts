import { request } from "node:https"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { type Kube, startKube } from "../src/index.ts"

// One real control plane for the whole file. A cold first run builds the binaries (see README).
let kubeOrUndefined: Kube | undefined
const kube = (): Kube => {
  if (!kubeOrUndefined) throw new Error("control plane not started")
  return kubeOrUndefined
}

beforeAll(async () => {
  kubeOrUndefined = await startKube()
}, 40 * 60_000)

afterAll(async () => {
  await kubeOrUndefined?.stop()
})

interface ApiResponse {
  readonly status: number
  readonly body: string
}

/** A raw HTTPS call to the API server, TLS verified against the generated CA. */
const api = (method: string, path: string, token?: string): Promise<ApiResponse> =>
  new Promise((ok, ko) => {
    const req = request(`${kube().server}${path}`, { method, ca: kube().caPem, headers: token ? { authorization: `Bearer ${token}` } : {} }, (res) => {
      let body = ""
      res.setEncoding("utf8").on("data", (d: string) => {
        body += d
      })
      res.on("end", () => ok({ status: res.statusCode ?? 0, body }))
    })
    req.on("error", ko)
    req.end()
  })

/** Retry `check` until it stops throwing (controllers and RBAC caches are eventually consistent). */
const eventually = async <A>(check: () => Promise<A>, timeoutMs = 90_000): Promise<A> => {
  const end = Date.now() + timeoutMs
  for (;;) {
    try {
      return await check()
    } catch (e) {
      if (Date.now() > end) throw e
      await new Promise((r) => setTimeout(r, 500))
    }
  }
}

const json = (s: string): Record<string, unknown> => JSON.parse(s) as Record<string, unknown>

const CRD = {
  apiVersion: "apiextensions.k8s.io/v1",
  kind: "CustomResourceDefinition",
  metadata: { name: "widgets.testenv.gldt.example" },
  spec: {
    group: "testenv.gldt.example",
    scope: "Namespaced",
    names: { plural: "widgets", singular: "widget", kind: "Widget", listKind: "WidgetList" },
    versions: [
      {
        name: "v1",
        served: true,
        storage: true,
        schema: {
          openAPIV3Schema: {
            type: "object",
            properties: {
              spec: {
                type: "object",
                required: ["size"],
                properties: {
                  size: { type: "integer", minimum: 1 },
                  color: { type: "string", enum: ["red", "blue"] },
                },
              },
            },
          },
        },
      },
    ],
  },
}

const widget = (name: string, spec: Record<string, unknown>) =>
  JSON.stringify({ apiVersion: "testenv.gldt.example/v1", kind: "Widget", metadata: { name }, spec })

describe("real kube-apiserver", () => {
  it("serves the built version over TLS that verifies against the generated CA", async () => {
    const v = await api("GET", "/version")
    expect(v.status).toBe(200)
    expect(json(v.body).gitVersion).toBe(kube().version)
    const out = await kube().kubectl(["version", "-o", "json"])
    const versions = json(out.stdout) as { clientVersion: { gitVersion: string }; serverVersion: { gitVersion: string } }
    expect(versions.serverVersion.gitVersion).toBe(kube().version)
    expect(versions.clientVersion.gitVersion).toBe(kube().version)
  })

  it("lets kubectl create a namespace and objects in it", async () => {
    const ns = await kube().newNamespace("kubectl")
    expect(ns).toMatch(/^kubectl-[0-9a-f]{8}$/)
    const got = json((await kube().kubectl(["get", "namespace", ns, "-o", "json"])).stdout) as { status: { phase: string } }
    expect(got.status.phase).toBe("Active")

    const cm = { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "settings" }, data: { greeting: "hello" } }
    await kube().kubectl(["apply", "-f", "-"], { namespace: ns, input: JSON.stringify(cm) })
    const back = (await kube().kubectl(["get", "configmap", "settings", "-o", "jsonpath={.data.greeting}"], { namespace: ns })).stdout
    expect(back).toBe("hello")
  })

  it("applies a CRD and a custom object, and enforces the CRD's schema", async () => {
    await kube().kubectl(["apply", "-f", "-"], { input: JSON.stringify(CRD) })
    await kube().kubectl(["wait", "--for=condition=Established", "crd/widgets.testenv.gldt.example", "--timeout=60s"])
    const ns = await kube().newNamespace("crd")

    await eventually(() => kube().kubectl(["apply", "-f", "-"], { namespace: ns, input: widget("w1", { size: 3, color: "red" }) }), 30_000)
    const w = json((await kube().kubectl(["get", "widget", "w1", "-o", "json"], { namespace: ns })).stdout) as {
      spec: unknown
      metadata: { uid: string }
    }
    expect(w.spec).toEqual({ size: 3, color: "red" })
    expect(w.metadata.uid).toMatch(/^[0-9a-f-]{36}$/)

    const bad = await kube().kubectl(["apply", "-f", "-"], { namespace: ns, input: widget("w2", { size: 0, color: "green" }), reject: false })
    expect(bad.code).not.toBe(0)
    expect(bad.stderr).toMatch(/spec\.size/)
    expect(bad.stderr).toMatch(/spec\.color/)
    const listed = (await kube().kubectl(["get", "widgets", "-o", "name"], { namespace: ns })).stdout.trim()
    expect(listed).toBe("widget.testenv.gldt.example/w1")
  })

  it("authenticates and authorizes with RBAC", async () => {
    // Anonymous: authenticated as system:anonymous, then denied by RBAC.
    const anon = await api("GET", "/api/v1/namespaces")
    expect(anon.status).toBe(403)
    expect(anon.body).toContain("system:anonymous")
    // An unknown bearer token is rejected by authentication.
    expect((await api("GET", "/api/v1/namespaces", "not-a-valid-token")).status).toBe(401)
    // The admin token (group system:masters) may.
    expect((await api("GET", "/api/v1/namespaces", kube().token)).status).toBe(200)

    // A service account token (TokenRequest, signed with the generated key) is denied until a Role grants access.
    const ns = await kube().newNamespace("rbac")
    await kube().kubectl(["create", "serviceaccount", "reader"], { namespace: ns })
    const saToken = (await kube().kubectl(["create", "token", "reader", "--duration=10m"], { namespace: ns })).stdout.trim()
    const path = `/api/v1/namespaces/${ns}/configmaps`
    const denied = await api("GET", path, saToken)
    expect(denied.status).toBe(403)
    expect(denied.body).toContain(`system:serviceaccount:${ns}:reader`)
    const canI = await kube().kubectl(["auth", "can-i", "list", "configmaps", `--as=system:serviceaccount:${ns}:reader`], {
      namespace: ns,
      reject: false,
    })
    expect(canI.stdout.trim()).toBe("no")

    await kube().kubectl(["create", "role", "cm-reader", "--verb=get,list", "--resource=configmaps"], { namespace: ns })
    await kube().kubectl(["create", "rolebinding", "cm-reader", "--role=cm-reader", `--serviceaccount=${ns}:reader`], { namespace: ns })
    await eventually(async () => expect((await api("GET", path, saToken)).status).toBe(200), 30_000)
    // ...but only what the Role grants.
    expect((await api("GET", `/api/v1/namespaces/${ns}/secrets`, saToken)).status).toBe(403)
  })
})

describe("with kube-controller-manager", () => {
  it("runs it by default", () => {
    expect(kube().controllerManager).toBe(true)
  })

  it("creates the default ServiceAccount in a new namespace", async () => {
    const ns = await kube().newNamespace("sa")
    await eventually(() => kube().kubectl(["get", "serviceaccount", "default"], { namespace: ns }), 60_000)
  })

  it("garbage-collects objects whose owner is deleted", async () => {
    const ns = await kube().newNamespace("gc")
    await kube().kubectl(["create", "configmap", "parent", "--from-literal=a=1"], { namespace: ns })
    const uid = (await kube().kubectl(["get", "configmap", "parent", "-o", "jsonpath={.metadata.uid}"], { namespace: ns })).stdout
    const child = {
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name: "child", ownerReferences: [{ apiVersion: "v1", kind: "ConfigMap", name: "parent", uid }] },
      data: { b: "2" },
    }
    await kube().kubectl(["apply", "-f", "-"], { namespace: ns, input: JSON.stringify(child) })
    await kube().kubectl(["delete", "configmap", "parent"], { namespace: ns })
    await kube().kubectl(["wait", "--for=delete", "configmap/child", "--timeout=120s"], { namespace: ns })
    const gone = await kube().kubectl(["get", "configmap", "child"], { namespace: ns, reject: false })
    expect(gone.code).not.toBe(0)
    expect(gone.stderr).toMatch(/NotFound|not found/)
  })

  it("finalizes namespace deletion, custom objects included", async () => {
    await kube().kubectl(["apply", "-f", "-"], { input: JSON.stringify(CRD) })
    await kube().kubectl(["wait", "--for=condition=Established", "crd/widgets.testenv.gldt.example", "--timeout=60s"])
    const ns = await kube().newNamespace("del")
    await eventually(() => kube().kubectl(["apply", "-f", "-"], { namespace: ns, input: widget("doomed", { size: 1 }) }), 30_000)
    await kube().kubectl(["create", "configmap", "doomed", "--from-literal=x=y"], { namespace: ns })
    await kube().kubectl(["delete", "namespace", ns, "--wait=false"])
    await kube().kubectl(["wait", "--for=delete", `namespace/${ns}`, "--timeout=150s"])
    const gone = await kube().kubectl(["get", "namespace", ns], { reject: false })
    expect(gone.stderr).toMatch(/NotFound|not found/)
  })
})
