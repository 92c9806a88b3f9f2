/** The in-process GitLab simulator with one project and a Maintainer's access token, and a Job for it. */
import type { Job, Policy } from "@gldt/core/Lifecycle"
import { type DeployTokenSpec, validateSpec } from "@gldt/core/Spec"
import { type Simulator, startSimulator } from "@gldt/gitlab-sim"
import type { Kube } from "@gldt/testenv"
import { Redacted } from "effect"
import { afterAll, beforeAll } from "vitest"
import { startCluster } from "./helpers.ts"

export interface GitLabWorld {
  readonly sim: Simulator
  /** The Maintainer's personal access token (must never reach State, the Secret's metadata or errors). */
  readonly pat: string
}

export const startGitLab = async (): Promise<GitLabWorld> => {
  const sim = await startSimulator()
  sim.addUser({ name: "maint" })
  sim.addGroup({ id: 7, path: "group" })
  sim.addProject({ id: 42, path: "group/project", members: { maint: "maintainer" } })
  return { sim, pat: sim.addAccessToken({ user: "maint", scopes: ["api"] }) }
}

export const specFor = (w: GitLabWorld): DeployTokenSpec => {
  const r = validateSpec(
    {
      url: w.sim.url,
      projectID: "group/project",
      name: "eso-managed",
      scopes: ["read_repository", "read_registry"],
      username: "eso",
      auth: { token: { secretRef: { name: "gitlab-api-token", key: "token" } } },
    },
    { allowHttp: true },
  )
  if (r.spec === undefined) throw new Error(JSON.stringify(r.problems))
  return r.spec
}

export const HOUR = 3_600_000

export const jobFor = (w: GitLabWorld, key: string, policy: Partial<Policy> = {}): Job => ({
  key,
  spec: specFor(w),
  connection: { url: w.sim.url, accessToken: Redacted.make(w.pat), allowHttp: true },
  policy: { refreshIntervalMs: HOUR, graceMs: 0, ...policy },
})

export const posts = (sim: Simulator) => sim.requests().filter((r) => r.method === "POST")

/**
 * Starts the control plane and the simulator once for a test file (stopped after it) and returns
 * accessors that fail clearly if used before they are ready.
 */
export const useClusterAndGitLab = (): { readonly kube: () => Kube; readonly gitlab: () => GitLabWorld } => {
  let kube: Kube | undefined
  let gitlab: GitLabWorld | undefined
  beforeAll(async () => {
    ;[kube, gitlab] = await Promise.all([startCluster(), startGitLab()])
  }, 40 * 60_000)
  afterAll(async () => {
    await Promise.all([kube?.stop(), gitlab?.sim.close()])
  })
  return {
    kube: () => {
      if (!kube) throw new Error("control plane not started")
      return kube
    },
    gitlab: () => {
      if (!gitlab) throw new Error("simulator not started")
      return gitlab
    },
  }
}
