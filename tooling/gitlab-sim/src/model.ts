/** Constants and record types shared by the simulator modules. */

/** `DeployToken::AVAILABLE_SCOPES`, in canonical (output) order. */
export const DEPLOY_TOKEN_SCOPES = [
  "read_repository",
  "read_registry",
  "write_registry",
  "read_package_registry",
  "write_package_registry",
  "read_virtual_registry",
  "write_virtual_registry",
] as const

export type DeployTokenScope = (typeof DEPLOY_TOKEN_SCOPES)[number]

export const isDeployTokenScope = (value: string): value is DeployTokenScope => (DEPLOY_TOKEN_SCOPES as readonly string[]).includes(value)

/** Sorts and de-duplicates scopes into AVAILABLE_SCOPES order. */
export const canonicalScopes = (scopes: Iterable<DeployTokenScope>): DeployTokenScope[] => {
  const wanted = new Set(scopes)
  return DEPLOY_TOKEN_SCOPES.filter((s) => wanted.has(s))
}

/** Personal-access-token scopes GitLab knows about (any string is accepted). */
export type PatScope =
  | "api"
  | "read_api"
  | "read_user"
  | "read_repository"
  | "write_repository"
  | "read_registry"
  | "write_registry"
  | "sudo"
  | "admin_mode"
  | "create_runner"
  | "manage_runner"
  | "k8s_proxy"
  | "self_rotate"
  | (string & {})

export const ROLE_LEVELS = {
  guest: 10,
  planner: 15,
  reporter: 20,
  developer: 30,
  maintainer: 40,
  owner: 50,
} as const

export type Role = keyof typeof ROLE_LEVELS

export const isRole = (value: unknown): value is Role => typeof value === "string" && Object.hasOwn(ROLE_LEVELS, value)

export type Visibility = "private" | "internal" | "public"

export interface User {
  readonly id: number
  readonly name: string
  /** Instance administrator. */
  admin: boolean
  /**
   * Admin Mode is enabled for this admin: only PATs that carry the
   * `admin_mode` scope act as admin. Without it the admin is a plain user.
   */
  adminMode: boolean
}

export interface AccessToken {
  readonly id: number
  readonly value: string
  readonly userId: number
  readonly scopes: readonly string[]
  /** Forced expiry flag (test hook). */
  expired: boolean
  /** Expiry instant in ms; the PAT is expired from this instant on. */
  expiresAt: number | null
  revoked: boolean
}

export type NamespaceKind = "project" | "group"

export interface Namespace {
  readonly kind: NamespaceKind
  readonly id: number
  /** Current full path, e.g. `group/sub/project`. */
  path: string
  visibility: Visibility
  /** Direct memberships, keyed by user name. */
  readonly members: Map<string, Role>
  /** Old full paths (renames/moves). Project API requests via these get 301/405. */
  readonly movedFrom: string[]
}

export type DeployTokenType = "project" | "group"

export interface DeployTokenRecord {
  readonly id: number
  readonly type: DeployTokenType
  readonly ownerId: number
  readonly name: string
  /** Custom username, or null for the default `gitlab+deploy-token-{id}`. */
  readonly customUsername: string | null
  readonly scopes: readonly DeployTokenScope[]
  /** Expiry instant in ms, null = never. */
  readonly expiresAt: number | null
  revoked: boolean
  readonly secret: string
  readonly createdBy: "api" | "foreign"
  readonly creatorUserId: number | null
  readonly createdAt: number
}

export const tokenUsername = (t: DeployTokenRecord): string => t.customUsername ?? `gitlab+deploy-token-${t.id}`
