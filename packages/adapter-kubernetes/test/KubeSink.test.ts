/** KubeSink on a real kube-apiserver: creation policies, the template, and "cannot deliver" known before any mint. */
import { reconcile } from "@gldt/core/Lifecycle"
import { type Credential, type Sink as SinkTag, Sink } from "@gldt/core/Sink"
import { State } from "@gldt/core/State"
import { layer as gitlabLayer } from "@gldt/gitlab/GitLabClient"
import { Effect, Layer, Logger, Option, Redacted } from "effect"
import { describe, expect, it } from "vitest"
import * as KubeSink from "../src/KubeSink.ts"
import type { KubeSinkOptions } from "../src/KubeSink.ts"
import * as KubeState from "../src/KubeState.ts"
import type { Owner } from "../src/internal/kube.ts"
import { secretDataHash } from "../src/internal/hash.ts"
import { createdByLabel, type SecretObject, type Target } from "../src/Target.ts"
import { jobFor, posts } from "../../core/test/support/GitLabWorld.ts"
import { createExternalSecret, decode, eventually, getIfExists, type Json, kubeConfigOf, requestsDuring, useClusterAndGitLab } from "./helpers.ts"
import { DOCKERCONFIG } from "./fixtures/templates.ts"

const { kube, gitlab } = useClusterAndGitLab()

const sinkLayer = (ns: string, target: Target, owner?: Owner) =>
  Layer.merge(KubeSink.layer({ namespace: ns, kubeConfig: kubeConfigOf(kube()), target, owner } satisfies KubeSinkOptions), Logger.layer([]))

const withSink = <A, E>(ns: string, target: Target, owner: Owner | undefined, f: (s: SinkTag["Service"]) => Effect.Effect<A, E>) =>
  Effect.runPromise(
    Effect.gen(function* () {
      return yield* f(yield* Sink)
    }).pipe(Effect.provide(sinkLayer(ns, target, owner))),
  )

const sinkFailure = (ns: string, target: Target, owner: Owner | undefined, f: (s: SinkTag["Service"]) => Effect.Effect<unknown, unknown>) =>
  withSink(ns, target, owner, (s) => Effect.flip(f(s))) as Promise<{ readonly _tag: string; readonly message: string }>

const credential = (tokenId: number, token = `gldt-token-${tokenId}-Xy_z`): Credential => ({
  username: "eso",
  token: Redacted.make(token),
  tokenId,
  gitlabUrl: "https://gitlab.example.com",
})

const secret = (ns: string, name: string) => getIfExists(kube(), ["secret", name], ns)
type SecretJson = {
  metadata: Json & { labels?: Record<string, string>; annotations?: Record<string, string>; ownerReferences?: Json[] }
  data: Record<string, string>
  type: string
  immutable?: boolean
}
const mustSecret = async (ns: string, name: string) => (await secret(ns, name)) as unknown as SecretJson

const createSecret = (ns: string, name: string, data: Record<string, string>, extra: Json = {}) =>
  kube().kubectl(["apply", "-f", "-"], {
    namespace: ns,
    input: JSON.stringify({ apiVersion: "v1", kind: "Secret", metadata: { name }, stringData: data, ...extra }),
  })

describe.concurrent("creationPolicy Owner", () => {
  it("writes username/token with ESO's labels and data-hash, gldt's token id, and the ExternalSecret as controller owner", async () => {
    const ns = await kube().newNamespace("owner")
    const owner = await createExternalSecret(kube(), ns, "gitlab-deploy-token")
    const target: Target = { name: "gitlab-deploy-token", creationPolicy: "Owner" }
    await withSink(ns, target, owner, (s) => Effect.andThen(s.check("k"), s.deliver("k", credential(7))))
    const s = await mustSecret(ns, "gitlab-deploy-token")
    expect(s.type).toBe("Opaque")
    expect(Object.keys(s.data).sort()).toEqual(["token", "username"])
    expect(decode(s.data.username)).toBe("eso")
    expect(decode(s.data.token)).toBe("gldt-token-7-Xy_z")
    expect(s.metadata.labels).toEqual({
      "reconcile.external-secrets.io/managed": "true",
      "reconcile.external-secrets.io/created-by": createdByLabel(ns, "gitlab-deploy-token"),
    })
    expect(s.metadata.annotations).toEqual({ "reconcile.external-secrets.io/data-hash": secretDataHash(s.data), "gldt.dev/token-id": "7" })
    expect(s.metadata.ownerReferences).toEqual([
      { apiVersion: "external-secrets.io/v1", kind: "ExternalSecret", name: "gitlab-deploy-token", uid: owner.uid, controller: true, blockOwnerDeletion: true },
    ])
    // No secret in the metadata.
    expect(JSON.stringify(s.metadata)).not.toContain("gldt-token-7")

    expect(await withSink(ns, target, owner, (x) => x.inspect("k"))).toEqual({ _tag: "Holds", tokenId: 7 })
    // Altered by hand: holds no token gldt knows.
    await kube().kubectl(["patch", "secret", "gitlab-deploy-token", "--type=merge", "-p", JSON.stringify({ stringData: { token: "edited" } })], {
      namespace: ns,
    })
    expect(await withSink(ns, target, owner, (x) => x.inspect("k"))).toEqual({ _tag: "Holds", tokenId: 0 })
    // Rotation overwrites it; deleting it empties the sink; remove deletes it.
    await withSink(ns, target, owner, (x) => x.deliver("k", credential(8)))
    expect(await withSink(ns, target, owner, (x) => x.inspect("k"))).toEqual({ _tag: "Holds", tokenId: 8 })
    await kube().kubectl(["delete", "secret", "gitlab-deploy-token"], { namespace: ns })
    expect(await withSink(ns, target, owner, (x) => x.inspect("k"))).toEqual({ _tag: "Empty" })
    await withSink(ns, target, owner, (x) => x.deliver("k", credential(9)))
    await withSink(ns, target, owner, (x) => x.remove("k"))
    expect(await secret(ns, "gitlab-deploy-token")).toBeUndefined()
  })

  it("adopts an unowned Secret, and deletes its own Secret of a previous target name", async () => {
    const ns = await kube().newNamespace("rename")
    const owner = await createExternalSecret(kube(), ns, "es")
    await createSecret(ns, "old", { keep: "me" })
    await withSink(ns, { name: "old", creationPolicy: "Owner" }, owner, (s) => Effect.andThen(s.check("k"), s.deliver("k", credential(1))))
    const adopted = await mustSecret(ns, "old")
    expect(Object.keys(adopted.data).sort()).toEqual(["token", "username"])
    expect(adopted.metadata.ownerReferences?.[0]?.uid).toBe(owner.uid)
    await withSink(ns, { name: "new", creationPolicy: "Owner" }, owner, (s) => s.deliver("k", credential(2)))
    expect(await secret(ns, "old")).toBeUndefined()
    expect((await mustSecret(ns, "new")).metadata.annotations?.["gldt.dev/token-id"]).toBe("2")
  })

  it("is refused for a Secret controlled by another ExternalSecret, which also holds no token of ours", async () => {
    const ns = await kube().newNamespace("foreign")
    const mine = await createExternalSecret(kube(), ns, "mine", { name: "shared" })
    const other = await createExternalSecret(kube(), ns, "other", { name: "shared" })
    await withSink(ns, { name: "shared", creationPolicy: "Owner" }, other, (s) => s.deliver("k", credential(5)))
    const e = await sinkFailure(ns, { name: "shared", creationPolicy: "Owner" }, mine, (s) => s.check("k"))
    expect(e._tag).toBe("SinkError")
    expect(e.message).toContain(`target Secret ${ns}/shared is owned by another ExternalSecret (other)`)
    expect(await withSink(ns, { name: "shared", creationPolicy: "Merge" }, mine, (s) => s.inspect("k"))).toEqual({ _tag: "Holds", tokenId: 0 })
  })
})

describe.concurrent("creationPolicy Orphan", () => {
  it("writes without owner reference or created-by label; remove follows deletionPolicy (Retain keeps, Delete deletes, Merge strips gldt's keys)", async () => {
    const ns = await kube().newNamespace("orphan")
    const owner = await createExternalSecret(kube(), ns, "es")
    const retain: Target = { name: "kept", creationPolicy: "Orphan" }
    await withSink(ns, retain, owner, (s) => Effect.andThen(s.check("k"), s.deliver("k", credential(11))))
    const kept = await mustSecret(ns, "kept")
    expect(kept.metadata.ownerReferences).toBeUndefined()
    expect(kept.metadata.labels).toEqual({ "reconcile.external-secrets.io/managed": "true" })
    expect(await withSink(ns, retain, owner, (s) => s.inspect("k"))).toEqual({ _tag: "Holds", tokenId: 11 })
    await withSink(ns, retain, owner, (s) => s.remove("k"))
    expect(await secret(ns, "kept")).toBeDefined()

    const del: Target = { name: "deleted", creationPolicy: "Orphan", deletionPolicy: "Delete" }
    await withSink(ns, del, owner, (s) => Effect.andThen(s.deliver("k", credential(12)), s.remove("k")))
    expect(await secret(ns, "deleted")).toBeUndefined()

    const merge: Target = { name: "stripped", creationPolicy: "Orphan", deletionPolicy: "Merge" }
    await withSink(ns, merge, owner, (s) => s.deliver("k", credential(13)))
    // Someone adds a key of their own; Orphan's remove with deletionPolicy Merge keeps it.
    await kube().kubectl(["patch", "secret", "stripped", "--type=merge", "-p", JSON.stringify({ stringData: { other: "value" } })], { namespace: ns })
    await withSink(ns, merge, owner, (s) => s.remove("k"))
    const stripped = await mustSecret(ns, "stripped")
    expect(Object.keys(stripped.data)).toEqual(["other"])
    expect(stripped.metadata.annotations?.["gldt.dev/token-id"]).toBeUndefined()
  })
})

describe.concurrent("creationPolicy Merge", () => {
  it("cannot deliver without an existing Secret; merges into one; remove takes only gldt's keys out", async () => {
    const ns = await kube().newNamespace("merge")
    const owner = await createExternalSecret(kube(), ns, "es")
    const target: Target = { name: "app-config", creationPolicy: "Merge" }
    const missing = await sinkFailure(ns, target, owner, (s) => s.check("k"))
    expect(missing.message).toContain(`target Secret ${ns}/app-config does not exist and creationPolicy is Merge`)
    const undeliverable = await sinkFailure(ns, target, owner, (s) => s.deliver("k", credential(20)))
    expect(undeliverable._tag).toBe("SinkError")
    expect(await secret(ns, "app-config")).toBeUndefined()

    await createSecret(ns, "app-config", { database: "postgres://db" })
    await withSink(ns, target, owner, (s) => Effect.andThen(s.check("k"), s.deliver("k", credential(21))))
    const merged = await mustSecret(ns, "app-config")
    expect(Object.keys(merged.data).sort()).toEqual(["database", "token", "username"])
    expect(decode(merged.data.database)).toBe("postgres://db")
    expect(merged.metadata.ownerReferences).toBeUndefined()
    expect(merged.metadata.annotations?.["reconcile.external-secrets.io/data-hash"]).toBe(secretDataHash(merged.data))
    expect(await withSink(ns, target, owner, (s) => s.inspect("k"))).toEqual({ _tag: "Holds", tokenId: 21 })

    await withSink(ns, target, owner, (s) => s.remove("k"))
    const after = await mustSecret(ns, "app-config")
    expect(Object.keys(after.data)).toEqual(["database"])
    expect(after.metadata.annotations?.["gldt.dev/token-id"]).toBeUndefined()
  })
})

describe.concurrent("creationPolicy None", () => {
  it("never writes: check and deliver fail, nothing is created, remove does nothing", async () => {
    const ns = await kube().newNamespace("none")
    const target: Target = { name: "untouched", creationPolicy: "None" }
    const e = await sinkFailure(ns, target, undefined, (s) => s.check("k"))
    expect(e.message).toContain("creationPolicy None: gldt never writes")
    await sinkFailure(ns, target, undefined, (s) => s.deliver("k", credential(30)))
    expect(await secret(ns, "untouched")).toBeUndefined()
    await createSecret(ns, "untouched", { x: "y" })
    await withSink(ns, target, undefined, (s) => s.remove("k"))
    expect(await secret(ns, "untouched")).toBeDefined()
  })
})

describe.concurrent("immutable", () => {
  it("writes an immutable Secret once; afterwards check reports it cannot be rewritten", async () => {
    const ns = await kube().newNamespace("immutable")
    const owner = await createExternalSecret(kube(), ns, "es")
    const target: Target = { name: "frozen", creationPolicy: "Owner", immutable: true }
    await withSink(ns, target, owner, (s) => Effect.andThen(s.check("k"), s.deliver("k", credential(40))))
    expect((await mustSecret(ns, "frozen")).immutable).toBe(true)
    expect(await withSink(ns, target, owner, (s) => s.inspect("k"))).toEqual({ _tag: "Holds", tokenId: 40 })
    const e = await sinkFailure(ns, target, owner, (s) => s.check("k"))
    expect(e.message).toContain("is immutable: could not update secret, target is immutable")
  })
})

describe.concurrent("template", () => {
  it("renders kubernetes.io/dockerconfigjson with printf and b64enc, plus the template's labels and annotations", async () => {
    const ns = await kube().newNamespace("template")
    const owner = await createExternalSecret(kube(), ns, "es")
    const target: Target = {
      name: "registry",
      creationPolicy: "Owner",
      template: {
        type: "kubernetes.io/dockerconfigjson",
        engineVersion: "v2",
        metadata: { labels: { team: "platform" }, annotations: { "example.com/purpose": "pull" } },
        data: { ".dockerconfigjson": DOCKERCONFIG },
      },
    }
    await withSink(ns, target, owner, (s) => Effect.andThen(s.check("k"), s.deliver("k", credential(50, "tok-50"))))
    const s = await mustSecret(ns, "registry")
    expect(s.type).toBe("kubernetes.io/dockerconfigjson")
    expect(Object.keys(s.data)).toEqual([".dockerconfigjson"])
    expect(JSON.parse(decode(s.data[".dockerconfigjson"])!)).toEqual({
      auths: { "registry.example.com": { username: "eso", password: "tok-50", auth: Buffer.from("eso:tok-50").toString("base64") } },
    })
    expect(s.metadata.labels?.team).toBe("platform")
    expect(s.metadata.annotations?.["example.com/purpose"]).toBe("pull")
    expect(await withSink(ns, target, owner, (x) => x.inspect("k"))).toEqual({ _tag: "Holds", tokenId: 50 })
  })

  it("an unsupported template is refused by check, naming the field", async () => {
    const ns = await kube().newNamespace("badtemplate")
    const e = await sinkFailure(ns, { name: "x", creationPolicy: "Orphan", template: { data: { token: "{{ .token | sha256sum }}" } } }, undefined, (s) =>
      s.check("k"),
    )
    expect(e.message).toContain('target.template.data["token"]: unknown function "sha256sum"; supported: printf, b64enc')
  })
})

describe("a target that cannot be written is reported before any mint", () => {
  const layers = (ns: string, target: Target, owner?: Owner) =>
    Layer.mergeAll(KubeState.layer({ namespace: ns, kubeConfig: kubeConfigOf(kube()), owner }), sinkLayer(ns, target, owner), gitlabLayer(), Logger.layer([]))

  const cases: ReadonlyArray<{
    readonly name: string
    readonly target: Target
    readonly prepare?: (ns: string, owner: Owner) => Promise<unknown>
    readonly message: string
  }> = [
    { name: "creationPolicy None", target: { name: "t", creationPolicy: "None" }, message: "creationPolicy None" },
    { name: "Merge without a Secret", target: { name: "t", creationPolicy: "Merge" }, message: "does not exist and creationPolicy is Merge" },
    {
      name: "an immutable existing Secret",
      target: { name: "t", creationPolicy: "Orphan" },
      prepare: (ns) => createSecret(ns, "t", { a: "b" }, { immutable: true }),
      message: "could not update secret, target is immutable",
    },
    {
      name: "a Secret owned by another ExternalSecret",
      target: { name: "t", creationPolicy: "Owner" },
      prepare: async (ns) => {
        const other = await createExternalSecret(kube(), ns, "other", { name: "t" })
        await withSink(ns, { name: "t", creationPolicy: "Owner" }, other, (s) => s.deliver("other", credential(99)))
      },
      message: "is owned by another ExternalSecret (other)",
    },
    {
      name: "a template that does not render",
      target: { name: "t", creationPolicy: "Owner", template: { type: "kubernetes.io/dockerconfigjson", data: { ".dockerconfigjson": "{{ .password }}" } } },
      message: 'target.template.data[".dockerconfigjson"]: unknown field .password',
    },
    {
      name: "a Secret type that cannot change",
      target: { name: "t", creationPolicy: "Owner", template: { type: "kubernetes.io/dockerconfigjson", data: { ".dockerconfigjson": DOCKERCONFIG } } },
      prepare: (ns) => createSecret(ns, "t", { a: "b" }),
      message: "has type Opaque but the template asks for kubernetes.io/dockerconfigjson",
    },
    {
      name: "a ResourceQuota that forbids Secrets (only the apiserver's dry run can tell)",
      target: { name: "t", creationPolicy: "Owner" },
      prepare: (ns) => kube().kubectl(["create", "quota", "no-secrets", "--hard=count/secrets=0"], { namespace: ns }),
      message: "the API server would refuse to write",
    },
  ]

  it.each(cases)("$name: reconcile fails with a SinkError and GitLab sees no create", async ({ target, prepare, message }) => {
    const ns = await kube().newNamespace("premint")
    const owner = await createExternalSecret(kube(), ns, "es", { name: target.name })
    await prepare?.(ns, owner)
    const key = `${ns}/es`
    const before = posts(gitlab().sim).length
    const tokensBefore = gitlab().sim.tokens().length
    const error = await Effect.runPromise(Effect.flip(reconcile(jobFor(gitlab(), key)).pipe(Effect.provide(layers(ns, target, owner)))))
    expect(error._tag).toBe("SinkError")
    expect(error.message).toContain(message)
    expect(posts(gitlab().sim).length).toBe(before)
    expect(gitlab().sim.tokens().length).toBe(tokensBefore)
    // No intent was written either: the record (if any) tracks nothing.
    const loaded = await Effect.runPromise(
      Effect.gen(function* () {
        return yield* (yield* State).load(key)
      }).pipe(Effect.provide(KubeState.layer({ namespace: ns, kubeConfig: kubeConfigOf(kube()) }))),
    )
    if (Option.isSome(loaded)) {
      expect(loaded.value.record.intent).toBeUndefined()
      expect(loaded.value.record.current).toBeUndefined()
    }
  })

  it("the same reconcile mints once the target is writable", async () => {
    const ns = await kube().newNamespace("premint-ok")
    const owner = await createExternalSecret(kube(), ns, "es", { name: "t" })
    const report = await Effect.runPromise(
      reconcile(jobFor(gitlab(), `${ns}/es`)).pipe(Effect.provide(layers(ns, { name: "t", creationPolicy: "Owner" }, owner))),
    )
    expect(report.actions.map((a) => a.action)).toEqual(["minted", "delivered"])
    const s = await eventually(() => mustSecret(ns, "t"))
    const minted = gitlab()
      .sim.tokens()
      .find((t) => t.id === report.currentTokenId)!
    expect(decode(s.data.token)).toBe(minted.token)
  })
})

describe.concurrent("one instance per reconcile (reuseReads, view)", () => {
  const reusing = (ns: string, target: Target, owner: Owner | undefined, view?: KubeSinkOptions["view"]) =>
    Layer.merge(KubeSink.layer({ namespace: ns, kubeConfig: kubeConfigOf(kube()), target, owner, reuseReads: true, view }), Logger.layer([]))
  const counted = <A, E>(ns: string, layer: Layer.Layer<SinkTag>, f: (s: SinkTag["Service"]) => Effect.Effect<A, E>) =>
    Effect.runPromise(
      requestsDuring(
        ns,
        Effect.gen(function* () {
          return yield* f(yield* Sink)
        }),
      ).pipe(Effect.provide(layer)),
    )

  it("check, inspect and deliver read the Secret once; the view spares the list of previous target names", async () => {
    const ns = await kube().newNamespace("reuse")
    const owner = await createExternalSecret(kube(), ns, "es")
    const target: Target = { name: "es", creationPolicy: "Owner" }
    const { result, requests } = await counted(ns, reusing(ns, target, owner, { list: () => [] }), (s) =>
      Effect.gen(function* () {
        yield* s.check("k")
        const before = yield* s.inspect("k")
        yield* s.deliver("k", credential(3))
        const after = yield* s.inspect("k")
        return { before, after }
      }),
    )
    expect(result).toEqual({ before: { _tag: "Empty" }, after: { _tag: "Holds", tokenId: 3 } })
    // GET (404), dry-run POST, POST: no second read, no list.
    expect(requests).toBe(3)
    expect(decode((await mustSecret(ns, "es")).data.token)).toBe("gldt-token-3-Xy_z")
  })

  it("a Secret changed by someone else after the read: the write conflicts, reads again, and keeps their change", async () => {
    const ns = await kube().newNamespace("stale")
    const owner = await createExternalSecret(kube(), ns, "es")
    const target: Target = { name: "es", creationPolicy: "Owner" }
    await withSink(ns, target, owner, (s) => s.deliver("k", credential(1)))
    const { result } = await counted(ns, reusing(ns, target, owner), (s) =>
      Effect.gen(function* () {
        const held = yield* s.inspect("k")
        yield* Effect.promise(() => kube().kubectl(["label", "secret", "es", "team=payments"], { namespace: ns }))
        yield* s.deliver("k", credential(2))
        return held
      }),
    )
    expect(result).toEqual({ _tag: "Holds", tokenId: 1 })
    const s = await mustSecret(ns, "es")
    expect(s.metadata.annotations?.["gldt.dev/token-id"]).toBe("2")
    expect(s.metadata.labels?.team).toBe("payments")
  })

  it("with a view, the Secret of a previous target name is found in it and deleted without a list call", async () => {
    const ns = await kube().newNamespace("renamed-view")
    const owner = await createExternalSecret(kube(), ns, "es")
    await withSink(ns, { name: "old", creationPolicy: "Owner" }, owner, (s) => s.deliver("k", credential(1)))
    const old = (await mustSecret(ns, "old")) as unknown as SecretObject
    const { requests } = await counted(ns, reusing(ns, { name: "new", creationPolicy: "Owner" }, owner, { list: () => [old] }), (s) =>
      s.deliver("k", credential(2)),
    )
    // GET new (404), POST new, DELETE old.
    expect(requests).toBe(3)
    expect(await secret(ns, "old")).toBeUndefined()
  })

  it("absent: a new consumer's Secret is created without a read first", async () => {
    const ns = await kube().newNamespace("absent")
    const owner = await createExternalSecret(kube(), ns, "es")
    const target: Target = { name: "es", creationPolicy: "Owner" }
    const layer = Layer.merge(
      KubeSink.layer({ namespace: ns, kubeConfig: kubeConfigOf(kube()), target, owner, reuseReads: true, absent: true, view: { list: () => [] } }),
      Logger.layer([]),
    )
    const { requests } = await counted(ns, layer, (s) => Effect.andThen(s.check("k"), s.deliver("k", credential(4))))
    // Dry-run POST, POST: no GET.
    expect(requests).toBe(2)
    expect(decode((await mustSecret(ns, "es")).data.token)).toBe("gldt-token-4-Xy_z")
  })

  it("absent guessed wrong: creating the existing Secret conflicts, reads it, and updates it (their labels kept)", async () => {
    const ns = await kube().newNamespace("absent-wrong")
    const owner = await createExternalSecret(kube(), ns, "es")
    const target: Target = { name: "es", creationPolicy: "Owner" }
    await withSink(ns, target, owner, (s) => s.deliver("k", credential(1)))
    await kube().kubectl(["label", "secret", "es", "team=payments"], { namespace: ns })
    const layer = Layer.merge(
      KubeSink.layer({ namespace: ns, kubeConfig: kubeConfigOf(kube()), target, owner, reuseReads: true, absent: true, view: { list: () => [] } }),
      Logger.layer([]),
    )
    const { requests } = await counted(ns, layer, (s) => Effect.andThen(s.check("k"), s.deliver("k", credential(2))))
    // Dry-run POST (409), GET, dry-run PUT, PUT.
    expect(requests).toBe(4)
    const s = await mustSecret(ns, "es")
    expect(s.metadata.annotations?.["gldt.dev/token-id"]).toBe("2")
    expect(decode(s.data.token)).toBe("gldt-token-2-Xy_z")
    expect(s.metadata.labels?.team).toBe("payments")
  })
})
