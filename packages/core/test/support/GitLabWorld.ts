/**
 * The in-process GitLab simulator with one project and a Maintainer's access token, and the seed's
 * Job for it: what the adapters' lifecycle tests run core against.
 * Imported by path (`../../core/test/support/GitLabWorld.ts`): test support is not in the package.
 */
import { type Simulator, startSimulator } from "@gldt/gitlab-sim"
import { Redacted } from "effect"
import type { Policy } from "../../src/Decisions.ts"
import type { Job } from "../../src/Lifecycle.ts"
import { type DeployTokenSpec, validateSpec } from "../../src/Spec.ts"

export interface GitLabWorld {
  readonly sim: Simulator
  /** The Maintainer's personal access token (must never reach State, a sink's metadata or errors). */
  readonly pat: string
}

/** Group 7 `group`, project 42 `group/project` with `maint` as Maintainer, and maint's api token. */
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

export const HOUR = 3_600_000

/** A Job for `key` with the seed's spec: hourly refresh, no grace, unless `policy` says otherwise. */
export const jobFor = (w: GitLabWorld, key: string, options: { expiresAfter?: string; policy?: Partial<Policy> } = {}): Job => ({
  key,
  spec: specFor(w, options.expiresAfter),
  connection: { url: w.sim.url, accessToken: Redacted.make(w.pat), allowHttp: true },
  policy: { refreshIntervalMs: HOUR, graceMs: 0, ...options.policy },
})

/** The create calls the simulator saw. */
export const posts = (sim: Simulator) => sim.requests().filter((r) => r.method === "POST")

/** Live tokens made through the API (gldt's), from the simulator's ground truth. */
export const liveOurs = (sim: Simulator) => sim.tokens().filter((t) => t.active && t.createdBy === "api")
