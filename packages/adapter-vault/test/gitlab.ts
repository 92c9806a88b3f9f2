/** The in-process GitLab simulator with one project and a Maintainer's access token, and a Job for it. */
import type { Policy } from "@gldt/core/Decisions"
import type { Job } from "@gldt/core/Lifecycle"
import { type DeployTokenSpec, validateSpec } from "@gldt/core/Spec"
import { type Simulator, startSimulator } from "@gldt/gitlab-sim"
import { Redacted } from "effect"

export interface GitLabWorld {
  readonly sim: Simulator
  /** The Maintainer's personal access token (must never reach State, the sink's metadata or errors). */
  readonly pat: string
}

export const startGitLab = async (): Promise<GitLabWorld> => {
  const sim = await startSimulator()
  sim.addUser({ name: "maint" })
  sim.addGroup({ id: 7, path: "group" })
  sim.addProject({ id: 42, path: "group/project", members: { maint: "maintainer" } })
  return { sim, pat: sim.addAccessToken({ user: "maint", scopes: ["api"] }) }
}

/** The seed's generator spec; `expiresAfter` undefined leaves the expiry out, as most users do. */
export const specFor = (w: GitLabWorld, expiresAfter?: string): DeployTokenSpec => {
  const r = validateSpec(
    {
      url: w.sim.url,
      projectID: "group/project",
      name: "eso-managed",
      scopes: ["read_repository", "read_registry"],
      username: "eso",
      ...(expiresAfter === undefined ? {} : { expiresAfter }),
      auth: { token: { secretRef: { name: "gitlab-api-token", key: "token" } } },
    },
    { allowHttp: true },
  )
  if (r.spec === undefined) throw new Error(JSON.stringify(r.problems))
  return r.spec
}

export const jobFor = (w: GitLabWorld, key: string, options: { expiresAfter?: string; policy?: Partial<Policy> } = {}): Job => ({
  key,
  spec: specFor(w, options.expiresAfter),
  connection: { url: w.sim.url, accessToken: Redacted.make(w.pat), allowHttp: true },
  policy: { refreshIntervalMs: 3_600_000, graceMs: 0, ...options.policy },
})

/** Live tokens made through the API (gldt's), from the simulator's ground truth. */
export const liveOurs = (sim: Simulator) => sim.tokens().filter((t) => t.active && t.createdBy === "api")
