/** Which watch events start reconciles: changes that matter do, status and gldt's own finalizers do not. */
import { describe, expect, it } from "vitest"
import type { Obj } from "../src/Cache.ts"
import { CONSUMER_FINALIZER, GENERATOR_FINALIZER } from "../src/Consumer.ts"
import { changeFilter, GeneratorUsers, generatorKey, isNew } from "../src/Triggers.ts"

const es = (meta: Partial<Obj["metadata"]> = {}, status?: unknown): Obj => ({
  apiVersion: "external-secrets.io/v1",
  kind: "ExternalSecret",
  metadata: { name: "es", namespace: "ns", uid: "u1", generation: 1, resourceVersion: "1", ...meta },
  spec: {},
  status,
})

describe("changeFilter", () => {
  it("an add always counts; a status-only update and gldt's own finalizer do not", () => {
    const changed = changeFilter()
    expect(changed("add", es())).toBe(true)
    expect(changed("update", es({ resourceVersion: "2" }, { refreshTime: "now" }))).toBe(false)
    expect(changed("update", es({ resourceVersion: "3", finalizers: [CONSUMER_FINALIZER] }))).toBe(false)
    expect(changed("update", es({ resourceVersion: "4", finalizers: [CONSUMER_FINALIZER, GENERATOR_FINALIZER] }))).toBe(false)
  })

  it("a new generation, a label or annotation (force-sync), someone else's finalizer and a deletion do count", () => {
    const changed = changeFilter()
    changed("add", es())
    expect(changed("update", es({ generation: 2 }))).toBe(true)
    expect(changed("update", es({ generation: 2, annotations: { "force-sync": "1" } }))).toBe(true)
    expect(changed("update", es({ generation: 2, annotations: { "force-sync": "1" }, finalizers: ["someone.else/hold"] }))).toBe(true)
    expect(changed("update", es({ generation: 2, annotations: { "force-sync": "1" }, finalizers: ["someone.else/hold"], deletionTimestamp: new Date() }))).toBe(
      true,
    )
    expect(changed("delete", es())).toBe(true)
  })

  it("objects are told apart by uid: a recreated object with the same name counts again", () => {
    const changed = changeFilter()
    changed("add", es())
    expect(changed("update", es({ uid: "u2" }))).toBe(true)
  })
})

describe("isNew", () => {
  it("a consumer without syncedResourceVersion has never been synced", () => {
    expect(isNew(es())).toBe(true)
    expect(isNew(es({}, { conditions: [] }))).toBe(true)
    expect(isNew(es({}, { syncedResourceVersion: "abc" }))).toBe(false)
  })
})

describe("GeneratorUsers", () => {
  it("wakes only the consumers of a generator, follows a consumer that switches generator, and forgets deleted ones", () => {
    const users = new GeneratorUsers()
    const g1 = generatorKey("GitlabDeployToken", "ns", "g1")
    const g2 = generatorKey("GitlabDeployToken", "ns", "g2")
    users.set("es/ns/a", [g1])
    users.set("es/ns/b", [g1])
    users.set("es/ns/c", [g2])
    expect([...users.of(g1)].sort()).toEqual(["es/ns/a", "es/ns/b"])
    users.set("es/ns/b", [g2])
    expect(users.of(g1)).toEqual(["es/ns/a"])
    expect([...users.of(g2)].sort()).toEqual(["es/ns/b", "es/ns/c"])
    users.set("es/ns/a", [])
    expect(users.of(g1)).toEqual([])
  })

  it("a GitlabDeployToken is namespaced, a ClusterGenerator is not", () => {
    expect(generatorKey("GitlabDeployToken", "a", "g")).not.toBe(generatorKey("GitlabDeployToken", "b", "g"))
    expect(generatorKey("ClusterGenerator", "a", "g")).toBe(generatorKey("ClusterGenerator", "b", "g"))
  })
})
