import { type Namespace, type Simulator, type SimulatorOptions, startSimulator } from "../src/index.ts"

/** A fixed "now": 2030-06-15T12:00:00Z. */
export const NOW = Date.UTC(2030, 5, 15, 12, 0, 0)
export const DAY = 86_400_000

export interface Fixture {
  readonly sim: Simulator
  readonly project: Namespace
  readonly publicProject: Namespace
  readonly otherProject: Namespace
  readonly group: Namespace
  readonly publicGroup: Namespace
  readonly pats: {
    readonly admin: string
    readonly adminModeWithScope: string
    readonly adminModeWithoutScope: string
    readonly maintainer: string
    readonly owner: string
    readonly developer: string
    readonly guest: string
    readonly outsider: string
    readonly readApi: string
    readonly expired: string
    readonly revoked: string
    readonly readUserOnly: string
    readonly groupOwner: string
    readonly groupMaintainer: string
  }
}

/**
 * World used by most tests:
 * - group 7 `group` (private): gowner Owner, gmaint Maintainer
 * - project 42 `group/project` (private, formerly `old/project`): maint Maintainer, dev Developer, guest Guest
 * - project 43 `group/public-project` (public), project 44 `other/project` (private, maint is Maintainer)
 * - group 8 `pubgroup` (public): dev Developer
 */
export const setup = async (options: SimulatorOptions = {}): Promise<Fixture> => {
  const sim = await startSimulator({ now: () => NOW, ...options })
  for (const name of ["maint", "dev", "guest", "outsider", "gowner", "gmaint"]) sim.addUser({ name })
  sim.addUser({ name: "root", admin: true })
  sim.addUser({ name: "modeadmin", admin: true, adminMode: true })
  const group = sim.addGroup({ id: 7, path: "group", members: { gowner: "owner", gmaint: "maintainer" } })
  const publicGroup = sim.addGroup({ id: 8, path: "pubgroup", visibility: "public", members: { dev: "developer" } })
  const project = sim.addProject({
    id: 42,
    path: "group/project",
    members: { maint: "maintainer", dev: "developer", guest: "guest" },
    movedFrom: ["old/project"],
  })
  const publicProject = sim.addProject({ id: 43, path: "group/public-project", visibility: "public", members: { dev: "developer" } })
  const otherProject = sim.addProject({ id: 44, path: "other/project", members: { maint: "maintainer" } })
  const pat = (user: string, scopes: string[] = ["api"], extra: { expired?: boolean; revoked?: boolean } = {}): string =>
    sim.addAccessToken({ user, scopes, ...extra })
  return {
    sim,
    project,
    publicProject,
    otherProject,
    group,
    publicGroup,
    pats: {
      admin: pat("root"),
      adminModeWithScope: pat("modeadmin", ["api", "admin_mode"]),
      adminModeWithoutScope: pat("modeadmin"),
      maintainer: pat("maint"),
      owner: pat("gowner"),
      developer: pat("dev"),
      guest: pat("guest"),
      outsider: pat("outsider"),
      readApi: pat("maint", ["read_api"]),
      expired: pat("maint", ["api"], { expired: true }),
      revoked: pat("maint", ["api"], { revoked: true }),
      readUserOnly: pat("maint", ["read_user"]),
      groupOwner: pat("gowner"),
      groupMaintainer: pat("gmaint"),
    },
  }
}

export interface CallOptions {
  readonly method?: string
  readonly pat?: string | undefined
  readonly json?: unknown
  readonly form?: string
  /** Raw body sent as application/octet-stream. */
  readonly raw?: string
  readonly headers?: Record<string, string>
  readonly redirect?: "manual" | "follow"
}

export interface CallResult {
  readonly status: number
  readonly headers: Headers
  readonly text: string
  /** Parsed JSON body (undefined when the body is empty or not JSON). */
  readonly body: unknown
}

/** Real HTTP request against `sim.url + path` (path starts with `/api/v4`, `/_sim`, …). */
export const call = async (sim: Simulator, path: string, options: CallOptions = {}): Promise<CallResult> => {
  const headers: Record<string, string> = { ...options.headers }
  if (options.pat !== undefined) headers["PRIVATE-TOKEN"] = options.pat
  let body: string | undefined
  if (options.json !== undefined) {
    headers["content-type"] = "application/json"
    body = JSON.stringify(options.json)
  } else if (options.form !== undefined) {
    headers["content-type"] = "application/x-www-form-urlencoded"
    body = options.form
  } else if (options.raw !== undefined) {
    headers["content-type"] = "application/octet-stream"
    body = options.raw
  }
  const res = await fetch(sim.url + path, {
    method: options.method ?? (body === undefined ? "GET" : "POST"),
    headers,
    ...(body === undefined ? {} : { body }),
    redirect: options.redirect ?? "manual",
  })
  const text = await res.text()
  let parsed: unknown
  try {
    parsed = text === "" ? undefined : JSON.parse(text)
  } catch {
    parsed = undefined
  }
  return { status: res.status, headers: res.headers, text, body: parsed }
}

/** Creates a project deploy token through the API as the project maintainer. */
export const createToken = async (
  fx: Fixture,
  body: Record<string, unknown> = {},
  where = "/api/v4/projects/42/deploy_tokens",
  pat = fx.pats.maintainer,
): Promise<{ id: number; token: string; username: string }> => {
  const res = await call(fx.sim, where, { pat, json: { name: "t", scopes: ["read_repository"], ...body } })
  if (res.status !== 201) throw new Error(`create failed: ${res.status} ${res.text}`)
  return res.body as { id: number; token: string; username: string }
}

export const basic = (username: string, password: string): Record<string, string> => ({
  authorization: `Basic ${Buffer.from(`${username}:${password}`).toString("base64")}`,
})

/** Git smart-HTTP probe for `path` with Basic credentials. */
export const gitProbe = (fx: Fixture, username: string, password: string, path = "group/project"): Promise<CallResult> =>
  call(fx.sim, `/${path}.git/info/refs?service=git-upload-pack`, { headers: basic(username, password) })

export const jwtProbe = (fx: Fixture, username: string, password: string, scope = "repository:group/project:pull"): Promise<CallResult> =>
  call(fx.sim, `/jwt/auth?service=container_registry&scope=${encodeURIComponent(scope)}`, { headers: basic(username, password) })
