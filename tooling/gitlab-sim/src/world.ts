/**
 * In-memory state of the simulated GitLab instance: users, personal access
 * tokens, projects, groups, deploy tokens and the clock. Everything is a Map
 * lookup; nothing here does I/O.
 */
import { randomBytes } from "node:crypto"
import {
  type AccessToken,
  canonicalScopes,
  type DeployTokenRecord,
  type DeployTokenScope,
  type DeployTokenType,
  isDeployTokenScope,
  isRole,
  type Namespace,
  type NamespaceKind,
  type PatScope,
  ROLE_LEVELS,
  type Role,
  tokenUsername,
  type User,
  type Visibility,
} from "./model.ts"
import { parseRubyDateTime } from "./params.ts"

export interface AddUserInput {
  readonly name: string
  readonly admin?: boolean | undefined
  /** Admin Mode on: this admin's PATs act as admin only with the `admin_mode` scope. */
  readonly adminMode?: boolean | undefined
}

export type TimeInput = number | string | Date

export interface AddAccessTokenInput {
  readonly user: User | string
  readonly scopes: readonly PatScope[]
  readonly expired?: boolean | undefined
  readonly expiresAt?: TimeInput | null | undefined
  readonly revoked?: boolean | undefined
  /** Explicit value; default `glpat-` + 20 random characters. */
  readonly value?: string | undefined
}

export interface AddNamespaceInput {
  readonly id?: number | undefined
  /** Full path, e.g. `group/sub/project`. */
  readonly path: string
  readonly visibility?: Visibility | undefined
  /** Direct memberships: user name → role. */
  readonly members?: Readonly<Record<string, Role>> | undefined
  /** Former full paths of this project or group. */
  readonly movedFrom?: readonly string[] | undefined
}

/** Where a deploy token lives: a project or a group, by id or full path. */
export type TokenTarget = { readonly project: number | string } | { readonly group: number | string }

export interface ForeignTokenInput {
  readonly target: TokenTarget
  readonly name: string
  readonly username?: string | null | undefined
  readonly scopes: readonly DeployTokenScope[]
  readonly expiresAt?: TimeInput | null | undefined
  readonly revoked?: boolean | undefined
  /** Explicit secret (e.g. a legacy un-prefixed token); default `gldt-…`. */
  readonly token?: string | undefined
}

/** Ground-truth view of one deploy token, as returned by `tokens()`. */
export interface SimDeployToken {
  readonly id: number
  readonly type: DeployTokenType
  readonly ownerId: number
  readonly ownerPath: string
  readonly name: string
  /** Effective username (custom, or `gitlab+deploy-token-{id}`). */
  readonly username: string
  /** The custom username, or null when the default applies. */
  readonly customUsername: string | null
  readonly scopes: readonly DeployTokenScope[]
  /** ISO 8601 (UTC, ms) or null for "never". */
  readonly expiresAt: string | null
  readonly revoked: boolean
  /** `!revoked && (expiresAt == null || expiresAt >= now)`: would authenticate now. */
  readonly active: boolean
  /** The API's `expired` flag (`expires_at < start of today, UTC`). */
  readonly expired: boolean
  readonly createdBy: "api" | "foreign"
  /** Name of the user whose PAT created it via the API (null for foreign tokens). */
  readonly createdByUser: string | null
  readonly createdAt: string
  /** The secret. */
  readonly token: string
  /** Set only in `tokens({ includeDeleted: true })` for deleted tokens. */
  readonly deletedAt?: string
}

export interface Caller {
  readonly user: User
  readonly pat: AccessToken
  /** Effective instance admin (admin, and Admin Mode satisfied). */
  readonly admin: boolean
}

export interface RegistryGrant {
  readonly tokenId: number
  readonly expiresAt: number
}

const DAY_MS = 86_400_000
const MAX_DELETED_KEPT = 100_000
const MAX_PACKAGE_BYTES = 64 * 1024 * 1024

const randomSecret = (prefix: string): string => prefix + randomBytes(15).toString("base64url")

export const toEpochMs = (value: TimeInput): number => {
  if (typeof value === "number") return value
  if (value instanceof Date) return value.getTime()
  const parsed = parseRubyDateTime(value)
  if (parsed === null) throw new Error(`gitlab-sim: cannot parse time ${JSON.stringify(value)}`)
  return parsed
}

const normalisePath = (path: string): string => {
  const trimmed = path.trim().replace(/^\/+|\/+$/g, "")
  if (trimmed === "" || trimmed.split("/").some((s) => s === "" || s === "." || s === "..")) {
    throw new Error(`gitlab-sim: invalid path ${JSON.stringify(path)}`)
  }
  return trimmed
}

const levelOf = (role: Role | undefined): number => (role === undefined ? 0 : ROLE_LEVELS[role])

export const startOfUtcDay = (ms: number): number => Math.floor(ms / DAY_MS) * DAY_MS

export class World {
  private readonly baseNow: () => number
  private clockOffset = 0

  readonly users = new Map<string, User>()
  private readonly usersById = new Map<number, User>()
  readonly pats = new Map<string, AccessToken>()
  readonly projects = new Map<number, Namespace>()
  readonly groups = new Map<number, Namespace>()
  private readonly projectsByPath = new Map<string, Namespace>()
  private readonly projectRedirects = new Map<string, Namespace>()
  private readonly groupsByPath = new Map<string, Namespace>()

  private readonly tokensById = new Map<number, DeployTokenRecord>()
  private readonly tokensBySecret = new Map<string, DeployTokenRecord>()
  private readonly tokensByOwner = new Map<string, Map<number, DeployTokenRecord>>()
  private readonly deleted: { readonly record: DeployTokenRecord; readonly deletedAt: number }[] = []

  private readonly registryGrants = new Map<string, RegistryGrant>()
  private readonly packageFiles = new Map<string, Buffer>()
  private packageBytes = 0

  private nextUserId = 1
  private nextPatId = 1
  private nextProjectId = 1
  private nextGroupId = 1
  private nextTokenId = 1

  constructor(now: () => number = Date.now) {
    this.baseNow = now
  }

  // ---------------------------------------------------------------- clock

  /** Simulated now, in ms: the injected clock plus the offset. */
  now(): number {
    return this.baseNow() + this.clockOffset
  }

  get offsetMs(): number {
    return this.clockOffset
  }

  setClockOffset(ms: number): void {
    this.clockOffset = ms
  }

  advanceClock(ms: number): void {
    this.clockOffset += ms
  }

  // ---------------------------------------------------------------- users & PATs

  addUser(input: AddUserInput): User {
    const name = input.name.trim()
    if (name === "") throw new Error("gitlab-sim: user name must not be empty")
    if (this.users.has(name)) throw new Error(`gitlab-sim: user ${name} already exists`)
    const user: User = { id: this.nextUserId++, name, admin: input.admin === true, adminMode: input.adminMode === true }
    this.users.set(name, user)
    this.usersById.set(user.id, user)
    return user
  }

  userById(id: number): User | undefined {
    return this.usersById.get(id)
  }

  private resolveUser(user: User | string): User {
    const name = typeof user === "string" ? user : user.name
    const found = this.users.get(name)
    if (!found) throw new Error(`gitlab-sim: unknown user ${name}`)
    return found
  }

  addAccessToken(input: AddAccessTokenInput): string {
    const user = this.resolveUser(input.user)
    const value = input.value ?? randomSecret("glpat-")
    if (value === "") throw new Error("gitlab-sim: access token value must not be empty")
    if (this.pats.has(value) || this.tokensBySecret.has(value)) throw new Error("gitlab-sim: access token value already in use")
    const pat: AccessToken = {
      id: this.nextPatId++,
      value,
      userId: user.id,
      scopes: [...input.scopes],
      expired: input.expired === true,
      expiresAt: input.expiresAt === undefined || input.expiresAt === null ? null : toEpochMs(input.expiresAt),
      revoked: input.revoked === true,
    }
    this.pats.set(value, pat)
    return value
  }

  revokeAccessToken(value: string): void {
    const pat = this.pats.get(value)
    if (!pat) throw new Error("gitlab-sim: unknown access token")
    pat.revoked = true
  }

  isPatExpired(pat: AccessToken): boolean {
    return pat.expired || (pat.expiresAt !== null && this.now() >= pat.expiresAt)
  }

  // ---------------------------------------------------------------- projects & groups

  private addNamespace(kind: NamespaceKind, input: AddNamespaceInput): Namespace {
    const path = normalisePath(input.path)
    if (kind === "project" && !path.includes("/")) {
      throw new Error(`gitlab-sim: project path must be namespace/project, got ${JSON.stringify(path)}`)
    }
    const byId = kind === "project" ? this.projects : this.groups
    const byPath = kind === "project" ? this.projectsByPath : this.groupsByPath
    let id = input.id
    if (id === undefined) {
      id = kind === "project" ? this.nextProjectId : this.nextGroupId
      while (byId.has(id)) id++
    }
    if (!Number.isSafeInteger(id) || id < 1) throw new Error(`gitlab-sim: invalid ${kind} id ${id}`)
    if (byId.has(id)) throw new Error(`gitlab-sim: ${kind} id ${id} already exists`)
    const key = path.toLowerCase()
    if (byPath.has(key)) throw new Error(`gitlab-sim: ${kind} path ${path} already exists`)
    const members = new Map<string, Role>()
    for (const [userName, role] of Object.entries(input.members ?? {})) {
      if (!isRole(role)) throw new Error(`gitlab-sim: invalid role ${JSON.stringify(role)} for ${userName}`)
      members.set(userName, role)
    }
    const ns: Namespace = {
      kind,
      id,
      path,
      visibility: input.visibility ?? "private",
      members,
      movedFrom: (input.movedFrom ?? []).map(normalisePath),
    }
    byId.set(id, ns)
    byPath.set(key, ns)
    if (kind === "project") {
      this.nextProjectId = Math.max(this.nextProjectId, id + 1)
      for (const old of ns.movedFrom) this.projectRedirects.set(old.toLowerCase(), ns)
    } else {
      this.nextGroupId = Math.max(this.nextGroupId, id + 1)
    }
    return ns
  }

  addProject(input: AddNamespaceInput): Namespace {
    return this.addNamespace("project", input)
  }

  addGroup(input: AddNamespaceInput): Namespace {
    return this.addNamespace("group", input)
  }

  /** Renames/moves a project: the old path then answers 301 (GET) / 405 (writes). */
  moveProject(ref: number | string, newPath: string): Namespace {
    const project = this.requireNamespace("project", ref)
    const path = normalisePath(newPath)
    if (!path.includes("/")) throw new Error("gitlab-sim: project path must be namespace/project")
    const key = path.toLowerCase()
    const clash = this.projectsByPath.get(key)
    if (clash && clash !== project) throw new Error(`gitlab-sim: project path ${path} already exists`)
    this.projectsByPath.delete(project.path.toLowerCase())
    project.movedFrom.push(project.path)
    this.projectRedirects.set(project.path.toLowerCase(), project)
    this.projectRedirects.delete(key)
    project.path = path
    this.projectsByPath.set(key, project)
    return project
  }

  /** Sets (or with `null` removes) a direct membership. */
  setMember(target: TokenTarget, userName: string, role: Role | null): void {
    const ns = this.requireTarget(target)
    if (role === null) ns.members.delete(userName)
    else if (isRole(role)) ns.members.set(userName, role)
    else throw new Error(`gitlab-sim: invalid role ${JSON.stringify(role)}`)
  }

  findProject(ref: number | string): Namespace | undefined {
    if (typeof ref === "number") return this.projects.get(ref)
    if (/^\d+$/.test(ref)) return this.projects.get(Number(ref))
    return this.projectsByPath.get(ref.toLowerCase())
  }

  /** A project that used to live at `path` (after a rename or move). */
  findMovedProject(path: string): Namespace | undefined {
    return this.projectRedirects.get(path.toLowerCase())
  }

  findGroup(ref: number | string): Namespace | undefined {
    if (typeof ref === "number") return this.groups.get(ref)
    if (/^\d+$/.test(ref)) return this.groups.get(Number(ref))
    return this.groupsByPath.get(ref.toLowerCase())
  }

  private requireNamespace(kind: NamespaceKind, ref: number | string): Namespace {
    const ns = kind === "project" ? this.findProject(ref) : this.findGroup(ref)
    if (!ns) throw new Error(`gitlab-sim: unknown ${kind} ${JSON.stringify(ref)}`)
    return ns
  }

  requireTarget(target: TokenTarget): Namespace {
    return "project" in target ? this.requireNamespace("project", target.project) : this.requireNamespace("group", target.group)
  }

  /** Highest role of `user` on `ns`, counting memberships inherited from ancestor groups. */
  roleLevel(user: User, ns: Namespace): number {
    let level = levelOf(ns.members.get(user.name))
    const segments = ns.path.split("/")
    for (let i = segments.length - 1; i >= 1; i--) {
      const group = this.groupsByPath.get(segments.slice(0, i).join("/").toLowerCase())
      if (group) level = Math.max(level, levelOf(group.members.get(user.name)))
    }
    return level
  }

  /** Effective role level of a caller; an effective admin counts as Owner everywhere. */
  callerLevel(caller: Caller | null, ns: Namespace): number {
    if (caller === null) return 0
    if (caller.admin) return ROLE_LEVELS.owner
    return this.roleLevel(caller.user, ns)
  }

  private hasDescendantMembership(user: User, group: Namespace): boolean {
    const prefix = `${group.path.toLowerCase()}/`
    for (const collection of [this.groups, this.projects]) {
      for (const ns of collection.values()) {
        if (ns.path.toLowerCase().startsWith(prefix) && levelOf(ns.members.get(user.name)) > 0) return true
      }
    }
    return false
  }

  canSee(caller: Caller | null, ns: Namespace): boolean {
    if (ns.visibility === "public") return true
    if (caller === null) return false
    if (ns.visibility === "internal" || caller.admin) return true
    if (this.roleLevel(caller.user, ns) > 0) return true
    return ns.kind === "group" && this.hasDescendantMembership(caller.user, ns)
  }

  // ---------------------------------------------------------------- deploy tokens

  private ownerKey(type: DeployTokenType, ownerId: number): string {
    return `${type}:${ownerId}`
  }

  createDeployToken(input: {
    readonly type: DeployTokenType
    readonly ownerId: number
    readonly name: string
    readonly customUsername: string | null
    readonly scopes: readonly DeployTokenScope[]
    readonly expiresAt: number | null
    readonly revoked?: boolean
    readonly secret?: string | undefined
    readonly createdBy: "api" | "foreign"
    readonly creatorUserId: number | null
  }): DeployTokenRecord {
    let secret = input.secret
    if (secret === undefined) {
      do secret = randomSecret("gldt-")
      while (this.tokensBySecret.has(secret) || this.pats.has(secret))
    } else if (secret === "" || this.tokensBySecret.has(secret) || this.pats.has(secret)) {
      throw new Error("gitlab-sim: deploy token secret empty or already in use")
    }
    const record: DeployTokenRecord = {
      id: this.nextTokenId++,
      type: input.type,
      ownerId: input.ownerId,
      name: input.name,
      customUsername: input.customUsername,
      scopes: canonicalScopes(input.scopes),
      expiresAt: input.expiresAt,
      revoked: input.revoked === true,
      secret,
      createdBy: input.createdBy,
      creatorUserId: input.creatorUserId,
      createdAt: this.now(),
    }
    this.tokensById.set(record.id, record)
    this.tokensBySecret.set(secret, record)
    const key = this.ownerKey(record.type, record.ownerId)
    let owned = this.tokensByOwner.get(key)
    if (!owned) {
      owned = new Map()
      this.tokensByOwner.set(key, owned)
    }
    owned.set(record.id, record)
    return record
  }

  /** Deploy tokens "made by someone else" (UI, another tool): same rules, no API call. */
  createForeignToken(input: ForeignTokenInput): { readonly id: number; readonly token: string } {
    const ns = this.requireTarget(input.target)
    for (const scope of input.scopes) {
      if (!isDeployTokenScope(scope)) throw new Error(`gitlab-sim: unknown deploy token scope ${JSON.stringify(scope)}`)
    }
    if (input.scopes.length === 0) throw new Error("gitlab-sim: Scopes can't be blank")
    const username = input.username === undefined || input.username === null || input.username.trim() === "" ? null : input.username
    if (username !== null && !/^[a-zA-Z0-9.+_-]+$/.test(username)) {
      throw new Error("gitlab-sim: Username can contain only letters, digits, '_', '-', '+', and '.'")
    }
    const record = this.createDeployToken({
      type: ns.kind,
      ownerId: ns.id,
      name: input.name,
      customUsername: username,
      scopes: input.scopes,
      expiresAt: input.expiresAt === undefined || input.expiresAt === null ? null : toEpochMs(input.expiresAt),
      revoked: input.revoked === true,
      secret: input.token,
      createdBy: "foreign",
      creatorUserId: null,
    })
    return { id: record.id, token: record.secret }
  }

  deployToken(id: number): DeployTokenRecord | undefined {
    return this.tokensById.get(id)
  }

  /** The token only if it belongs to this owner. */
  ownedToken(type: DeployTokenType, ownerId: number, id: number): DeployTokenRecord | undefined {
    return this.tokensByOwner.get(this.ownerKey(type, ownerId))?.get(id)
  }

  /** Tokens of one owner, ascending id. */
  tokensOf(type: DeployTokenType, ownerId: number): readonly DeployTokenRecord[] {
    const owned = this.tokensByOwner.get(this.ownerKey(type, ownerId))
    return owned ? [...owned.values()] : []
  }

  /** All deploy tokens, ascending id (ids only grow, so insertion order is id order). */
  allTokens(): readonly DeployTokenRecord[] {
    return [...this.tokensById.values()]
  }

  deleteDeployToken(id: number): boolean {
    const record = this.tokensById.get(id)
    if (!record) return false
    this.tokensById.delete(id)
    this.tokensBySecret.delete(record.secret)
    this.tokensByOwner.get(this.ownerKey(record.type, record.ownerId))?.delete(id)
    this.deleted.push({ record, deletedAt: this.now() })
    if (this.deleted.length > MAX_DELETED_KEPT) this.deleted.splice(0, this.deleted.length - MAX_DELETED_KEPT)
    return true
  }

  /** Stand-in for the UI's Revoke button: keeps the row, sets `revoked`. */
  revokeDeployToken(id: number): DeployTokenRecord {
    const record = this.tokensById.get(id)
    if (!record) throw new Error(`gitlab-sim: unknown deploy token ${id}`)
    record.revoked = true
    return record
  }

  /** `DeployToken.active`: not revoked and `expires_at >= NOW()`. */
  isActive(record: DeployTokenRecord, now = this.now()): boolean {
    return !record.revoked && (record.expiresAt === null || record.expiresAt >= now)
  }

  /** The entity's `expired`: `expires_at < Date.today` (UTC). */
  isExpiredFlag(record: DeployTokenRecord, now = this.now()): boolean {
    return record.expiresAt !== null && record.expiresAt < startOfUtcDay(now)
  }

  /** `DeployToken.active.find_by_token(secret)`. */
  activeTokenBySecret(secret: string): DeployTokenRecord | undefined {
    const record = this.tokensBySecret.get(secret)
    return record && this.isActive(record) ? record : undefined
  }

  /** Any deploy token (active or not) with this secret. */
  tokenBySecret(secret: string): DeployTokenRecord | undefined {
    return this.tokensBySecret.get(secret)
  }

  /** Project tokens reach their project; group tokens every project below the group. */
  tokenCanAccessProject(record: DeployTokenRecord, project: Namespace): boolean {
    if (record.type === "project") return record.ownerId === project.id
    const group = this.groups.get(record.ownerId)
    return group !== undefined && project.path.toLowerCase().startsWith(`${group.path.toLowerCase()}/`)
  }

  ownerPath(record: DeployTokenRecord): string {
    const owner = record.type === "project" ? this.projects.get(record.ownerId) : this.groups.get(record.ownerId)
    return owner?.path ?? ""
  }

  snapshot(record: DeployTokenRecord, deletedAt?: number): SimDeployToken {
    const now = this.now()
    const creator = record.creatorUserId === null ? undefined : this.usersById.get(record.creatorUserId)
    const base: SimDeployToken = {
      id: record.id,
      type: record.type,
      ownerId: record.ownerId,
      ownerPath: this.ownerPath(record),
      name: record.name,
      username: tokenUsername(record),
      customUsername: record.customUsername,
      scopes: [...record.scopes],
      expiresAt: record.expiresAt === null ? null : new Date(record.expiresAt).toISOString(),
      revoked: record.revoked,
      active: deletedAt === undefined && this.isActive(record, now),
      expired: this.isExpiredFlag(record, now),
      createdBy: record.createdBy,
      createdByUser: creator?.name ?? null,
      createdAt: new Date(record.createdAt).toISOString(),
      token: record.secret,
    }
    return deletedAt === undefined ? base : { ...base, deletedAt: new Date(deletedAt).toISOString() }
  }

  /** Ground truth: live tokens (ascending id), optionally followed by deleted ones. */
  tokens(options: { readonly includeDeleted?: boolean | undefined } = {}): SimDeployToken[] {
    const live = this.allTokens().map((r) => this.snapshot(r))
    if (options.includeDeleted !== true) return live
    return [...live, ...this.deleted.map((d) => this.snapshot(d.record, d.deletedAt))]
  }

  // ---------------------------------------------------------------- registry & packages

  issueRegistryToken(tokenId: number, ttlMs: number): { readonly jwt: string; readonly expiresAt: number } {
    const now = this.now()
    if (this.registryGrants.size > 10_000) {
      for (const [jwt, grant] of this.registryGrants) if (grant.expiresAt <= now) this.registryGrants.delete(jwt)
    }
    const header = Buffer.from(JSON.stringify({ alg: "none", typ: "JWT" })).toString("base64url")
    const payload = Buffer.from(
      JSON.stringify({
        iss: "gitlab-sim",
        aud: "container_registry",
        jti: randomBytes(8).toString("hex"),
        iat: Math.floor(now / 1000),
        exp: Math.floor((now + ttlMs) / 1000),
      }),
    ).toString("base64url")
    const jwt = `${header}.${payload}.${randomBytes(16).toString("base64url")}`
    const expiresAt = now + ttlMs
    this.registryGrants.set(jwt, { tokenId, expiresAt })
    return { jwt, expiresAt }
  }

  /** Registry JWTs stay valid until they expire, even if the deploy token is gone. */
  registryGrant(jwt: string): RegistryGrant | undefined {
    const grant = this.registryGrants.get(jwt)
    return grant && grant.expiresAt > this.now() ? grant : undefined
  }

  storePackageFile(key: string, content: Buffer): boolean {
    const previous = this.packageFiles.get(key)?.length ?? 0
    if (this.packageBytes - previous + content.length > MAX_PACKAGE_BYTES) return false
    this.packageFiles.set(key, content)
    this.packageBytes += content.length - previous
    return true
  }

  packageFile(key: string): Buffer | undefined {
    return this.packageFiles.get(key)
  }
}
