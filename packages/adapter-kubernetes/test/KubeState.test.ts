/** KubeState on a real kube-apiserver (+ kube-controller-manager for garbage collection). */
import * as CompareAndSet from "@gldt/core/CompareAndSet"
import { emptyRecord, State } from "@gldt/core/State"
import { Effect, Option } from "effect"
import { describe, expect, it } from "vitest"
import { expectCompareAndSet, expectOneWinnerPerRace, st, withToken } from "../../core/test/support/StateContract.ts"
import * as KubeState from "../src/KubeState.ts"
import { keyHashLabel, STATE_FINALIZER, type StateObject, stateObjectName } from "../src/KubeState.ts"
import type { Owner } from "../src/internal/kube.ts"
import { createExternalSecret, eventually, getIfExists, getJson, type Json, kubeConfigOf, requestsDuring, useCluster } from "./helpers.ts"

const kube = useCluster()

/** Runs a State program over a fresh KubeState layer (its own client and cache, like another process). */
const run = <A, E>(ns: string, program: Effect.Effect<A, E, State>, owner?: Owner) =>
  Effect.runPromise(program.pipe(Effect.provide(KubeState.layer({ namespace: ns, kubeConfig: kubeConfigOf(kube()), owner }))))

const failure = <A, E>(ns: string, program: Effect.Effect<A, E, State>, owner?: Owner) => run(ns, Effect.flip(program), owner)

const stateObject = (ns: string, key: string) => getIfExists(kube(), ["gitlabdeploytokenstates", stateObjectName(key)], ns)

describe.concurrent("KubeState", () => {
  it("stores one object per key next to the consumer: name, labels, key annotation, finalizer, owner, record and a kubectl summary", async () => {
    const ns = await kube().newNamespace("layout")
    const owner = await createExternalSecret(kube(), ns, "gitlab-deploy-token")
    const key = `${ns}/gitlab-deploy-token`
    const record = withToken(key)
    const version = await run(
      ns,
      st((s) => s.save(key, record, null)),
      owner,
    )
    const loaded = await run(
      ns,
      st((s) => s.load(key)),
    )
    expect(Option.getOrThrow(loaded)).toEqual({ record, version })

    const name = stateObjectName(key)
    expect(name).toMatch(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/)
    expect(name.length).toBeLessThanOrEqual(63)
    const obj = (await stateObject(ns, key))!
    const meta = obj.metadata as Json
    expect(meta.name).toBe(name)
    expect(meta.resourceVersion).toBe(version)
    expect(meta.labels).toEqual({ "app.kubernetes.io/managed-by": "gldt", "gldt.dev/key-hash": keyHashLabel(key) })
    expect(meta.annotations).toEqual({ "gldt.dev/key": key })
    expect(meta.finalizers).toEqual([STATE_FINALIZER])
    expect(meta.ownerReferences).toEqual([{ apiVersion: "external-secrets.io/v1", kind: "ExternalSecret", name: "gitlab-deploy-token", uid: owner.uid }])
    expect(obj.spec).toEqual({ key, record: JSON.parse(JSON.stringify(record)) })
    expect(obj.status).toEqual({ generation: 1, currentTokenId: 1001, retiring: 1, suspects: 0, openIntent: false })

    const table = await kube().kubectl(["get", "gitlabdeploytokenstates"], { namespace: ns })
    expect(table.stdout).toMatch(/^NAME\s+KEY\s+CURRENT\s+RETIRING\s+SUSPECTS\s+AGE/)
    expect(table.stdout).toMatch(new RegExp(`${name}\\s+${key.replace("/", "\\/")}\\s+1001\\s+1\\s+0\\s+`))
    // The label selects the key's object; the short name works.
    const selected = await kube().kubectl(["get", "gldts", "-l", `gldt.dev/key-hash=${keyHashLabel(key)}`, "-o", "name"], { namespace: ns })
    expect(selected.stdout.trim()).toBe(`gitlabdeploytokenstate.gldt.dev/${name}`)

    expect(
      await run(
        ns,
        st((s) => s.list()),
      ),
    ).toEqual([key])
  })

  it("object names are DNS-1123 labels and distinct for keys that slug alike", () => {
    const keys = ["a/b", "a-b", "A/B", "", "ns/" + "x".repeat(300), "ns/Ünïcödé ✓", "--", "ns/es/0", "ns/es/1"]
    const names = keys.map(stateObjectName)
    for (const n of names) expect(n).toMatch(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/)
    for (const n of names) expect(n.length).toBeLessThanOrEqual(53)
    expect(new Set(names).size).toBe(keys.length)
  })

  it("compare-and-set on resourceVersion: create twice and a stale version are StateConflict; the current one wins", async () => {
    const ns = await kube().newNamespace("cas")
    await expectCompareAndSet(KubeState.layer({ namespace: ns, kubeConfig: kubeConfigOf(kube()) }), `${ns}/es`, `${ns}/missing`)
  })

  it("two writers racing on one key: exactly one wins each round, the other gets StateConflict", async () => {
    const ns = await kube().newNamespace("race")
    const writer = () => KubeState.layer({ namespace: ns, kubeConfig: kubeConfigOf(kube()) })
    await expectOneWinnerPerRace(writer(), writer(), `${ns}/es`, 6)
  })

  it("an object whose record is not the key's is a StateError naming it, and is never overwritten", async () => {
    const ns = await kube().newNamespace("broken")
    const key = `${ns}/es`
    const name = stateObjectName(key)
    const manifest = {
      apiVersion: "gldt.dev/v1alpha1",
      kind: "GitlabDeployTokenState",
      metadata: { name },
      spec: { key, record: { ...emptyRecord(`${ns}/other`), generation: 3 } },
    }
    await kube().kubectl(["apply", "-f", "-"], { namespace: ns, input: JSON.stringify(manifest) })
    const broken = await failure(
      ns,
      st((s) => s.load(key)),
    )
    expect(broken._tag).toBe("StateError")
    expect(broken.message).toContain(`gitlabdeploytokenstates.gldt.dev ${ns}/${name}`)
    expect(broken.message).toContain(`has a record of key "${ns}/other"`)
    const rv = ((await stateObject(ns, key))!.metadata as Json).resourceVersion as string
    const overwrite = await failure(
      ns,
      st((s) => s.save(key, emptyRecord(key), rv)),
    )
    expect(overwrite._tag).toBe("StateError")
    expect(((await stateObject(ns, key))!.metadata as Json).resourceVersion).toBe(rv)

    // A record the apiserver accepts but core does not (wrong key type) is refused by the CRD itself.
    const invalid = await kube().kubectl(["apply", "-f", "-"], {
      namespace: ns,
      reject: false,
      input: JSON.stringify({ ...manifest, metadata: { name: "other" }, spec: { key: "k", record: { ...emptyRecord("k"), generation: "three" } } }),
    })
    expect(invalid.stderr).toContain("spec.record.generation: Invalid value")
  })

  it("remove refuses a record that still tracks tokens; an empty record's object is deleted and its finalizer released", async () => {
    const ns = await kube().newNamespace("remove")
    const key = `${ns}/es`
    const v1 = await run(
      ns,
      st((s) => s.save(key, withToken(key), null)),
    )
    const refused = await failure(
      ns,
      st((s) => s.remove(key, v1)),
    )
    expect(refused._tag).toBe("StateError")
    expect(refused.message).toContain("still answers for 1001 (current), 1000 (retiring)")
    expect(await stateObject(ns, key)).toBeDefined()

    const v2 = await run(
      ns,
      st((s) => s.save(key, { ...emptyRecord(key), generation: 1 }, v1)),
    )
    const stale = await failure(
      ns,
      st((s) => s.remove(key, v1)),
    )
    expect(stale._tag).toBe("StateConflict")
    await run(
      ns,
      st((s) => s.remove(key, v2)),
    )
    expect(await stateObject(ns, key)).toBeUndefined()
    expect(
      Option.isNone(
        await run(
          ns,
          st((s) => s.load(key)),
        ),
      ),
    ).toBe(true)
  })

  it("a state object deleted with live tokens stays Terminating, takes no new mint, and goes once its tokens are gone", async () => {
    const ns = await kube().newNamespace("terminating")
    const key = `${ns}/es`
    await run(
      ns,
      st((s) => s.save(key, withToken(key), null)),
    )
    await kube().kubectl(["delete", "gitlabdeploytokenstates", stateObjectName(key), "--wait=false"], { namespace: ns })
    await new Promise((r) => setTimeout(r, 1500))
    const held = (await stateObject(ns, key))!
    expect((held.metadata as Json).deletionTimestamp).toBeTypeOf("string")
    expect((held.metadata as Json).finalizers).toEqual([STATE_FINALIZER])

    // The record is still readable, and revocation progress can be saved…
    const loaded = Option.getOrThrow(
      await run(
        ns,
        st((s) => s.load(key)),
      ),
    )
    const progressed = await run(
      ns,
      st((s) => s.save(key, { ...loaded.record, retiring: [] }, loaded.version)),
    )
    // …but nothing that would start a new mint.
    const mint = await failure(
      ns,
      st((s) => s.save(key, { ...loaded.record, retiring: [], generation: 2 }, progressed)),
    )
    expect(mint._tag).toBe("StateError")
    expect(mint.message).toContain("is being deleted: no new token is minted for it")
    // Still there while the current token is tracked.
    expect(await stateObject(ns, key)).toBeDefined()

    const { current: _c, ...rest } = loaded.record
    const empty = await run(
      ns,
      st((s) => s.save(key, { ...rest, retiring: [] }, progressed)),
    )
    await run(
      ns,
      st((s) => s.remove(key, empty)),
    )
    expect(await stateObject(ns, key)).toBeUndefined()
  })

  it("deleting the owner (ExternalSecret) makes garbage collection delete the state object, which waits for revocation", async () => {
    const ns = await kube().newNamespace("owner-gc")
    const owner = await createExternalSecret(kube(), ns, "es")
    const key = `${ns}/es`
    await run(
      ns,
      st((s) => s.save(key, withToken(key), null)),
      owner,
    )
    await kube().kubectl(["delete", "externalsecret", "es"], { namespace: ns })
    const terminating = await eventually(async () => {
      const obj = (await stateObject(ns, key))!
      if (typeof (obj.metadata as Json).deletionTimestamp !== "string") throw new Error("not yet deleted by the garbage collector")
      return obj
      // kube-controller-manager's garbage collector picks up CRD types created after it started at its
      // next discovery resync (every 30 s); allow for a loaded machine.
    }, 110_000)
    expect((terminating.metadata as Json).finalizers).toEqual([STATE_FINALIZER])
    const loaded = Option.getOrThrow(
      await run(
        ns,
        st((s) => s.load(key)),
      ),
    )
    const { current: _c, ...rest } = loaded.record
    const empty = await run(
      ns,
      st((s) => s.save(key, { ...rest, retiring: [] }, loaded.version)),
    )
    await run(
      ns,
      st((s) => s.remove(key, empty)),
    )
    expect(await stateObject(ns, key)).toBeUndefined()
  })

  it("a finalizer removed by hand is put back on the next save", async () => {
    const ns = await kube().newNamespace("refinalize")
    const key = `${ns}/es`
    const v1 = await run(
      ns,
      st((s) => s.save(key, withToken(key), null)),
    )
    await kube().kubectl(["patch", "gitlabdeploytokenstates", stateObjectName(key), "--type=merge", "-p", '{"metadata":{"finalizers":null}}'], {
      namespace: ns,
    })
    const loaded = Option.getOrThrow(
      await run(
        ns,
        st((s) => s.load(key)),
      ),
    )
    expect(loaded.version).not.toBe(v1)
    await run(
      ns,
      st((s) => s.save(key, { ...loaded.record, generation: 2 }, loaded.version)),
    )
    const obj = await getJson(kube(), ["gitlabdeploytokenstates", stateObjectName(key)], ns)
    expect((obj.metadata as Json).finalizers).toEqual([STATE_FINALIZER])
  })

  it("with reuseReads, loads after a save cost no request; another writer's change makes the next modify conflict once, re-read, and keep that change", async () => {
    const ns = await kube().newNamespace("reuse")
    const key = `${ns}/es`
    const program = Effect.gen(function* () {
      const s = yield* State
      yield* s.save(key, withToken(key), null)
      const quiet = yield* requestsDuring(ns, Effect.all([s.load(key), s.load(key)]))
      // Another writer (kubectl) changes the record behind this instance's back.
      yield* Effect.promise(() =>
        kube().kubectl(["patch", "gitlabdeploytokenstates", stateObjectName(key), "--type=merge", "-p", '{"spec":{"record":{"generation":7}}}'], {
          namespace: ns,
        }),
      )
      const modified = yield* requestsDuring(
        ns,
        CompareAndSet.update(key, (r) => ({ ...r, lastError: `seen generation ${r.generation}` })),
      )
      return { quiet: quiet.requests, modify: modified.requests }
    })
    const counts = await Effect.runPromise(program.pipe(Effect.provide(KubeState.layer({ namespace: ns, kubeConfig: kubeConfigOf(kube()), reuseReads: true }))))
    expect(counts.quiet).toBe(0)
    // PUT (409, stale) → GET → PUT.
    expect(counts.modify).toBe(3)
    const stored = Option.getOrThrow(
      await run(
        ns,
        st((s) => s.load(key)),
      ),
    ).record
    expect(stored.generation).toBe(7)
    expect(stored.lastError).toBe("seen generation 7")
  })

  it("with reuseReads, a key that does not exist yet is read once, then created and known without another read", async () => {
    const ns = await kube().newNamespace("absent")
    const key = `${ns}/es`
    const program = Effect.gen(function* () {
      const s = yield* State
      const absent = yield* requestsDuring(ns, Effect.all([s.load(key), s.load(key), s.load(key)]))
      const created = yield* requestsDuring(ns, Effect.andThen(s.save(key, withToken(key), null), s.load(key)))
      return { absent, created }
    })
    const { absent, created } = await Effect.runPromise(
      program.pipe(Effect.provide(KubeState.layer({ namespace: ns, kubeConfig: kubeConfigOf(kube()), reuseReads: true }))),
    )
    expect(absent.result.every(Option.isNone)).toBe(true)
    expect(absent.requests).toBe(1)
    expect(created.requests).toBe(1)
    expect(Option.getOrThrow(created.result).record.current?.id).toBe(1001)
  })

  it("absent: a key the caller knows to be new costs no read; its save creates the object in one request", async () => {
    const ns = await kube().newNamespace("absent-known")
    const key = `${ns}/es`
    const program = Effect.gen(function* () {
      const s = yield* State
      const loaded = yield* requestsDuring(ns, Effect.all([s.load(key), s.load(key)]))
      const created = yield* requestsDuring(ns, Effect.andThen(s.save(key, withToken(key), null), s.load(key)))
      return { loaded, created }
    })
    const { loaded, created } = await Effect.runPromise(
      program.pipe(Effect.provide(KubeState.layer({ namespace: ns, kubeConfig: kubeConfigOf(kube()), reuseReads: true, absent: [key] }))),
    )
    expect(loaded.result.every(Option.isNone)).toBe(true)
    expect(loaded.requests).toBe(0)
    expect(created.requests).toBe(1)
    expect(Option.getOrThrow(created.result).record.current?.id).toBe(1001)
  })

  it("absent guessed wrong: the save conflicts instead of overwriting, and the next load reads the object that exists", async () => {
    const ns = await kube().newNamespace("absent-wrong")
    const key = `${ns}/es`
    const kubeConfig = kubeConfigOf(kube())
    await Effect.runPromise(
      Effect.gen(function* () {
        yield* (yield* State).save(key, withToken(key), null)
      }).pipe(Effect.provide(KubeState.layer({ namespace: ns, kubeConfig }))),
    )
    const program = Effect.gen(function* () {
      const s = yield* State
      const guessed = yield* s.load(key)
      const saved = yield* Effect.result(s.save(key, { ...withToken(key), generation: 9 }, null))
      const reread = yield* requestsDuring(ns, s.load(key))
      return { guessed, saved, reread }
    })
    const { guessed, saved, reread } = await Effect.runPromise(
      program.pipe(Effect.provide(KubeState.layer({ namespace: ns, kubeConfig, reuseReads: true, absent: [key] }))),
    )
    expect(Option.isNone(guessed)).toBe(true)
    expect(saved._tag === "Failure" && saved.failure._tag).toBe("StateConflict")
    expect(reread.requests).toBe(1)
    expect(Option.getOrThrow(reread.result).record.generation).not.toBe(9)
    expect(Option.getOrThrow(reread.result).record.current?.id).toBe(1001)
  })

  it("without reuseReads every load reads the API, so a long-lived instance sees other writers", async () => {
    const ns = await kube().newNamespace("fresh")
    const key = `${ns}/es`
    const program = Effect.gen(function* () {
      const s = yield* State
      yield* s.save(key, withToken(key), null)
      yield* Effect.promise(() =>
        kube().kubectl(["patch", "gitlabdeploytokenstates", stateObjectName(key), "--type=merge", "-p", '{"spec":{"record":{"generation":9}}}'], {
          namespace: ns,
        }),
      )
      return yield* requestsDuring(ns, s.load(key))
    })
    const { result, requests } = await Effect.runPromise(program.pipe(Effect.provide(KubeState.layer({ namespace: ns, kubeConfig: kubeConfigOf(kube()) }))))
    expect(requests).toBe(1)
    expect(Option.getOrThrow(result).record.generation).toBe(9)
  })

  it("a view makes snapshot free: the records of the view's objects, none that fail to decode, and no request", async () => {
    const ns = await kube().newNamespace("view")
    const keys = [`${ns}/a`, `${ns}/b`]
    for (const k of keys)
      await run(
        ns,
        st((s) => s.save(k, withToken(k), null)),
      )
    const listed = (await getJson(kube(), ["gitlabdeploytokenstates"], ns)).items as Array<StateObject>
    const broken = { ...listed[0]!, metadata: { ...listed[0]!.metadata, name: "broken" }, spec: { key: `${ns}/broken`, record: { nonsense: true } } }
    const objects = [...listed, broken]
    const view = { list: () => objects }
    const program = Effect.gen(function* () {
      const s = yield* State
      expect(s.snapshot).toBeDefined()
      return yield* requestsDuring(ns, s.snapshot!())
    })
    const { result, requests } = await Effect.runPromise(
      program.pipe(Effect.provide(KubeState.layer({ namespace: ns, kubeConfig: kubeConfigOf(kube()), view }))),
    )
    expect(requests).toBe(0)
    expect(result.map((r) => r.key).sort()).toEqual(keys)
    expect(result.find((r) => r.key === keys[0])?.current?.id).toBe(1001)
    // Without a view there is no snapshot: core then lists and loads.
    const plain = await run(
      ns,
      st((s) => Effect.succeed(s.snapshot)),
    )
    expect(plain).toBeUndefined()
  })
})
