/**
 * End to end, the hard cases: kill -9 at random moments (no leaked token, the Secret always holds a
 * live token), two replicas with leader election (one leads, no double mint, the stand-by takes over
 * within the Lease duration), and ESO coexistence (ESO detected → ExternalSecrets left alone,
 * GitlabDeployTokenConsumer still served).
 */
import { writeFileSync } from "node:fs"
import { join } from "node:path"
import { seededRandom } from "@gldt/gitlab-sim"
import type { Kube } from "@gldt/testenv"
import { afterAll, assert, beforeAll, describe, it } from "vitest"
import {
  apply,
  authSecretYaml,
  type ControllerProcess,
  decode,
  eventually,
  getJson,
  killAll,
  live,
  readyCondition,
  type Sim,
  seedManifests,
  sleep,
  startCluster,
  startController,
  startSim,
} from "./support.ts"

/** kill -9 rounds (the issue asks for at least 30). */
const CRASH_ROUNDS = Number(process.env.GLDT_E2E_CRASH_ROUNDS ?? 30)

let kube: Kube
let sim: Sim

beforeAll(async () => {
  ;[kube, sim] = await Promise.all([startCluster(), startSim()])
}, 600_000)

afterAll(async () => {
  killAll()
  await sim?.stop()
  await kube?.stop()
})

const secretToken = async (ns: string, name = "gitlab-deploy-token") => {
  const s = await getJson(kube, ["secret", name], ns)
  return s === undefined ? undefined : decode((s.data as Record<string, string>).token)
}

const seed = async (prefix: string, o: Partial<Parameters<typeof seedManifests>[0]> = {}, tokenName = prefix) => {
  const ns = await kube.newNamespace(prefix)
  await apply(kube, ns, authSecretYaml(sim.pat))
  await apply(kube, ns, seedManifests({ url: sim.url, caPem: sim.caPem, ...o }).replace('name: "eso-managed"', `name: "${tokenName}"`))
  return ns
}

const ofName = async (name: string, includeDeleted = false) => (await sim.tokens(includeDeleted)).filter((t) => t.name === name)

describe("crashes", () => {
  it(`kill -9 at random moments, ${CRASH_ROUNDS} rounds: zero leaked tokens, the Secret always holds a live token`, async () => {
    const ns = await seed("crash", { refreshInterval: "4s", revokeGracePeriod: "2s" }, "crash-token")
    const rng = seededRandom(9)
    const problems: string[] = []
    for (let round = 0; round < CRASH_ROUNDS; round++) {
      const c = startController(kube, ["--namespace", ns, "--metrics-bind-address", "0", "--health-probe-bind-address", "0"])
      await sleep(1_200 + Math.floor(rng() * 3_000))
      await c.kill9()
      const token = await secretToken(ns)
      if (token !== undefined) {
        const t = (await ofName("crash-token", true)).find((x) => x.token === token)
        if (t === undefined || t.revoked || t.deletedAt !== undefined) problems.push(`round ${round}: the Secret holds a token that is not live`)
      }
    }
    assert.deepStrictEqual(problems, [])
    // A last controller settles every interrupted create (the settle window is 60 s), then the
    // ExternalSecret goes: nothing of it may remain live in GitLab, and no suspect is left.
    const last = startController(kube, ["--namespace", ns, "--metrics-bind-address", "0", "--health-probe-bind-address", "0"])
    try {
      await eventually(async () => {
        const es = await getJson(kube, ["externalsecret", "gitlab-deploy-token"], ns)
        assert.strictEqual(readyCondition(es)?.status, "True")
      }, 120_000)
      await kube.kubectl(["delete", "externalsecret", "gitlab-deploy-token", "--wait=true", "--timeout=150s"], { namespace: ns, timeoutMs: 160_000 })
      const leaked = live(await ofName("crash-token"))
      assert.deepStrictEqual(
        leaked.map((t) => t.id),
        [],
        `leaked tokens after ${CRASH_ROUNDS} crash rounds`,
      )
      const minted = await ofName("crash-token", true)
      assert.isAbove(minted.length, 1, "the rounds minted tokens")
    } finally {
      await last.stop()
    }
  }, 900_000)
})

describe("leader election", () => {
  it("two replicas: one leads, no double mint; the stand-by takes over within the Lease duration after kill -9", async () => {
    const leaseNs = await kube.newNamespace("lease")
    const args = (id: string) => [
      "--leader-elect",
      "--leader-election-namespace",
      leaseNs,
      "--lease-duration",
      "6s",
      "--renew-deadline",
      "4s",
      "--retry-period",
      "1s",
      "--identity",
      id,
      "--metrics-bind-address",
      "0",
      "--health-probe-bind-address",
      "0",
    ]
    const a = startController(kube, args("replica-a"))
    const b = startController(kube, args("replica-b"))
    const replicas: Record<string, ControllerProcess> = { "replica-a": a, "replica-b": b }
    try {
      const holder = async () =>
        ((await getJson(kube, ["lease", "gldt-controller"], leaseNs))?.spec as { holderIdentity?: string } | undefined)?.holderIdentity ?? ""
      const leader = await eventually(async () => {
        const h = await holder()
        if (!(h in replicas)) throw new Error(`no leader yet (${h})`)
        return h
      }, 60_000)
      const ns = await seed("two-replicas", {}, "two-replicas")
      await eventually(async () => assert.isDefined(await secretToken(ns)), 60_000)
      await sleep(3_000)
      assert.lengthOf(await ofName("two-replicas", true), 1, "both replicas minted")
      // Only the leader logged work.
      const standby = leader === "replica-a" ? "replica-b" : "replica-a"
      assert.notInclude(replicas[standby]!.logs(), "minted deploy token")
      // The leader dies; the stand-by takes the Lease once it has seen no renewal for the Lease
      // duration (6 s) on its own clock, as client-go does: at most duration + two retry periods
      // (its last observation and its next try, 1 s each with 20 % jitter) after the kill.
      const killedAt = Date.now()
      await replicas[leader]!.kill9()
      const lease = await eventually(
        async () => {
          const l = await getJson(kube, ["lease", "gldt-controller"], leaseNs)
          assert.strictEqual((l?.spec as { holderIdentity?: string } | undefined)?.holderIdentity, standby)
          return l!.spec as { acquireTime: string; leaseTransitions: number }
        },
        20_000,
        200,
      )
      const takeover = Date.parse(lease.acquireTime) - killedAt
      assert.isAtMost(takeover, 6_000 + 2 * 1_200 + 500, `took ${takeover} ms`)
      assert.strictEqual(lease.leaseTransitions, 1)
      // The new leader serves: a new ExternalSecret gets its Secret, once.
      const ns2 = await seed("after-takeover", {}, "after-takeover")
      await eventually(async () => assert.isDefined(await secretToken(ns2)), 60_000)
      await sleep(2_000)
      assert.lengthOf(await ofName("after-takeover", true), 1)
      assert.lengthOf(await ofName("two-replicas", true), 1, "the takeover minted again")
    } finally {
      await Promise.all([a.stop(), b.stop()])
    }
  }, 300_000)
})

describe("the seed's generator, with no CA in it", () => {
  it("is not held by a finalizer; deleting the namespace revokes every token through --gitlab-ca-file and finishes within 60 s", async () => {
    const ns = await seed("no-ca", { caPem: undefined }, "no-ca")
    const caFile = join(kube.dir, "no-ca-test.pem")
    writeFileSync(caFile, sim.caPem)
    const c = startController(kube, ["--namespace", ns, "--gitlab-ca-file", caFile, "--metrics-bind-address", "0", "--health-probe-bind-address", "0"])
    try {
      const token = await eventually(async () => {
        const t = await secretToken(ns)
        if (t === undefined) throw new Error(`no Secret yet:\n${c.logs().slice(-2000)}`)
        return t
      }, 60_000)
      const minted = (await ofName("no-ca")).find((t) => t.token === token)
      assert.isDefined(minted)
      // The consumer is held, the generator is not: revoking needs nothing from it.
      const finalizers = async (kind: string, name: string) =>
        ((await getJson(kube, [kind, name], ns))?.metadata as { finalizers?: string[] } | undefined)?.finalizers ?? []
      assert.include(await finalizers("externalsecret", "gitlab-deploy-token"), "gldt.dev/revoke-tokens")
      assert.notInclude(await finalizers("gitlabdeploytoken", "gitlab-deploy-token"), "gldt.dev/generator-in-use")
      const started = Date.now()
      await kube.kubectl(["delete", "namespace", ns, "--wait=true", "--timeout=60s"])
      assert.isBelow(Date.now() - started, 60_000)
      assert.lengthOf(live(await ofName("no-ca")), 0, "a token of the deleted namespace is still live")
    } finally {
      await c.stop()
    }
  }, 180_000)
})

describe("tokens revoked outside gldt", () => {
  it("a token revoked in GitLab's UI is noticed by the periodic list and replaced", async () => {
    const ns = await seed("revoked-outside", {}, "revoked-outside")
    const c = startController(kube, ["--namespace", ns, "--revocation-check-interval", "2s", "--metrics-bind-address", "0", "--health-probe-bind-address", "0"])
    try {
      const first = await eventually(async () => {
        const t = await secretToken(ns)
        if (t === undefined) throw new Error("no Secret yet")
        return t
      }, 60_000)
      const token = (await ofName("revoked-outside")).find((t) => t.token === first)!
      await sim.control("POST", `tokens/${token.id}/revoke`)
      const second = await eventually(async () => {
        const t = await secretToken(ns)
        if (t === undefined || t === first) throw new Error("not replaced yet")
        return t
      }, 30_000)
      assert.isTrue(live(await ofName("revoked-outside")).some((t) => t.token === second))
      assert.include(c.logs(), "revoked outside gldt")
    } finally {
      await c.stop()
    }
  }, 120_000)
})

describe("ESO coexistence", () => {
  it("with ESO installed, ExternalSecrets are left alone and GitlabDeployTokenConsumer is served", async () => {
    // ESO's SecretStore CRD is what detection looks for (gldt never installs it).
    await apply(
      kube,
      "default",
      `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: { name: secretstores.external-secrets.io }
spec:
  group: external-secrets.io
  names: { kind: SecretStore, plural: secretstores, singular: secretstore, listKind: SecretStoreList }
  scope: Namespaced
  versions:
    - name: v1
      served: true
      storage: true
      schema: { openAPIV3Schema: { type: object, x-kubernetes-preserve-unknown-fields: true } }
`,
    )
    try {
      const ns = await seed("eso-present", {}, "eso-present")
      await apply(
        kube,
        ns,
        `apiVersion: gldt.dev/v1alpha1
kind: GitlabDeployTokenConsumer
metadata: { name: handed-to-gldt }
spec:
  generatorRef: { kind: GitlabDeployToken, name: gitlab-deploy-token }
  refreshInterval: 1h
  target: { name: registry-token }
`,
      )
      const c = startController(kube, ["--namespace", ns, "--metrics-bind-address", "0", "--health-probe-bind-address", "0"])
      try {
        await eventually(async () => assert.include(c.logs(), "External Secrets Operator is installed"), 30_000)
        const token = await eventually(async () => {
          const t = await secretToken(ns, "registry-token")
          if (t === undefined) throw new Error("no Secret yet")
          return t
        }, 60_000)
        await eventually(async () => {
          const consumer = await getJson(kube, ["gitlabdeploytokenconsumer", "handed-to-gldt"], ns)
          assert.strictEqual(readyCondition(consumer)?.reason, "SecretSynced")
        }, 30_000)
        assert.isTrue(live(await ofName("eso-present")).some((t) => t.token === token))
        // The ExternalSecret stays ESO's: no Secret, no status, no finalizer of ours.
        await sleep(3_000)
        assert.isUndefined(await secretToken(ns))
        const es = await getJson(kube, ["externalsecret", "gitlab-deploy-token"], ns)
        assert.isUndefined(readyCondition(es))
        assert.notInclude(JSON.stringify((es?.metadata as { finalizers?: unknown })?.finalizers ?? []), "gldt.dev")
        assert.lengthOf(await ofName("eso-present", true), 1, "a token was minted for the ExternalSecret")
        // Deleting the consumer revokes its token.
        await kube.kubectl(["delete", "gitlabdeploytokenconsumer", "handed-to-gldt", "--wait=true", "--timeout=30s"], { namespace: ns })
        assert.lengthOf(live(await ofName("eso-present")), 0)
      } finally {
        await c.stop()
      }
    } finally {
      await kube.kubectl(["delete", "crd", "secretstores.external-secrets.io", "--wait=true"])
    }
  }, 300_000)
})
