/**
 * `/api/v4` deploy-token endpoints. Check order (lib/api/deploy_tokens.rb):
 * Grape parameter validation (400) → authentication (401, PAT scope 403) →
 * project/group lookup and visibility (404, moved 301/405) → role (403) →
 * record lookup (404 "Not found").
 */
import type { IncomingHttpHeaders } from "node:http"
import { type DeployTokenRecord, type DeployTokenScope, isDeployTokenScope, type Namespace, ROLE_LEVELS, tokenUsername } from "./model.ts"
import { paginate } from "./pagination.ts"
import {
  charLength,
  coerceBoolean,
  coerceCommaSeparatedArray,
  coerceInteger,
  coerceString,
  type Params,
  type ParamValue,
  parseRubyDateTime,
  rackParams,
  toSentence,
} from "./params.ts"
import {
  error,
  FORBIDDEN,
  GROUP_NOT_FOUND,
  INTERNAL_ERROR,
  json,
  message,
  PROJECT_NOT_FOUND,
  RECORD_NOT_FOUND,
  type Reply,
  ROUTE_NOT_FOUND,
  UNAUTHORIZED,
} from "./reply.ts"
import type { Caller, World } from "./world.ts"

export interface ApiRequest {
  /** Upper-case method; HEAD is routed like GET. */
  readonly method: string
  /** Raw (still percent-encoded) path segments after `/api/v4/`. */
  readonly segments: readonly string[]
  /** Raw path, e.g. `/api/v4/projects/group%2Fproject/deploy_tokens`. */
  readonly rawPath: string
  readonly query: URLSearchParams
  readonly headers: IncomingHttpHeaders
  readonly body: Buffer
  /** Base URL of the simulator (scheme://host:port), used for Link and Location. */
  readonly baseUrl: string
}

export type AuthOutcome = { readonly caller: Caller | null } | { readonly reply: Reply }

const OAUTH_REALM = 'Bearer realm="Protected by OAuth 2.0"'
const EXPIRED_DESCRIPTION = "Token is expired. You can either do re-authorization or token refresh."
const REVOKED_DESCRIPTION = "Token was revoked. You have to re-authorize from the user."
const INSUFFICIENT_DESCRIPTION = "The request requires higher privileges than provided by the access token."

const invalidToken = (description: string): Reply =>
  json(
    401,
    { error: "invalid_token", error_description: description },
    { "WWW-Authenticate": `${OAUTH_REALM}, error="invalid_token", error_description="${description}"` },
  )

const headerValue = (headers: IncomingHttpHeaders, name: string): string | undefined => {
  const value = headers[name]
  return Array.isArray(value) ? value[0] : value
}

/** The PAT a request carries: PRIVATE-TOKEN, `Authorization: Bearer`, or `private_token`/`access_token` query. */
export const requestToken = (req: Pick<ApiRequest, "headers" | "query">): string | undefined => {
  const privateToken = headerValue(req.headers, "private-token")
  if (privateToken !== undefined && privateToken !== "") return privateToken
  const authorization = headerValue(req.headers, "authorization")
  if (authorization !== undefined) {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(authorization)
    if (m?.[1] !== undefined) return m[1]
  }
  const fromQuery = req.query.get("private_token") ?? req.query.get("access_token")
  return fromQuery === null || fromQuery === "" ? undefined : fromQuery
}

/**
 * API authentication with a personal access token. No token → anonymous
 * (`caller: null`). Deploy tokens are not accepted here (row 6).
 */
export const authenticate = (world: World, req: Pick<ApiRequest, "headers" | "query" | "method">): AuthOutcome => {
  const value = requestToken(req)
  if (value === undefined) return { caller: null }
  const pat = world.pats.get(value)
  const user = pat === undefined ? undefined : world.userById(pat.userId)
  if (pat === undefined || user === undefined) return { reply: UNAUTHORIZED() }
  if (world.isPatExpired(pat)) return { reply: invalidToken(EXPIRED_DESCRIPTION) }
  if (pat.revoked) return { reply: invalidToken(REVOKED_DESCRIPTION) }
  const readOnly = req.method === "GET" || req.method === "HEAD"
  if (!(pat.scopes.includes("api") || (readOnly && pat.scopes.includes("read_api")))) {
    return {
      reply: json(
        403,
        { error: "insufficient_scope", error_description: INSUFFICIENT_DESCRIPTION, scope: "api read_api" },
        { "WWW-Authenticate": `${OAUTH_REALM}, error="insufficient_scope", error_description="${INSUFFICIENT_DESCRIPTION}", scope="api read_api"` },
      ),
    }
  }
  const admin = user.admin && (!user.adminMode || pat.scopes.includes("admin_mode"))
  return { caller: { user, pat, admin } }
}

// ------------------------------------------------------------------ params

const parseBody = (req: ApiRequest): { readonly params: Params } | { readonly reply: Reply } => {
  if (req.body.length === 0) return { params: {} }
  const contentType = (headerValue(req.headers, "content-type") ?? "").split(";")[0]?.trim().toLowerCase() ?? ""
  if (contentType === "application/json" || contentType.endsWith("+json")) {
    try {
      const parsed: unknown = JSON.parse(req.body.toString("utf8"))
      return { params: parsed !== null && typeof parsed === "object" && !Array.isArray(parsed) ? (parsed as Params) : {} }
    } catch {
      return { reply: error(400, "message body does not match declared format") }
    }
  }
  if (contentType === "application/x-www-form-urlencoded" || (contentType === "" && req.method === "POST")) {
    return { params: rackParams(new URLSearchParams(req.body.toString("utf8"))) }
  }
  return { params: {} }
}

/** Grape params: query string merged with the body (the body wins). */
const requestParams = (req: ApiRequest): { readonly params: Params } | { readonly reply: Reply } => {
  const body = parseBody(req)
  if ("reply" in body) return body
  return { params: { ...rackParams(req.query), ...body.params } }
}

/** Replies carry all of status, headers and body; the param/record shapes used here never do. */
const isReply = (value: unknown): value is Reply => typeof value === "object" && value !== null && "status" in value && "headers" in value && "body" in value

interface ListParams {
  readonly page: number | undefined
  readonly perPage: number | undefined
  readonly active: boolean | undefined
  readonly all: Params
}

const validateList = (params: Params): ListParams | Reply => {
  const errors: string[] = []
  const page = coerceInteger(params.page)
  if (!page.ok) errors.push("page is invalid")
  const perPage = coerceInteger(params.per_page)
  if (!perPage.ok) errors.push("per_page is invalid")
  const active = coerceBoolean(params.active)
  if (!active.ok) errors.push("active is invalid")
  if (errors.length > 0 || !page.ok || !perPage.ok || !active.ok) return error(400, errors.join(", "))
  return { page: page.value, perPage: perPage.value, active: active.value, all: params }
}

const validateTokenId = (raw: string): number | Reply => {
  const id = coerceInteger(raw)
  if (!id.ok || id.value === undefined) return error(400, "token_id is invalid")
  return id.value
}

interface CreateParams {
  /** null: JSON null was sent (NOT NULL column → 500 after model validation). */
  readonly name: string | null
  readonly scopes: readonly string[]
  readonly expiresAt: number | null
  readonly username: string | null
}

/** GitLab's `Forever.date`. */
const GITLAB_FOREVER_MS = Date.UTC(3000, 0, 1)

const validateCreate = (params: Params): CreateParams | Reply => {
  const errors: string[] = []
  let name: string | null = null
  if (!Object.hasOwn(params, "name")) errors.push("name is missing")
  else {
    const coerced = coerceString(params.name)
    if (!coerced.ok) errors.push("name is invalid")
    else name = coerced.value ?? null
  }

  let scopes: string[] = []
  if (!Object.hasOwn(params, "scopes")) errors.push("scopes is missing")
  else {
    const raw = params.scopes as ParamValue
    if (raw === null) errors.push("scopes does not have a valid value")
    else {
      const coerced = coerceCommaSeparatedArray(raw)
      if (coerced === null) errors.push("scopes is invalid")
      else if (!coerced.every(isDeployTokenScope)) errors.push("scopes does not have a valid value")
      else scopes = coerced
    }
  }

  let expiresAt: number | null = null
  const rawExpiry = params.expires_at
  if (rawExpiry !== undefined && rawExpiry !== null && rawExpiry !== "") {
    const parsed = typeof rawExpiry === "string" ? parseRubyDateTime(rawExpiry) : null
    if (parsed === null) errors.push("expires_at is invalid")
    // The model stores "no expiry" as Forever.date (3000-01-01) and reports that date as null.
    else expiresAt = parsed === GITLAB_FOREVER_MS ? null : parsed
  }

  let username: string | null = null
  if (Object.hasOwn(params, "username")) {
    const coerced = coerceString(params.username)
    if (!coerced.ok) errors.push("username is invalid")
    else if (coerced.value !== undefined && coerced.value !== null && coerced.value.trim() !== "") username = coerced.value
  }

  if (errors.length > 0) return error(400, errors.join(", "))
  return { name, scopes, expiresAt, username }
}

/** DeployToken model validations, in model order, joined with `to_sentence`. */
const modelErrors = (p: CreateParams): string[] => {
  const messages: string[] = []
  if (p.scopes.length === 0) messages.push("Scopes can't be blank")
  if (p.username !== null) {
    if (charLength(p.username) > 255) messages.push("Username is too long (maximum is 255 characters)")
    if (!/^[a-zA-Z0-9.+_-]+$/.test(p.username)) messages.push("Username can contain only letters, digits, '_', '-', '+', and '.'")
  }
  if (p.name !== null && charLength(p.name) > 255) messages.push("Name is too long (maximum is 255 characters)")
  return messages
}

// ------------------------------------------------------------------ entities

export const entity = (world: World, t: DeployTokenRecord, now: number): Record<string, unknown> => ({
  id: t.id,
  name: t.name,
  username: tokenUsername(t),
  expires_at: t.expiresAt === null ? null : new Date(t.expiresAt).toISOString(),
  scopes: [...t.scopes],
  revoked: t.revoked,
  expired: world.isExpiredFlag(t, now),
})

// ------------------------------------------------------------------ lookups

const decodeSegment = (segment: string): string | undefined => {
  try {
    return decodeURIComponent(segment)
  } catch {
    return undefined
  }
}

/** `find_project!`: integer id, or a full path (must contain `/`). */
const findProject = (world: World, req: ApiRequest, caller: Caller | null, rawId: string, restSegments: readonly string[]): Namespace | Reply => {
  const id = decodeSegment(rawId) ?? ""
  if (/^\d+$/.test(id)) {
    const project = world.findProject(Number(id))
    return project && world.canSee(caller, project) ? project : PROJECT_NOT_FOUND()
  }
  if (!id.includes("/")) return PROJECT_NOT_FOUND()
  const project = world.findProject(id)
  if (project) return world.canSee(caller, project) ? project : PROJECT_NOT_FOUND()
  const moved = world.findMovedProject(id)
  if (!moved || !world.canSee(caller, moved)) return PROJECT_NOT_FOUND()
  if (req.method !== "GET" && req.method !== "HEAD") return message(405, "Non GET methods are not allowed for moved projects")
  const rawQuery = req.query.toString()
  const rest = restSegments.join("/")
  const location = `/api/v4/projects/${moved.id}${rest === "" ? "" : `/${rest}`}${rawQuery === "" ? "" : `?${rawQuery}`}`
  return { status: 301, headers: { Location: location, "content-type": "text/plain" }, body: `This resource has been moved permanently to ${location}.` }
}

const findGroup = (world: World, caller: Caller | null, rawId: string): Namespace | Reply => {
  const id = decodeSegment(rawId) ?? ""
  const group = world.findGroup(id)
  return group && world.canSee(caller, group) ? group : GROUP_NOT_FOUND()
}

// ------------------------------------------------------------------ handlers

type Kind = "project" | "group"

const lookup = (world: World, req: ApiRequest, kind: Kind, caller: Caller | null, rawId: string): Namespace | Reply =>
  kind === "project" ? findProject(world, req, caller, rawId, req.segments.slice(2)) : findGroup(world, caller, rawId)

const listReply = (world: World, req: ApiRequest, list: ListParams, tokens: readonly DeployTokenRecord[], routeId: string | undefined): Reply => {
  const now = world.now()
  const filtered = list.active === true ? tokens.filter((t) => world.isActive(t, now)) : tokens
  const linkParams: Record<string, ParamValue | undefined> = { ...list.all }
  delete linkParams.page
  delete linkParams.per_page
  // Never echo credentials passed in the query string.
  delete linkParams.private_token
  delete linkParams.access_token
  if (list.active !== undefined) linkParams.active = list.active
  if (routeId !== undefined) linkParams.id = routeId
  const page = paginate(filtered, { page: list.page, perPage: list.perPage, linkParams, baseUrl: req.baseUrl + req.rawPath })
  return json(
    200,
    page.items.map((t) => entity(world, t, now)),
    page.headers,
  )
}

const instanceList = (world: World, req: ApiRequest): Reply => {
  const parsed = requestParams(req)
  if ("reply" in parsed) return parsed.reply
  const params = parsed.params
  const list = validateList(params)
  if (isReply(list)) return list
  const auth = authenticate(world, req)
  if ("reply" in auth) return auth.reply
  if (auth.caller === null) return UNAUTHORIZED()
  if (!auth.caller.admin) return FORBIDDEN()
  return listReply(world, req, list, world.allTokens(), undefined)
}

const namespaceList = (world: World, req: ApiRequest, kind: Kind, rawId: string): Reply => {
  const parsed = requestParams(req)
  if ("reply" in parsed) return parsed.reply
  const params = parsed.params
  const list = validateList(params)
  if (isReply(list)) return list
  const auth = authenticate(world, req)
  if ("reply" in auth) return auth.reply
  const ns = lookup(world, req, kind, auth.caller, rawId)
  if (isReply(ns)) return ns
  if (world.callerLevel(auth.caller, ns) < ROLE_LEVELS.maintainer) return FORBIDDEN()
  return listReply(world, req, list, world.tokensOf(kind, ns.id), decodeSegment(rawId))
}

const namespaceGet = (world: World, req: ApiRequest, kind: Kind, rawId: string, rawTokenId: string): Reply => {
  const parsed = requestParams(req)
  if ("reply" in parsed) return parsed.reply
  const tokenId = validateTokenId(rawTokenId)
  if (isReply(tokenId)) return tokenId
  const auth = authenticate(world, req)
  if ("reply" in auth) return auth.reply
  const ns = lookup(world, req, kind, auth.caller, rawId)
  if (isReply(ns)) return ns
  if (world.callerLevel(auth.caller, ns) < ROLE_LEVELS.maintainer) return FORBIDDEN()
  const token = world.ownedToken(kind, ns.id, tokenId)
  if (!token) return RECORD_NOT_FOUND()
  return json(200, entity(world, token, world.now()))
}

const writeLevel = (kind: Kind): number => (kind === "group" ? ROLE_LEVELS.owner : ROLE_LEVELS.maintainer)

const namespaceCreate = (world: World, req: ApiRequest, kind: Kind, rawId: string): Reply => {
  const parsed = requestParams(req)
  if ("reply" in parsed) return parsed.reply
  const params = parsed.params
  const create = validateCreate(params)
  if (isReply(create)) return create
  const auth = authenticate(world, req)
  if ("reply" in auth) return auth.reply
  const ns = lookup(world, req, kind, auth.caller, rawId)
  if (isReply(ns)) return ns
  if (world.callerLevel(auth.caller, ns) < writeLevel(kind)) return FORBIDDEN()
  const errors = modelErrors(create)
  if (errors.length > 0) return message(400, toSentence(errors))
  if (create.name === null) return INTERNAL_ERROR()
  const record = world.createDeployToken({
    type: kind,
    ownerId: ns.id,
    name: create.name,
    customUsername: create.username,
    scopes: create.scopes as DeployTokenScope[],
    expiresAt: create.expiresAt,
    createdBy: "api",
    creatorUserId: auth.caller?.user.id ?? null,
  })
  return json(201, { ...entity(world, record, world.now()), token: record.secret })
}

const namespaceDelete = (world: World, req: ApiRequest, kind: Kind, rawId: string, rawTokenId: string): Reply => {
  const parsed = requestParams(req)
  if ("reply" in parsed) return parsed.reply
  const tokenId = validateTokenId(rawTokenId)
  if (isReply(tokenId)) return tokenId
  const auth = authenticate(world, req)
  if ("reply" in auth) return auth.reply
  const ns = lookup(world, req, kind, auth.caller, rawId)
  if (isReply(ns)) return ns
  if (world.callerLevel(auth.caller, ns) < writeLevel(kind)) return FORBIDDEN()
  if (!world.ownedToken(kind, ns.id, tokenId)) return RECORD_NOT_FOUND()
  world.deleteDeployToken(tokenId)
  return { status: 204, headers: {}, body: "" }
}

/**
 * `GET /projects/:id` and `GET /groups/:id`: the namespace itself (id and path), as clients use to
 * resolve a path to its numeric id. A moved project's old path answers 301 to its id.
 */
const namespaceShow = (world: World, req: ApiRequest, kind: Kind, rawId: string): Reply => {
  const auth = authenticate(world, req)
  if ("reply" in auth) return auth.reply
  const ns = lookup(world, req, kind, auth.caller, rawId)
  if (isReply(ns)) return ns
  const name = ns.path.split("/").at(-1) ?? ns.path
  return json(
    200,
    kind === "project"
      ? { id: ns.id, name, path: name, path_with_namespace: ns.path, visibility: ns.visibility }
      : { id: ns.id, name, path: name, full_path: ns.path, visibility: ns.visibility },
  )
}

/** Routes a `/api/v4/...` request to a deploy-token handler; null when it is not one. */
export const routeDeployTokens = (world: World, req: ApiRequest): Reply | null => {
  const s = req.segments
  const method = req.method === "HEAD" ? "GET" : req.method
  if (s.length === 1 && s[0] === "deploy_tokens") return method === "GET" ? instanceList(world, req) : ROUTE_NOT_FOUND()
  const resource = s[0]
  if ((resource === "projects" || resource === "groups") && s.length === 2 && (s[1] ?? "") !== "" && method === "GET") {
    return namespaceShow(world, req, resource === "projects" ? "project" : "group", s[1] ?? "")
  }
  if ((resource !== "projects" && resource !== "groups") || s[2] !== "deploy_tokens") return null
  const kind: Kind = resource === "projects" ? "project" : "group"
  const rawId = s[1] ?? ""
  if (rawId === "") return null
  if (s.length === 3) {
    if (method === "GET") return namespaceList(world, req, kind, rawId)
    if (method === "POST") return namespaceCreate(world, req, kind, rawId)
    return ROUTE_NOT_FOUND()
  }
  if (s.length === 4 && s[3] !== "") {
    const rawTokenId = decodeSegment(s[3] ?? "") ?? ""
    if (method === "GET") return namespaceGet(world, req, kind, rawId, rawTokenId)
    if (method === "DELETE") return namespaceDelete(world, req, kind, rawId, rawTokenId)
    return ROUTE_NOT_FOUND()
  }
  return null
}
