/** A real control plane per test file, the committed CRDs applied, and small kubectl helpers. */
import { subscribe, unsubscribe } from "node:diagnostics_channel"
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { type Kube, startKube } from "@gldt/testenv"
import { KubeConfig } from "@kubernetes/client-node"
import { Effect } from "effect"
import { afterAll, beforeAll } from "vitest"
import { type GitLabWorld, startGitLab } from "../../core/test/support/GitLabWorld.ts"
import type { Owner } from "../src/internal/kube.ts"

export const CRD_DIR = fileURLToPath(new URL("../../../apps/controller/crds/", import.meta.url))
export const FIXTURES = fileURLToPath(new URL("./fixtures/", import.meta.url))

export const crdNames = () =>
  fs
    .readdirSync(CRD_DIR)
    .filter((f) => f.endsWith(".yaml"))
    .sort()

/** Starts etcd + kube-apiserver + kube-controller-manager and applies the committed CRDs through kubectl. */
export const startCluster = async (): Promise<Kube> => {
  const kube = await startKube({ log: () => undefined })
  try {
    for (const file of crdNames()) await kube.kubectl(["apply", "-f", path.join(CRD_DIR, file)])
    await kube.kubectl(["wait", "--for=condition=Established", "--timeout=60s", "crd", "--all"])
  } catch (e) {
    await kube.stop()
    throw e
  }
  return kube
}

/** A service started once for a test file: the accessor fails clearly if used before it is ready. */
const accessor =
  <A>(what: string, get: () => A | undefined) =>
  (): A => {
    const value = get()
    if (value === undefined) throw new Error(`${what} not started`)
    return value
  }

/** Starts the control plane once for a test file (stopped after it). */
export const useCluster = (): (() => Kube) => {
  let kube: Kube | undefined
  beforeAll(async () => {
    kube = await startCluster()
  }, 40 * 60_000)
  afterAll(async () => {
    await kube?.stop()
  })
  return accessor("control plane", () => kube)
}

/** Starts the control plane and the GitLab simulator together once for a test file (stopped after it). */
export const useClusterAndGitLab = (): { readonly kube: () => Kube; readonly gitlab: () => GitLabWorld } => {
  let kube: Kube | undefined
  let gitlab: GitLabWorld | undefined
  beforeAll(async () => {
    ;[kube, gitlab] = await Promise.all([startCluster(), startGitLab()])
  }, 40 * 60_000)
  afterAll(async () => {
    await Promise.all([kube?.stop(), gitlab?.sim.close()])
  })
  return { kube: accessor("control plane", () => kube), gitlab: accessor("simulator", () => gitlab) }
}

export const kubeConfigOf = (kube: Kube): KubeConfig => {
  const kc = new KubeConfig()
  kc.loadFromFile(kube.kubeconfig)
  return kc
}

export type Json = Record<string, unknown>

export const getJson = async (kube: Kube, args: ReadonlyArray<string>, namespace?: string): Promise<Json> =>
  JSON.parse((await kube.kubectl(["get", ...args, "-o", "json"], namespace === undefined ? {} : { namespace })).stdout) as Json

/** Runs kubectl get; undefined when the object does not exist. */
export const getIfExists = async (kube: Kube, args: ReadonlyArray<string>, namespace: string): Promise<Json | undefined> => {
  const r = await kube.kubectl(["get", ...args, "-o", "json", "--ignore-not-found"], { namespace })
  return r.stdout.trim() === "" ? undefined : (JSON.parse(r.stdout) as Json)
}

/** Creates the seed's ExternalSecret (optionally with another target) and returns it as an owner. */
export const createExternalSecret = async (kube: Kube, namespace: string, name: string, target: Json = { name }): Promise<Owner> => {
  const manifest = {
    apiVersion: "external-secrets.io/v1",
    kind: "ExternalSecret",
    metadata: { name },
    spec: {
      refreshInterval: "1h",
      target,
      dataFrom: [
        { sourceRef: { generatorRef: { apiVersion: "generators.external-secrets.io/v1alpha1", kind: "GitlabDeployToken", name: "gitlab-deploy-token" } } },
      ],
    },
  }
  await kube.kubectl(["apply", "-f", "-"], { namespace, input: JSON.stringify(manifest) })
  const es = await getJson(kube, ["externalsecret", name], namespace)
  const meta = es.metadata as { uid: string }
  return { apiVersion: "external-secrets.io/v1", kind: "ExternalSecret", name, uid: meta.uid }
}

/** Retries `check` until it stops throwing (controllers are eventually consistent). */
export const eventually = async <A>(check: () => Promise<A>, timeoutMs = 60_000): Promise<A> => {
  const end = Date.now() + timeoutMs
  for (;;) {
    try {
      return await check()
    } catch (e) {
      if (Date.now() > end) throw e
      await new Promise((r) => setTimeout(r, 250))
    }
  }
}

export const decode = (b64: string | undefined): string | undefined => (b64 === undefined ? undefined : Buffer.from(b64, "base64").toString("utf8"))

/** HTTP requests to namespace `ns` undici starts while `effect` runs (each is reported on a diagnostics channel; tests run side by side). */
export const requestsDuring = <A, E, R>(ns: string, effect: Effect.Effect<A, E, R>) =>
  Effect.gen(function* () {
    let requests = 0
    const onRequest = (message: unknown) => {
      const path = (message as { request?: { path?: unknown } }).request?.path
      if (typeof path === "string" && path.includes(`/namespaces/${ns}/`)) requests++
    }
    subscribe("undici:request:create", onRequest)
    const result = yield* effect.pipe(Effect.ensuring(Effect.sync(() => unsubscribe("undici:request:create", onRequest))))
    return { result, requests }
  })
