/**
 * End to end: core's reconcile / rotate / revokeAll over KubeState + KubeSink, the real GitLab client
 * and the in-process simulator, on a real kube-apiserver.
 */
import { type Job, reconcile, revokeAll, rotate } from "@gldt/core/Lifecycle"
import { State } from "@gldt/core/State"
import { layer as gitlabLayer } from "@gldt/gitlab/GitLabClient"
import { Effect, Layer, Logger, Option } from "effect"
import { describe, expect, it } from "vitest"
import * as KubeSink from "../src/KubeSink.ts"
import * as KubeState from "../src/KubeState.ts"
import { STATE_FINALIZER, stateObjectName } from "../src/KubeState.ts"
import type { Owner } from "../src/internal/kube.ts"
import type { Target } from "../src/Target.ts"
import { jobFor } from "../../core/test/support/GitLabWorld.ts"
import { createExternalSecret, decode, getIfExists, type Json, kubeConfigOf, useClusterAndGitLab } from "./helpers.ts"

const { kube, gitlab } = useClusterAndGitLab()

const layers = (ns: string, target: Target, owner: Owner) =>
  Layer.mergeAll(
    KubeState.layer({ namespace: ns, kubeConfig: kubeConfigOf(kube()), owner }),
    KubeSink.layer({ namespace: ns, kubeConfig: kubeConfigOf(kube()), target, owner }),
    gitlabLayer(),
    Logger.layer([]),
  )

const live = (ids: ReadonlyArray<number>) =>
  gitlab()
    .sim.tokens()
    .filter((t) => ids.includes(t.id) && t.active)
const tokenIds = (actions: ReadonlyArray<{ readonly tokenId: number }>) => actions.map((a) => a.tokenId)

/** The text of `kubectl get … -o yaml`, for every object the adapter writes in the namespace, and the rest. */
const yamlOf = async (ns: string, kind: string) => (await kube().kubectl(["get", kind, "-o", "yaml"], { namespace: ns })).stdout

const assertNoSecrets = async (ns: string, tokens: ReadonlyArray<string>) => {
  const pat = gitlab().pat
  const forms = (s: string) => [s, Buffer.from(s).toString("base64")]
  const state = await yamlOf(ns, "gitlabdeploytokenstates")
  const externalSecrets = await yamlOf(ns, "externalsecrets")
  for (const text of [state, externalSecrets]) {
    for (const s of [pat, ...tokens]) for (const f of forms(s)) expect(text).not.toContain(f)
  }
  // The Secret holds the delivered token in its data, by design — never in its metadata, never the access token.
  const secrets = JSON.parse((await kube().kubectl(["get", "secrets", "-o", "json"], { namespace: ns })).stdout) as { items: Array<Json> }
  for (const s of secrets.items) {
    const metadata = JSON.stringify(s.metadata)
    for (const t of [pat, ...tokens]) for (const f of forms(t)) expect(metadata).not.toContain(f)
    for (const f of forms(pat)) expect(JSON.stringify(s)).not.toContain(f)
  }
}

describe("lifecycle over KubeState + KubeSink", () => {
  it("mints and delivers, stays quiet, rotates, and revokeAll revokes every token and removes record and Secret", async () => {
    const ns = await kube().newNamespace("e2e")
    const owner = await createExternalSecret(kube(), ns, "gitlab-deploy-token")
    const key = `${ns}/gitlab-deploy-token`
    const job: Job = jobFor(gitlab(), key)
    const provide = Effect.provide(layers(ns, { name: "gitlab-deploy-token", creationPolicy: "Owner" }, owner))

    const first = await Effect.runPromise(reconcile(job).pipe(provide))
    expect(first.actions.map((a) => a.action)).toEqual(["minted", "delivered"])
    const t1 = gitlab()
      .sim.tokens()
      .find((t) => t.id === first.currentTokenId)!
    expect(t1.active).toBe(true)
    expect(t1.username).toBe("eso")

    // The Secret holds the token; the record is readable with kubectl.
    const secret = (await getIfExists(kube(), ["secret", "gitlab-deploy-token"], ns)) as { data: Record<string, string>; metadata: Json }
    expect(decode(secret.data.username)).toBe("eso")
    expect(decode(secret.data.token)).toBe(t1.token)
    expect((secret.metadata.annotations as Record<string, string>)["gldt.dev/token-id"]).toBe(String(t1.id))
    const table = await kube().kubectl(["get", "gitlabdeploytokenstates"], { namespace: ns })
    expect(table.stdout).toMatch(new RegExp(`${stateObjectName(key)}\\s+${key.replace("/", "\\/")}\\s+${t1.id}\\s+0\\s+0\\s+`))
    const record = (await getIfExists(kube(), ["gitlabdeploytokenstate", stateObjectName(key)], ns))!
    expect(((record.spec as Json).record as Json).current).toMatchObject({ id: t1.id, name: "eso-managed", username: "eso" })

    // A no-op reconcile makes no GitLab call.
    const calls = gitlab().sim.requests().length
    const quiet = await Effect.runPromise(reconcile(job).pipe(provide))
    expect(quiet.actions).toEqual([])
    expect(gitlab().sim.requests().length).toBe(calls)

    // Rotation: the new token is delivered before the old one is revoked (grace 0 here).
    const rotated = await Effect.runPromise(rotate(job, Date.now() + 1).pipe(provide))
    expect(rotated.actions.map((a) => a.action)).toEqual(["rotated", "delivered", "revoked"])
    const t2 = gitlab()
      .sim.tokens()
      .find((t) => t.id === rotated.currentTokenId)!
    expect(t2.id).not.toBe(t1.id)
    expect(tokenIds(rotated.actions).at(-1)).toBe(t1.id)
    expect(live([t1.id, t2.id]).map((t) => t.id)).toEqual([t2.id])
    const after = (await getIfExists(kube(), ["secret", "gitlab-deploy-token"], ns)) as { data: Record<string, string> }
    expect(decode(after.data.token)).toBe(t2.token)

    await assertNoSecrets(ns, [t1.token, t2.token])

    // The consumer is gone: every token revoked, the record and the Secret removed.
    const gone = await Effect.runPromise(revokeAll(job, { removeFromSink: true }).pipe(provide))
    expect(gone.actions.map((a) => a.action)).toEqual(["revoked"])
    expect(live([t1.id, t2.id])).toEqual([])
    expect(await getIfExists(kube(), ["gitlabdeploytokenstate", stateObjectName(key)], ns)).toBeUndefined()
    expect(await getIfExists(kube(), ["secret", "gitlab-deploy-token"], ns)).toBeUndefined()
  })

  it("a state object deleted while its token is live stays Terminating until revokeAll revokes it and releases the finalizer", async () => {
    const ns = await kube().newNamespace("e2e-delete")
    const owner = await createExternalSecret(kube(), ns, "es")
    const key = `${ns}/es`
    const job = jobFor(gitlab(), key)
    const provide = Effect.provide(layers(ns, { name: "es", creationPolicy: "Owner" }, owner))
    const minted = await Effect.runPromise(reconcile(job).pipe(provide))
    const id = minted.currentTokenId!

    await kube().kubectl(["delete", "gitlabdeploytokenstate", stateObjectName(key), "--wait=false"], { namespace: ns })
    await new Promise((r) => setTimeout(r, 1500))
    const held = (await getIfExists(kube(), ["gitlabdeploytokenstate", stateObjectName(key)], ns))!
    expect((held.metadata as Json).deletionTimestamp).toBeTypeOf("string")
    expect((held.metadata as Json).finalizers).toEqual([STATE_FINALIZER])
    expect(live([id]).length).toBe(1)

    // A reconcile meanwhile mints nothing new for a record being deleted.
    const posts = gitlab()
      .sim.requests()
      .filter((r) => r.method === "POST").length
    await kube().kubectl(["delete", "secret", "es"], { namespace: ns })
    const refused = await Effect.runPromise(Effect.flip(reconcile(job).pipe(provide)))
    expect(refused._tag).toBe("StateError")
    expect(refused.message).toContain("is being deleted")
    expect(
      gitlab()
        .sim.requests()
        .filter((r) => r.method === "POST").length,
    ).toBe(posts)

    const report = await Effect.runPromise(revokeAll(job, { removeFromSink: true }).pipe(provide))
    expect(tokenIds(report.actions)).toEqual([id])
    expect(live([id])).toEqual([])
    expect(await getIfExists(kube(), ["gitlabdeploytokenstate", stateObjectName(key)], ns)).toBeUndefined()
  })

  it("a Terminating state object with a suspect does not hang: after the bounded wait the suspect is released and the finalizer goes", async () => {
    const ns = await kube().newNamespace("e2e-suspect")
    const owner = await createExternalSecret(kube(), ns, "es")
    const key = `${ns}/es`
    const job = jobFor(gitlab(), key)
    const provide = Effect.provide(layers(ns, { name: "es", creationPolicy: "Owner" }, owner))
    const minted = await Effect.runPromise(reconcile(job).pipe(provide))
    // A look-alike someone made, kept as a suspect that no person has decided on.
    const lookalike = gitlab().sim.createForeignToken({
      target: { project: "group/project" },
      name: job.spec.name,
      username: job.spec.username ?? null,
      scopes: [...job.spec.scopes],
    })
    await Effect.runPromise(
      Effect.gen(function* () {
        const state = yield* State
        const found = Option.getOrThrow(yield* state.load(key))
        const location = found.record.current!.location
        yield* state.save(
          key,
          { ...found.record, suspects: [{ id: lookalike.id, location, name: job.spec.name, username: "eso", generation: 1, foundAt: 0 }] },
          found.version,
        )
      }).pipe(provide),
    )
    await kube().kubectl(["delete", "gitlabdeploytokenstate", stateObjectName(key), "--wait=false"], { namespace: ns })

    const first = await Effect.runPromise(revokeAll(job, { removeFromSink: true, suspectWaitMs: 2_000 }).pipe(provide))
    expect(tokenIds(first.actions)).toEqual([minted.currentTokenId])
    expect(first.suspects).toEqual([lookalike.id])
    expect(first.nextAt).toBeGreaterThan(Date.now())
    expect(await getIfExists(kube(), ["gitlabdeploytokenstate", stateObjectName(key)], ns), "kept for a person meanwhile").toBeDefined()

    await new Promise((r) => setTimeout(r, Math.max(0, first.nextAt! - Date.now()) + 100))
    const second = await Effect.runPromise(revokeAll(job, { removeFromSink: true, suspectWaitMs: 2_000 }).pipe(provide))
    expect(second.actions.map((a) => [a.action, a.tokenId])).toEqual([["released", lookalike.id]])
    expect(await getIfExists(kube(), ["gitlabdeploytokenstate", stateObjectName(key)], ns), "the deletion completed").toBeUndefined()
    expect(
      gitlab()
        .sim.tokens()
        .some((t) => t.id === lookalike.id && t.active),
      "a released suspect is never revoked",
    ).toBe(true)
  })
})
