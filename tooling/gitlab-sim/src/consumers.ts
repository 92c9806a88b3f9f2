/**
 * Endpoints where a deploy token is *used* (rows 42–44): just enough of Git
 * smart HTTP, the registry token service and the generic package API to
 * prove whether a deploy token authenticates.
 *
 * - `GET /<project path>.git/info/refs?service=git-upload-pack` (also without
 *   `.git`): Basic auth, username must match the token exactly, needs
 *   `read_repository` and access to the project.
 * - `GET /jwt/auth?service=container_registry[&scope=repository:<path>:pull,push]`:
 *   Basic auth, username must match; returns a registry JWT.
 * - `GET /v2/`: registry ping with `Authorization: Bearer <jwt>`; JWTs stay
 *   valid until they expire even after the deploy token is deleted.
 * - `PUT|GET /api/v4/projects/:id/packages/generic/:name/:version/:file`:
 *   `Deploy-Token` header, Bearer, or Basic (username NOT checked, row 44).
 */
import type { IncomingHttpHeaders } from "node:http"
import { authenticate } from "./api.ts"
import type { DeployTokenRecord, Namespace } from "./model.ts"
import { ROLE_LEVELS, tokenUsername } from "./model.ts"
import { FORBIDDEN, json, message, PROJECT_NOT_FOUND, type Reply, text, UNAUTHORIZED } from "./reply.ts"
import type { World } from "./world.ts"

export interface ConsumerRequest {
  readonly method: string
  readonly rawPath: string
  readonly query: URLSearchParams
  readonly headers: IncomingHttpHeaders
  readonly body: Buffer
  readonly baseUrl: string
  /** Lifetime of registry JWTs, ms (GitLab default 5 minutes). */
  readonly registryTokenTtlMs: number
}

const header = (headers: IncomingHttpHeaders, name: string): string | undefined => {
  const value = headers[name]
  return Array.isArray(value) ? value[0] : value
}

export const basicCredentials = (headers: IncomingHttpHeaders): { readonly username: string; readonly password: string } | undefined => {
  const authorization = header(headers, "authorization")
  const m = authorization === undefined ? null : /^Basic\s+(\S+)\s*$/i.exec(authorization)
  if (!m?.[1]) return undefined
  const decoded = Buffer.from(m[1], "base64").toString("utf8")
  const colon = decoded.indexOf(":")
  if (colon < 0) return undefined
  return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) }
}

const bearer = (headers: IncomingHttpHeaders): string | undefined => {
  const authorization = header(headers, "authorization")
  const m = authorization === undefined ? null : /^Bearer\s+(\S+)\s*$/i.exec(authorization)
  return m?.[1]
}

/**
 * `Gitlab::Auth` deploy-token check: `DeployToken.active.find_by_token(password)`
 * then `login == token.username` (exact, case-sensitive).
 */
const deployTokenLogin = (world: World, username: string, password: string): DeployTokenRecord | undefined => {
  const token = world.activeTokenBySecret(password)
  return token !== undefined && tokenUsername(token) === username ? token : undefined
}

// ------------------------------------------------------------------ git

const GIT_DENIED =
  "HTTP Basic: Access denied. If a password was provided for Git authentication, the password was incorrect or you're required to use a token instead of a password.\n"

const gitNotFound = (): Reply => text(404, "The project you were looking for could not be found or you don't have permission to view it.\n")

const gitUnauthorized = (): Reply => text(401, GIT_DENIED, { "WWW-Authenticate": 'Basic realm="GitLab"' })

const pktLine = (line: string): string => (line.length + 4).toString(16).padStart(4, "0") + line

const refAdvertisement = (service: string): string =>
  pktLine(`# service=${service}\n`) + "0000" + pktLine(`${"0".repeat(40)} capabilities^{}\0agent=gitlab-sim\n`) + "0000"

/** `/<path>(.git)/info/refs` → project path, or undefined when not a git route. */
export const gitProjectPath = (rawPath: string): string | undefined => {
  const m = /^\/(.+?)(?:\.git)?\/info\/refs$/.exec(rawPath)
  if (!m?.[1]) return undefined
  try {
    return decodeURIComponent(m[1])
  } catch {
    return undefined
  }
}

export const gitInfoRefs = (world: World, req: ConsumerRequest, projectPath: string): Reply => {
  if (req.method !== "GET" && req.method !== "HEAD") return text(404, "Not Found\n")
  const service = req.query.get("service") ?? "git-upload-pack"
  const project = world.findProject(projectPath)
  const credentials = basicCredentials(req.headers)
  if (credentials === undefined) {
    if (project?.visibility === "public" && service === "git-upload-pack") {
      return text(200, refAdvertisement(service), {}, `application/x-${service}-advertisement`)
    }
    return gitUnauthorized()
  }
  const token = deployTokenLogin(world, credentials.username, credentials.password)
  if (token !== undefined) {
    if (project === undefined || !world.tokenCanAccessProject(token, project)) return gitNotFound()
    if (service !== "git-upload-pack") return text(403, "You are not allowed to upload code.\n")
    if (!token.scopes.includes("read_repository")) return text(403, "You are not allowed to download code from this project.\n")
    return text(200, refAdvertisement(service), {}, `application/x-${service}-advertisement`)
  }
  // Otherwise a personal access token as the Basic password (username not checked on this path).
  const pat = world.pats.get(credentials.password)
  const user = pat === undefined ? undefined : world.userById(pat.userId)
  if (pat === undefined || user === undefined || pat.revoked || world.isPatExpired(pat)) return gitUnauthorized()
  if (!pat.scopes.some((s) => s === "api" || s === "read_repository" || s === "write_repository")) return gitUnauthorized()
  const caller = { user, pat, admin: user.admin && (!user.adminMode || pat.scopes.includes("admin_mode")) }
  if (project === undefined || !world.canSee(caller, project)) return gitNotFound()
  const level = world.callerLevel(caller, project)
  const allowed = service === "git-upload-pack" ? level >= ROLE_LEVELS.reporter || project.visibility !== "private" : level >= ROLE_LEVELS.developer
  if (!allowed) return text(403, "You are not allowed to download code from this project.\n")
  return text(200, refAdvertisement(service), {}, `application/x-${service}-advertisement`)
}

// ------------------------------------------------------------------ registry

const registryError = (status: number, code: string, msg: string, headers: Record<string, string> = {}): Reply =>
  json(status, { errors: [{ code, message: msg }] }, headers)

/** `GET /jwt/auth`: registry token service. */
export const jwtAuth = (world: World, req: ConsumerRequest): Reply => {
  const credentials = basicCredentials(req.headers)
  if (credentials === undefined) return registryError(401, "UNAUTHORIZED", "HTTP Basic: Access denied")
  const token = deployTokenLogin(world, credentials.username, credentials.password)
  if (token === undefined) return registryError(401, "UNAUTHORIZED", "HTTP Basic: Access denied")
  for (const scope of req.query.getAll("scope")) {
    for (const part of scope.split(" ")) {
      const m = /^repository:([^:]+):(.+)$/.exec(part)
      if (!m?.[1] || !m[2]) continue
      const imagePath = m[1]
      const actions = m[2].split(",")
      // The image lives in the project whose path is the longest prefix of the repository name.
      let project: Namespace | undefined
      const segments = imagePath.split("/")
      for (let i = segments.length; i >= 2 && project === undefined; i--) project = world.findProject(segments.slice(0, i).join("/"))
      if (project === undefined || !world.tokenCanAccessProject(token, project)) return registryError(403, "DENIED", "access forbidden")
      const canPull = token.scopes.includes("read_registry")
      const canPush = canPull && token.scopes.includes("write_registry")
      for (const action of actions) {
        if (action === "pull" && !canPull) return registryError(403, "DENIED", "access forbidden")
        if ((action === "push" || action === "*") && !canPush) return registryError(403, "DENIED", "access forbidden")
      }
    }
  }
  const issued = world.issueRegistryToken(token.id, req.registryTokenTtlMs)
  return json(200, {
    token: issued.jwt,
    access_token: issued.jwt,
    expires_in: Math.round(req.registryTokenTtlMs / 1000),
    issued_at: new Date(world.now()).toISOString(),
  })
}

/** `GET /v2/`: registry API version check with a previously issued JWT. */
export const registryPing = (world: World, req: ConsumerRequest): Reply => {
  const jwt = bearer(req.headers)
  const challenge = {
    "WWW-Authenticate": `Bearer realm="${req.baseUrl}/jwt/auth",service="container_registry"`,
    "Docker-Distribution-Api-Version": "registry/2.0",
  }
  if (jwt === undefined || world.registryGrant(jwt) === undefined) {
    return registryError(401, "UNAUTHORIZED", "authentication required", challenge)
  }
  return json(200, {}, { "Docker-Distribution-Api-Version": "registry/2.0" })
}

// ------------------------------------------------------------------ generic packages

/**
 * `/api/v4/projects/:id/packages/generic/:name/:version/:file` (segments after
 * `api/v4`). Deploy tokens are accepted via `Deploy-Token`, Bearer, or Basic
 * where only the password is used (row 44). PATs via PRIVATE-TOKEN as usual.
 */
export const genericPackage = (world: World, req: ConsumerRequest, segments: readonly string[]): Reply | null => {
  if (segments.length !== 7 || segments[0] !== "projects" || segments[2] !== "packages" || segments[3] !== "generic") return null
  const method = req.method === "HEAD" ? "GET" : req.method
  if (method !== "GET" && method !== "PUT") return null
  let rawId: string
  try {
    rawId = decodeURIComponent(segments[1] ?? "")
  } catch {
    return PROJECT_NOT_FOUND()
  }
  const key = `${segments.slice(4).join("/")}`
  const project = /^\d+$/.test(rawId) ? world.findProject(Number(rawId)) : rawId.includes("/") ? world.findProject(rawId) : undefined

  const secret = header(req.headers, "deploy-token") ?? bearer(req.headers) ?? basicCredentials(req.headers)?.password
  const anyDeployToken = secret === undefined ? undefined : world.tokenBySecret(secret)
  let allowed: boolean
  if (anyDeployToken !== undefined) {
    if (!world.isActive(anyDeployToken)) return UNAUTHORIZED()
    if (project === undefined || !world.tokenCanAccessProject(anyDeployToken, project)) return PROJECT_NOT_FOUND()
    const scope = method === "PUT" ? "write_package_registry" : "read_package_registry"
    allowed = anyDeployToken.scopes.includes(scope) || (method === "GET" && anyDeployToken.scopes.includes("write_package_registry"))
  } else {
    const auth = authenticate(world, { headers: req.headers, query: req.query, method })
    if ("reply" in auth) return auth.reply
    if (auth.caller === null && secret !== undefined) return UNAUTHORIZED()
    if (project === undefined || !world.canSee(auth.caller, project)) return PROJECT_NOT_FOUND()
    const level = world.callerLevel(auth.caller, project)
    allowed = method === "PUT" ? level >= ROLE_LEVELS.developer : level >= ROLE_LEVELS.reporter || project.visibility !== "private"
    if (!allowed && auth.caller === null) return UNAUTHORIZED()
  }
  if (!allowed) return FORBIDDEN()
  const fileKey = `${project.id}/${key}`
  if (method === "PUT") {
    if (!world.storePackageFile(fileKey, req.body)) return message(413, "413 Request Entity Too Large")
    return message(201, "201 Created")
  }
  const content = world.packageFile(fileKey)
  if (content === undefined) return message(404, "404 Package Not Found")
  return { status: 200, headers: { "content-type": "application/octet-stream" }, body: content }
}
