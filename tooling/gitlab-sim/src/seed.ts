/** Seeding a simulator: the default world and the `--seed-file` JSON format. */
import type { FaultRule } from "./faults.ts"
import type { Namespace, User } from "./model.ts"
import type { Simulator } from "./server.ts"
import type { RateLimitOptions } from "./throttle.ts"
import type { AddAccessTokenInput, AddNamespaceInput, AddUserInput, ForeignTokenInput } from "./world.ts"

/** JSON accepted by `--seed-file` (and `applySeed`). Every key is optional. */
export interface SeedFile {
  readonly users?: readonly AddUserInput[]
  /** `user` is a user name. The first token's value is printed as `pat` on startup. */
  readonly accessTokens?: readonly (Omit<AddAccessTokenInput, "user"> & { readonly user: string })[]
  /** Created before projects, in order (parents first). */
  readonly groups?: readonly AddNamespaceInput[]
  readonly projects?: readonly AddNamespaceInput[]
  /** Pre-existing deploy tokens ("foreign": made outside the API). */
  readonly deployTokens?: readonly ForeignTokenInput[]
  readonly faults?: readonly FaultRule[]
  readonly rateLimit?: RateLimitOptions
  readonly clockOffsetMs?: number
}

const asArray = <T>(value: unknown, key: string): readonly T[] => {
  if (value === undefined) return []
  if (!Array.isArray(value)) throw new Error(`seed file: ${key} must be an array`)
  return value as T[]
}

/** Applies a seed; returns the values of the access tokens it created, in order. */
export const applySeed = (sim: Simulator, seed: SeedFile): string[] => {
  if (typeof seed !== "object" || seed === null || Array.isArray(seed)) throw new Error("seed file: must be a JSON object")
  for (const user of asArray<AddUserInput>(seed.users, "users")) sim.addUser(user)
  const pats = asArray<AddAccessTokenInput>(seed.accessTokens, "accessTokens").map((t) => sim.addAccessToken(t))
  for (const group of asArray<AddNamespaceInput>(seed.groups, "groups")) sim.addGroup(group)
  for (const project of asArray<AddNamespaceInput>(seed.projects, "projects")) sim.addProject(project)
  for (const token of asArray<ForeignTokenInput>(seed.deployTokens, "deployTokens")) sim.createForeignToken(token)
  for (const rule of asArray<FaultRule>(seed.faults, "faults")) sim.faults.add(rule)
  if (seed.rateLimit !== undefined) sim.setRateLimit(seed.rateLimit)
  if (seed.clockOffsetMs !== undefined) sim.setClockOffset(seed.clockOffsetMs)
  return pats
}

export interface DefaultWorld {
  readonly user: User
  /** PAT of `root` with the `api` scope. */
  readonly pat: string
  /** Group 7, path `group`, root is Owner. */
  readonly group: Namespace
  /** Project 42, path `group/project`, root is Maintainer (Owner via the group). */
  readonly project: Namespace
}

/**
 * The standalone server's default world: admin user `root` with a PAT,
 * group 7 `group` and project 42 `group/project`.
 */
export const seedDefaultWorld = (sim: Simulator, options: { readonly pat?: string | undefined } = {}): DefaultWorld => {
  const user = sim.addUser({ name: "root", admin: true })
  const pat = sim.addAccessToken({ user, scopes: ["api"], value: options.pat })
  const group = sim.addGroup({ id: 7, path: "group", visibility: "private", members: { root: "owner" } })
  const project = sim.addProject({ id: 42, path: "group/project", visibility: "private", members: { root: "maintainer" } })
  return { user, pat, group, project }
}
