/**
 * What the informer caches keep: `trim` on its own, then the caches on a real kube-apiserver, where
 * objects arrive both from the first list and from the watch.
 */
import { subscribe, unsubscribe } from "node:diagnostics_channel"
import { KubeConfig } from "@kubernetes/client-node"
import type { Kube } from "@gldt/testenv"
import { Effect, Exit, Scope } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import * as Cache from "../src/Cache.ts"
import { apply, eventually, startCluster } from "./support.ts"

const LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
const managedFields = [{ manager: "kubectl", operation: "Apply", fieldsType: "FieldsV1", fieldsV1: { "f:spec": {} } }]

const externalSecret = (): Cache.Obj =>
  ({
    apiVersion: "external-secrets.io/v1",
    kind: "ExternalSecret",
    metadata: {
      name: "es",
      namespace: "ns",
      uid: "u1",
      generation: 3,
      labels: { team: "a" },
      annotations: { [LAST_APPLIED]: '{"big":"copy"}', "force-sync": "1" },
      finalizers: ["gldt.dev/revoke"],
      managedFields,
    },
    spec: { refreshInterval: "1h", target: { name: "t" } },
    status: { conditions: [{ type: "Ready", status: "True" }] },
  }) as Cache.Obj

const managedSecret = (): Cache.Obj =>
  ({
    apiVersion: "v1",
    kind: "Secret",
    metadata: {
      name: "t",
      namespace: "ns",
      labels: { "reconcile.external-secrets.io/managed": "true" },
      annotations: { "gldt.dev/token-id": "7", [LAST_APPLIED]: "{}" },
      ownerReferences: [{ apiVersion: "external-secrets.io/v1", kind: "ExternalSecret", name: "es", uid: "u1", controller: true }],
      finalizers: ["x"],
      managedFields,
    },
    data: { username: "dXNlcg==", token: "c2VjcmV0LXRva2Vu" },
    stringData: { token: "secret-token" },
    type: "Opaque",
  }) as unknown as Cache.Obj

describe("trim", () => {
  it("drops managedFields from every kind and keeps the rest of a consumer, kubectl's last-applied copy included (its annotations feed the force-sync hash)", () => {
    const es = externalSecret()
    const t = Cache.trim(Cache.RESOURCES.externalSecrets, es)
    expect(t.metadata).not.toHaveProperty("managedFields")
    const { managedFields: _, ...rest } = es.metadata as Cache.Obj["metadata"] & { managedFields?: unknown }
    expect(t).toEqual({ ...es, metadata: rest })
  })

  it("keeps only the metadata of a target Secret: no deploy token, nothing under data or stringData", () => {
    const t = Cache.trim(Cache.RESOURCES.managedSecrets, managedSecret())
    expect(Object.keys(t).sort()).toEqual(["apiVersion", "kind", "metadata"])
    expect(JSON.stringify(t)).not.toContain("c2VjcmV0LXRva2Vu")
    expect(JSON.stringify(t)).not.toContain("secret-token")
    // What the reconciler and the sink read from cached Secrets stays.
    expect(t.metadata.annotations).toEqual({ "gldt.dev/token-id": "7" })
    expect(t.metadata.labels).toEqual({ "reconcile.external-secrets.io/managed": "true" })
    expect(t.metadata.ownerReferences?.[0]?.uid).toBe("u1")
    expect(t.metadata.finalizers).toEqual(["x"])
  })

  it("keeps an auth Secret's data (the reconciler reads the access token from the cache) but not its managedFields", () => {
    const t = Cache.trim(Cache.RESOURCES.authSecrets, managedSecret())
    expect(t.data).toEqual({ username: "dXNlcg==", token: "c2VjcmV0LXRva2Vu" })
    expect(t.metadata).not.toHaveProperty("managedFields")
  })

  it("drops kubectl's last-applied copy from generators and state objects and keeps their other annotations and spec", () => {
    const g = { ...externalSecret(), kind: "GitlabDeployToken", spec: { url: "https://gitlab.example.com" } } as Cache.Obj
    for (const r of [Cache.RESOURCES.generators, Cache.RESOURCES.states]) {
      const t = Cache.trim(r, g)
      expect(t.metadata.annotations).toEqual({ "force-sync": "1" })
      expect(t.spec).toEqual({ url: "https://gitlab.example.com" })
      expect(t.metadata).not.toHaveProperty("managedFields")
    }
  })

  it("leaves the object it was given unchanged (the watch's parsed event is not the cache's copy)", () => {
    const s = managedSecret()
    const before = JSON.stringify(s)
    Cache.trim(Cache.RESOURCES.managedSecrets, s)
    Cache.trim(Cache.RESOURCES.generators, s)
    expect(JSON.stringify(s)).toBe(before)
  })
})

describe("LabelIndex", () => {
  /** An informer stand-in: the index only subscribes to its events. */
  const events = () => {
    const handlers: Array<(verb: Cache.Verb, o: Cache.Obj) => void> = []
    const informed: Cache.Informed = { get: () => undefined, list: () => [], on: (cb) => void handlers.push(cb), start: () => Promise.resolve() }
    const emit = (verb: Cache.Verb, o: Cache.Obj) => {
      for (const h of handlers) h(verb, o)
    }
    return { informed, emit }
  }
  const secret = (namespace: string, name: string, creator?: string): Cache.Obj => ({
    metadata: { name, namespace, uid: `${namespace}/${name}`, ...(creator === undefined ? {} : { labels: { "created-by": creator } }) },
  })
  const names = (objs: ReadonlyArray<Cache.Obj>) => objs.map((o) => o.metadata.name).sort()

  it("groups objects by the label's value per namespace and follows relabels and deletes", () => {
    const { informed, emit } = events()
    const index = new Cache.LabelIndex(informed, "created-by")
    emit("add", secret("a", "s1", "es-1"))
    emit("add", secret("a", "s2", "es-1"))
    emit("add", secret("b", "s3", "es-1"))
    emit("add", secret("a", "s4"))
    expect(names(index.of("a", "es-1"))).toEqual(["s1", "s2"])
    expect(names(index.of("b", "es-1"))).toEqual(["s3"])
    emit("update", secret("a", "s2", "es-2"))
    expect(names(index.of("a", "es-1"))).toEqual(["s1"])
    expect(names(index.of("a", "es-2"))).toEqual(["s2"])
    emit("update", secret("a", "s1"))
    emit("delete", secret("a", "s2", "es-2"))
    expect(index.of("a", "es-1")).toEqual([])
    expect(index.of("a", "es-2")).toEqual([])
    expect(names(index.of("b", "es-1"))).toEqual(["s3"])
  })
})

describe("the informer caches on a real kube-apiserver", () => {
  let kube: Kube
  beforeAll(async () => {
    kube = await startCluster()
  })
  afterAll(async () => {
    await kube?.stop()
  })

  it("hold target Secrets without data and objects without managedFields, whether they came from the first list (in pages) or the watch", async () => {
    const ns = await kube.newNamespace("cache")
    const secret = (name: string) => `apiVersion: v1
kind: Secret
metadata:
  name: ${name}
  labels: { reconcile.external-secrets.io/managed: "true" }
data: { token: c2VjcmV0LXRva2Vu }
`
    const generator = (name: string) => `apiVersion: generators.external-secrets.io/v1alpha1
kind: GitlabDeployToken
metadata: { name: ${name} }
spec:
  url: https://gitlab.example.com
  projectID: "1"
  name: t
  scopes: [read_registry]
  auth: { token: { secretRef: { name: a, key: token } } }
`
    // Listed: created before the informers start (kubectl apply writes managedFields and last-applied).
    await apply(kube, ns, `${secret("listed")}---\n${secret("listed-2")}---\n${generator("listed")}`)
    const kc = new KubeConfig()
    kc.loadFromFile(kube.kubeconfig)
    const scope = Effect.runSync(Scope.make())
    try {
      const cache = await Effect.runPromise(Cache.make(kc, [ns], ["managedSecrets", "generators"], 1).pipe(Scope.provide(scope)))
      // Each list request undici starts for this namespace's Secrets (client-node's transport).
      const secretLists: Array<string> = []
      const onRequest = (message: unknown) => {
        const path = (message as { request?: { path?: unknown } }).request?.path
        if (typeof path === "string" && path.startsWith(`/api/v1/namespaces/${ns}/secrets?`) && !path.includes("watch=true")) secretLists.push(path)
      }
      subscribe("undici:request:create", onRequest)
      try {
        await Effect.runPromise(Cache.start(cache))
      } finally {
        unsubscribe("undici:request:create", onRequest)
      }
      // One object per page: two requests, the second with the first's continue token.
      expect(secretLists).toHaveLength(2)
      expect(secretLists[0]).toContain("limit=1")
      expect(secretLists[1]).toContain("continue=")
      expect(
        cache.informed.managedSecrets
          .list(ns)
          .map((o) => o.metadata.name)
          .sort(),
      ).toEqual(["listed", "listed-2"])
      // Watched: created (and then changed) after the first list.
      await apply(kube, ns, `${secret("watched")}---\n${generator("watched")}`)
      await kube.kubectl(["label", "secret", "watched", "changed=yes"], { namespace: ns })
      const cached = await eventually(async () => {
        const s = cache.informed.managedSecrets.get("watched", ns)
        const g = cache.informed.generators.get("watched", ns)
        if (s?.metadata.labels?.changed !== "yes" || g === undefined) throw new Error("not cached yet")
        return [cache.informed.managedSecrets.get("listed", ns)!, s, cache.informed.generators.get("listed", ns)!, g]
      })
      for (const o of cached) {
        expect(o.metadata).not.toHaveProperty("managedFields")
        expect(o.metadata.annotations?.[LAST_APPLIED]).toBeUndefined()
      }
      for (const s of cached.slice(0, 2)) {
        expect(s.data).toBeUndefined()
        expect(JSON.stringify(s)).not.toContain("c2VjcmV0LXRva2Vu")
      }
      expect(cached[2]!.spec).toMatchObject({ url: "https://gitlab.example.com" })
      // The API itself still has both (so the test would notice were they never there).
      const live = JSON.parse((await kube.kubectl(["get", "secret", "watched", "-o", "json", "--show-managed-fields"], { namespace: ns })).stdout)
      expect(live.metadata.managedFields.length).toBeGreaterThan(0)
      expect(live.data.token).toBe("c2VjcmV0LXRva2Vu")
    } finally {
      await Effect.runPromise(Scope.close(scope, Exit.void))
    }
  })
})
