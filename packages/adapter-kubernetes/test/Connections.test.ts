/** shareConnections on a real kube-apiserver: calls share keep-alive connections instead of one handshake each. */
import { subscribe, unsubscribe } from "node:diagnostics_channel"
import { CoreV1Api } from "@kubernetes/client-node"
import { describe, expect, it } from "vitest"
import { isSharing, shareConnections } from "../src/Connections.ts"
import { kubeConfigOf, useCluster } from "./helpers.ts"

const kube = useCluster()

/** New TCP connections undici opens while `f` runs (undici reports each on a diagnostics channel). */
const connectionsDuring = async (f: () => Promise<void>): Promise<number> => {
  let opened = 0
  const onConnected = () => {
    opened++
  }
  subscribe("undici:client:connected", onConnected)
  try {
    await f()
  } finally {
    unsubscribe("undici:client:connected", onConnected)
  }
  return opened
}

const readDefaultNamespace30Times = (api: CoreV1Api) => async () => {
  for (let i = 0; i < 30; i++) await api.readNamespace({ name: "default" })
}

describe("shareConnections", () => {
  it("without it, client-node opens a new connection for every call (the behaviour it fixes)", async () => {
    const api = kubeConfigOf(kube()).makeApiClient(CoreV1Api)
    expect(await connectionsDuring(readDefaultNamespace30Times(api))).toBe(30)
  })

  it("with it, 30 sequential calls reuse one connection", async () => {
    const kc = shareConnections(kubeConfigOf(kube()))
    expect(isSharing(kc)).toBe(true)
    const api = kc.makeApiClient(CoreV1Api)
    expect(await connectionsDuring(readDefaultNamespace30Times(api))).toBe(1)
  })

  it("API clients made from one config share its pool, and sharing twice changes nothing", async () => {
    const kc = shareConnections(shareConnections(kubeConfigOf(kube())))
    const a = kc.makeApiClient(CoreV1Api)
    const b = kc.makeApiClient(CoreV1Api)
    const opened = await connectionsDuring(async () => {
      await readDefaultNamespace30Times(a)()
      await readDefaultNamespace30Times(b)()
    })
    expect(opened).toBe(1)
  })

  it("16 calls at once stay within one pool and keep working", async () => {
    const kc = shareConnections(kubeConfigOf(kube()))
    const api = kc.makeApiClient(CoreV1Api)
    const opened = await connectionsDuring(async () => {
      const names = await Promise.all(Array.from({ length: 16 }, () => api.readNamespace({ name: "default" }).then((n) => n.metadata?.name)))
      expect(names.every((n) => n === "default")).toBe(true)
      await readDefaultNamespace30Times(api)()
    })
    // HTTP/1.1 opens a connection per concurrent request at most; the 30 after reuse them.
    expect(opened).toBeLessThanOrEqual(16)
  })
})

describe("requests on the shared pool (the dispatcher's request instead of fetch)", () => {
  it("API calls go through the pool's own request, which fetch never calls", async () => {
    const kc = kubeConfigOf(kube())
    // Count the calls of each pool's `request` (client-node makes the pools; shareConnections keeps them).
    let viaRequest = 0
    const make = (kc as unknown as { createDispatcher: (c: unknown, o: unknown) => { request: (...a: unknown[]) => unknown } }).createDispatcher
    ;(kc as unknown as { createDispatcher: unknown }).createDispatcher = function (this: unknown, c: unknown, o: unknown) {
      const d = make.call(this, c, o)
      const request = d.request.bind(d)
      d.request = (...a: unknown[]) => {
        viaRequest++
        return request(...a)
      }
      return d
    }
    const api = shareConnections(kc).makeApiClient(CoreV1Api)
    for (let i = 0; i < 3; i++) await api.readNamespace({ name: "default" })
    expect(viaRequest).toBe(3)
  })

  it("keep client-node's behaviour: a created object comes back typed, a 404 is an ApiException with its code and body", async () => {
    const k = kube()
    const ns = await k.newNamespace("light")
    const api = shareConnections(kubeConfigOf(k)).makeApiClient(CoreV1Api)
    const created = await api.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: "cm" }, data: { a: "ü" } } })
    expect(created.metadata?.creationTimestamp).toBeInstanceOf(Date)
    expect(created.data).toEqual({ a: "ü" })
    const read = await api.readNamespacedConfigMap({ namespace: ns, name: "cm" })
    expect(read.data).toEqual({ a: "ü" })
    const missing = await api.readNamespacedConfigMap({ namespace: ns, name: "nope" }).then(
      () => undefined,
      (e: unknown) => e as { code?: number; body?: unknown },
    )
    expect(missing?.code).toBe(404)
    expect(String(missing?.body)).toContain("not found")
  })
})
