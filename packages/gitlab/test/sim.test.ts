/**
 * The client against @gldt/gitlab-sim, the in-process GitLab simulator: happy paths, every error
 * class as GitLab produces it, injected faults (5xx, resets, applied-but-lost, 429) and TLS.
 */
import { assert, describe, it } from "@effect/vitest"
import type { GitLabError } from "@gldt/core/Errors"
import { type Connection, GitLab } from "@gldt/core/GitLab"
import type { Target } from "@gldt/core/Spec"
import { type Simulator, type SimulatorOptions, startSimulator } from "@gldt/gitlab-sim"
import { Effect, Exit, Redacted } from "effect"
import { layer } from "../src/GitLabClient.ts"
import type { GitLabClientOptions } from "../src/Options.ts"
import { captureLogs } from "./support/server.ts"

const fast: GitLabClientOptions = { baseDelay: "5 millis", maxDelay: "5 seconds", requestTimeout: "5 seconds" }

interface World {
  readonly sim: Simulator
  readonly pats: {
    readonly maintainer: string
    readonly developer: string
    readonly readApi: string
    readonly expired: string
    readonly groupOwner: string
    readonly groupMaintainer: string
  }
}

/**
 * - group 7 `group`: gowner Owner, gmaint Maintainer; group 9 `group/sub`
 * - project 42 `group/project` (formerly `old/project`): maint Maintainer, dev Developer
 * - project 45 `group/sub/project`: maint Maintainer
 */
const simulator = (options: SimulatorOptions = {}) =>
  Effect.acquireRelease(
    Effect.promise(async (): Promise<World> => {
      const sim = await startSimulator(options)
      for (const name of ["maint", "dev", "gowner", "gmaint"]) sim.addUser({ name })
      sim.addGroup({ id: 7, path: "group", members: { gowner: "owner", gmaint: "maintainer" } })
      sim.addGroup({ id: 9, path: "group/sub" })
      sim.addProject({ id: 42, path: "group/project", members: { maint: "maintainer", dev: "developer" }, movedFrom: ["old/project"] })
      sim.addProject({ id: 45, path: "group/sub/project", members: { maint: "maintainer" } })
      return {
        sim,
        pats: {
          maintainer: sim.addAccessToken({ user: "maint", scopes: ["api"] }),
          developer: sim.addAccessToken({ user: "dev", scopes: ["api"] }),
          readApi: sim.addAccessToken({ user: "maint", scopes: ["read_api"] }),
          expired: sim.addAccessToken({ user: "maint", scopes: ["api"], expired: true }),
          groupOwner: sim.addAccessToken({ user: "gowner", scopes: ["api"] }),
          groupMaintainer: sim.addAccessToken({ user: "gmaint", scopes: ["api"] }),
        },
      }
    }),
    (w) => Effect.promise(() => w.sim.close()),
  )

const connect = (w: World, pat: string, extra: Partial<Connection> = {}): Connection => ({
  url: w.sim.url,
  accessToken: Redacted.make(pat),
  allowHttp: true,
  caPem: w.sim.caPem,
  ...extra,
})

const project: Target = { kind: "project", id: "group/project" }
const nested: Target = { kind: "project", id: "group/sub/project" }
const group: Target = { kind: "group", id: "group" }

const withGitLab = <A, E>(f: (gl: GitLab["Service"]) => Effect.Effect<A, E>, options: GitLabClientOptions = fast) =>
  Effect.gen(function* () {
    const gl = yield* GitLab
    return yield* f(gl)
  }).pipe(Effect.provide(layer(options)))

const failure = <A>(effect: Effect.Effect<A, GitLabError>) =>
  Effect.flatMap(Effect.exit(effect), (exit) => {
    if (Exit.isSuccess(exit)) return Effect.die(new Error(`expected a failure, got ${JSON.stringify(exit.value)}`))
    const found = exit.cause.reasons.find((r) => r._tag === "Fail")
    return found === undefined ? Effect.die(new Error(`expected a typed failure: ${String(exit.cause)}`)) : Effect.succeed(found.error as GitLabError)
  })

const posts = (sim: Simulator) => sim.requests().filter((r) => r.method === "POST")

describe("happy paths", () => {
  it.live("create, list and revoke on a project by full path", () =>
    Effect.gen(function* () {
      const w = yield* simulator()
      const c = connect(w, w.pats.maintainer)
      const result = yield* withGitLab((gl) =>
        Effect.gen(function* () {
          const minted = yield* gl.create(c, project, {
            name: "eso-managed",
            scopes: ["read_registry", "read_repository"],
            username: "eso",
            expiresAt: "2099-01-01T00:00:00.000Z",
          })
          const listed = yield* gl.list(c, project)
          yield* gl.revoke(c, project, minted.id)
          const after = yield* gl.list(c, project)
          return { minted, listed, after }
        }),
      )
      const truth = w.sim.tokens({ includeDeleted: true })
      assert.strictEqual(truth.length, 1)
      assert.strictEqual(Redacted.value(result.minted.token), truth[0]?.token)
      assert.strictEqual(result.minted.username, "eso")
      assert.deepStrictEqual(result.minted.scopes, ["read_repository", "read_registry"])
      assert.strictEqual(result.minted.expiresAt, "2099-01-01T00:00:00.000Z")
      assert.isFalse(result.minted.revoked)
      assert.isFalse(result.minted.expired)
      assert.deepStrictEqual(
        result.listed.map((t) => t.id),
        [result.minted.id],
      )
      assert.notProperty(result.listed[0], "token")
      assert.deepStrictEqual(result.after, [])
      const paths = w.sim.requests().map((r) => `${r.method} ${r.path}`)
      assert.strictEqual(paths[0], "POST /api/v4/projects/group%2Fproject/deploy_tokens")
      assert.strictEqual(paths[2], `DELETE /api/v4/projects/group%2Fproject/deploy_tokens/${result.minted.id}`)
    }),
  )

  it.live("a nested project path is escaped once, numeric ids work, groups work", () =>
    Effect.gen(function* () {
      const w = yield* simulator()
      yield* withGitLab((gl) =>
        Effect.gen(function* () {
          yield* gl.create(connect(w, w.pats.maintainer), nested, { name: "a", scopes: ["read_repository"] })
          yield* gl.create(connect(w, w.pats.maintainer), { kind: "project", id: "42" }, { name: "b", scopes: ["read_repository"] })
          yield* gl.create(connect(w, w.pats.groupOwner), group, { name: "c", scopes: ["read_registry"] })
        }),
      )
      assert.deepStrictEqual(
        posts(w.sim).map((r) => r.path),
        ["/api/v4/projects/group%2Fsub%2Fproject/deploy_tokens", "/api/v4/projects/42/deploy_tokens", "/api/v4/groups/group/deploy_tokens"],
      )
      assert.deepStrictEqual(
        posts(w.sim).map((r) => r.status),
        [201, 201, 201],
      )
    }),
  )

  it.live("list follows every page (250 tokens) in id order, 100 per page", () =>
    Effect.gen(function* () {
      const w = yield* simulator()
      for (let i = 0; i < 250; i++) w.sim.createForeignToken({ target: { project: 42 }, name: `t${i}`, scopes: ["read_repository"] })
      w.sim.createForeignToken({ target: { project: 45 }, name: "elsewhere", scopes: ["read_repository"] })
      const tokens = yield* withGitLab((gl) => gl.list(connect(w, w.pats.maintainer), project))
      assert.strictEqual(tokens.length, 250)
      const ids = tokens.map((t) => t.id)
      assert.deepStrictEqual(
        ids,
        [...ids].sort((a, b) => a - b),
      )
      assert.deepStrictEqual(
        w.sim.requests().map((r) => r.query),
        ["per_page=100&page=1", "per_page=100&page=2", "per_page=100&page=3"],
      )
    }),
  )

  it.live("tokens revoked in the UI and expired tokens are listed with their flags", () =>
    Effect.gen(function* () {
      const w = yield* simulator()
      const a = w.sim.createForeignToken({ target: { project: 42 }, name: "ui", scopes: ["read_repository"] })
      w.sim.revokeInUi(a.id)
      w.sim.createForeignToken({ target: { project: 42 }, name: "old", scopes: ["read_repository"], expiresAt: "2001-01-01T00:00:00Z" })
      const tokens = yield* withGitLab((gl) => gl.list(connect(w, w.pats.maintainer), project))
      assert.deepStrictEqual(
        tokens.map((t) => [t.name, t.revoked, t.expired]),
        [
          ["ui", true, false],
          ["old", false, true],
        ],
      )
    }),
  )
})

describe("errors as GitLab produces them", () => {
  const cases: ReadonlyArray<{
    name: string
    pat: keyof World["pats"] | "unknown"
    run: (gl: GitLab["Service"], c: Connection) => Effect.Effect<unknown, GitLabError>
    tag: GitLabError["_tag"]
    message?: RegExp
  }> = [
    { name: "unknown PAT", pat: "unknown", run: (gl, c) => gl.list(c, project), tag: "Unauthorized", message: /unknown, expired or revoked/ },
    { name: "expired PAT", pat: "expired", run: (gl, c) => gl.list(c, project), tag: "Unauthorized", message: /Token is expired/ },
    {
      name: "read_api PAT on POST",
      pat: "readApi",
      run: (gl, c) => gl.create(c, project, { name: "n", scopes: ["read_registry"] }),
      tag: "Forbidden",
      message: /access token lacks the api scope/,
    },
    {
      name: "Developer on POST",
      pat: "developer",
      run: (gl, c) => gl.create(c, project, { name: "n", scopes: ["read_registry"] }),
      tag: "Forbidden",
      message:
        /GitLab answered 403 Forbidden for POST \/projects\/group%2Fproject\/deploy_tokens: role too low: need Maintainer on a project, Owner on a group/,
    },
    {
      name: "group Maintainer on POST",
      pat: "groupMaintainer",
      run: (gl, c) => gl.create(c, group, { name: "n", scopes: ["read_registry"] }),
      tag: "Forbidden",
    },
    { name: "Developer listing", pat: "developer", run: (gl, c) => gl.list(c, project), tag: "Forbidden", message: /listing deploy tokens needs Maintainer/ },
    {
      name: "missing project",
      pat: "maintainer",
      run: (gl, c) => gl.list(c, { kind: "project", id: "group/nope" }),
      tag: "TargetNotFound",
      message: /project group\/nope does not exist/,
    },
    { name: "missing group", pat: "maintainer", run: (gl, c) => gl.list(c, { kind: "group", id: "nope" }), tag: "TargetNotFound" },
    { name: "deleted token", pat: "maintainer", run: (gl, c) => gl.revoke(c, project, 999_999), tag: "TokenNotFound" },
    {
      name: "blank scopes",
      pat: "maintainer",
      run: (gl, c) => gl.create(c, project, { name: "n", scopes: [] }),
      tag: "Invalid",
      message: /400 Bad Request for POST .*: Scopes can't be blank/,
    },
    {
      name: "bad username",
      pat: "maintainer",
      run: (gl, c) => gl.create(c, project, { name: "n", scopes: ["read_registry"], username: "no spaces" }),
      tag: "Invalid",
      message: /Username can contain only/,
    },
    {
      name: "write to a moved project",
      pat: "maintainer",
      run: (gl, c) => gl.create(c, { kind: "project", id: "old/project" }, { name: "n", scopes: ["read_registry"] }),
      tag: "Moved",
      message: /use its numeric id/,
    },
  ]
  for (const c of cases) {
    it.live(`${c.name} → ${c.tag}`, () =>
      Effect.gen(function* () {
        const w = yield* simulator()
        const pat = c.pat === "unknown" ? "glpat-not-a-real-token-000" : w.pats[c.pat]
        const error = yield* failure(withGitLab((gl) => c.run(gl, connect(w, pat))))
        assert.strictEqual(error._tag, c.tag, error.message)
        if (c.message !== undefined) assert.match(error.message, c.message)
        assert.notInclude(error.message, pat)
        assert.strictEqual(w.sim.requests().length, 1)
      }),
    )
  }

  it.live("a GET on a moved project follows GitLab's same-origin 301", () =>
    Effect.gen(function* () {
      const w = yield* simulator()
      w.sim.createForeignToken({ target: { project: 42 }, name: "t", scopes: ["read_repository"] })
      const tokens = yield* withGitLab((gl) => gl.list(connect(w, w.pats.maintainer), { kind: "project", id: "old/project" }))
      assert.strictEqual(tokens.length, 1)
      assert.deepStrictEqual(
        w.sim.requests().map((r) => [r.status, r.path]),
        [
          [301, "/api/v4/projects/old%2Fproject/deploy_tokens"],
          [200, "/api/v4/projects/42/deploy_tokens"],
        ],
      )
    }),
  )
})

describe("faults", () => {
  const create = (w: World) => withGitLab((gl) => gl.create(connect(w, w.pats.maintainer), project, { name: "n", scopes: ["read_registry"] }))

  for (const status of [500, 502, 503, 504] as const) {
    it.live(`POST answered ${status} is not retried: Unavailable{maybeApplied: true}`, () =>
      Effect.gen(function* () {
        const w = yield* simulator()
        w.sim.faults.add({ method: "POST", kind: "status5xx", status, times: Number.POSITIVE_INFINITY })
        const error = yield* failure(create(w))
        assert.strictEqual(error._tag, "Unavailable")
        assert.isTrue(error._tag === "Unavailable" && error.maybeApplied)
        assert.strictEqual(posts(w.sim).length, 1)
      }),
    )
  }

  it.live("POST reset is not retried", () =>
    Effect.gen(function* () {
      const w = yield* simulator()
      w.sim.faults.add({ method: "POST", kind: "reset" })
      const error = yield* failure(create(w))
      assert.isTrue(error._tag === "Unavailable" && error.maybeApplied)
      assert.strictEqual(posts(w.sim).length, 1)
    }),
  )

  for (const lose of ["reset", 502, 504] as const) {
    it.live(`POST applied but its answer lost (${lose}): one token exists, one POST, maybeApplied`, () =>
      Effect.gen(function* () {
        const w = yield* simulator()
        w.sim.faults.add({ method: "POST", kind: "appliedButLost", lose })
        const error = yield* failure(create(w))
        assert.strictEqual(error._tag, "Unavailable")
        assert.isTrue(error._tag === "Unavailable" && error.maybeApplied)
        assert.strictEqual(posts(w.sim).length, 1)
        assert.strictEqual(w.sim.tokens().length, 1)
      }),
    )
  }

  it.live("POST timed out is not retried", () =>
    Effect.gen(function* () {
      const w = yield* simulator()
      w.sim.faults.add({ method: "POST", kind: "latency", ms: 1500, phase: "after" })
      const error = yield* failure(
        withGitLab((gl) => gl.create(connect(w, w.pats.maintainer), project, { name: "n", scopes: ["read_registry"] }), {
          ...fast,
          requestTimeout: "300 millis",
        }),
      )
      assert.isTrue(error._tag === "Unavailable" && error.maybeApplied)
      yield* Effect.sleep("1500 millis")
      assert.strictEqual(posts(w.sim).length, 1)
      assert.strictEqual(w.sim.tokens().length, 1)
    }),
  )

  it.live("POST 429 waits Retry-After, then creates exactly one token", () =>
    Effect.gen(function* () {
      const w = yield* simulator()
      w.sim.faults.add({ method: "POST", kind: "rateLimit", retryAfter: 1 })
      const started = Date.now()
      const minted = yield* create(w)
      assert.isAtLeast(Date.now() - started, 950)
      assert.deepStrictEqual(
        posts(w.sim).map((r) => r.status),
        [429, 201],
      )
      assert.deepStrictEqual(
        w.sim.tokens().map((t) => t.id),
        [minted.id],
      )
    }),
  )

  it.live("DELETE is retried after 503 and reset", () =>
    Effect.gen(function* () {
      const w = yield* simulator()
      const t = w.sim.createForeignToken({ target: { project: 42 }, name: "old", scopes: ["read_repository"] })
      w.sim.faults.add({ method: "DELETE", kind: "status5xx", status: 503 })
      w.sim.faults.add({ method: "DELETE", kind: "reset" })
      yield* withGitLab((gl) => gl.revoke(connect(w, w.pats.maintainer), project, t.id))
      assert.deepStrictEqual(
        w.sim.requests().map((r) => [r.method, r.status]),
        [
          ["DELETE", 503],
          ["DELETE", 0],
          ["DELETE", 204],
        ],
      )
      assert.strictEqual(w.sim.tokens().length, 0)
    }),
  )

  it.live("DELETE applied but lost, then retried: the retry sees 404 TokenNotFound (the caller treats it as gone)", () =>
    Effect.gen(function* () {
      const w = yield* simulator()
      const t = w.sim.createForeignToken({ target: { project: 42 }, name: "old", scopes: ["read_repository"] })
      w.sim.faults.add({ method: "DELETE", kind: "appliedButLost", lose: 502 })
      const error = yield* failure(withGitLab((gl) => gl.revoke(connect(w, w.pats.maintainer), project, t.id)))
      assert.strictEqual(error._tag, "TokenNotFound")
      assert.strictEqual(w.sim.requests().length, 2)
    }),
  )

  it.live("list is retried through 502s and 429s mid-pagination", () =>
    Effect.gen(function* () {
      const w = yield* simulator()
      for (let i = 0; i < 150; i++) w.sim.createForeignToken({ target: { project: 42 }, name: `t${i}`, scopes: ["read_repository"] })
      w.sim.faults.add({ method: "GET", kind: "status5xx", status: 502, skip: 1 })
      w.sim.faults.add({ method: "GET", kind: "rateLimit", retryAfter: 0, skip: 1 })
      const tokens = yield* withGitLab((gl) => gl.list(connect(w, w.pats.maintainer), project))
      assert.strictEqual(tokens.length, 150)
      assert.deepStrictEqual(
        w.sim.requests().map((r) => r.status),
        [200, 502, 429, 200],
      )
    }),
  )

  it.live("the simulator's Rack::Attack-style throttle: list waits out the window and completes", () =>
    Effect.gen(function* () {
      const w = yield* simulator({ rateLimit: { limit: 2, periodSeconds: 1 } })
      for (let i = 0; i < 350; i++) w.sim.createForeignToken({ target: { project: 42 }, name: `t${i}`, scopes: ["read_repository"] })
      const logs = captureLogs()
      const tokens = yield* logs.provide(withGitLab((gl) => gl.list(connect(w, w.pats.maintainer), project)))
      assert.strictEqual(tokens.length, 350)
      const statuses = w.sim.requests().map((r) => r.status)
      assert.include(statuses, 429)
      assert.strictEqual(statuses.filter((s) => s === 200).length, 4)
      assert.isTrue(logs.lines.some((l) => l.includes("answered 429 Too Many Requests") && l.includes("level=INFO")))
    }),
  )

  it.live("a 429 asking for longer than maxDelay fails at once with RateLimited", () =>
    Effect.gen(function* () {
      const w = yield* simulator()
      w.sim.faults.add({ method: "GET", kind: "rateLimit", retryAfter: 600 })
      const error = yield* failure(withGitLab((gl) => gl.list(connect(w, w.pats.maintainer), project)))
      assert.strictEqual(error._tag, "RateLimited")
      assert.isTrue(error._tag === "RateLimited" && error.retryAfterMs === 600_000)
      assert.strictEqual(w.sim.requests().length, 1)
    }),
  )
})

describe("resolveTarget", () => {
  it.live("resolves a project path and a group path to their numeric ids; a numeric id makes no call", () =>
    Effect.gen(function* () {
      const w = yield* simulator()
      const resolved = yield* withGitLab((gl) =>
        Effect.all([
          gl.resolveTarget(connect(w, w.pats.maintainer), project),
          gl.resolveTarget(connect(w, w.pats.groupOwner), group),
          gl.resolveTarget(connect(w, w.pats.maintainer), nested),
        ]),
      )
      assert.deepStrictEqual(resolved, [
        { kind: "project", id: "42" },
        { kind: "group", id: "7" },
        { kind: "project", id: "45" },
      ])
      w.sim.clearRequests()
      const same = yield* withGitLab((gl) => gl.resolveTarget(connect(w, w.pats.maintainer), { kind: "project", id: "42" }))
      assert.deepStrictEqual(same, { kind: "project", id: "42" })
      assert.strictEqual(w.sim.requests().length, 0)
    }),
  )

  it.live("a renamed project's old path resolves to its id (the 301 is followed within the instance); an unknown path is TargetNotFound", () =>
    Effect.gen(function* () {
      const w = yield* simulator()
      w.sim.moveProject(42, "group/renamed")
      const moved = yield* withGitLab((gl) => gl.resolveTarget(connect(w, w.pats.maintainer), project))
      assert.deepStrictEqual(moved, { kind: "project", id: "42" })
      const error = yield* failure(withGitLab((gl) => gl.resolveTarget(connect(w, w.pats.maintainer), { kind: "project", id: "group/nothing" })))
      assert.strictEqual(error._tag, "TargetNotFound")
    }),
  )
})

describe("preflight", () => {
  it.live("Maintainer with api: counts tokens and can manage; nothing changes", () =>
    Effect.gen(function* () {
      const w = yield* simulator()
      w.sim.createForeignToken({ target: { project: 42 }, name: "a", scopes: ["read_repository"] })
      w.sim.createForeignToken({ target: { project: 42 }, name: "b", scopes: ["read_repository"] })
      const report = yield* withGitLab((gl) => gl.preflight(connect(w, w.pats.maintainer), project))
      assert.deepStrictEqual(report, { tokenCount: 2, canManage: true })
      assert.strictEqual(w.sim.tokens().length, 2)
    }),
  )

  it.live("read_api: can list, cannot manage", () =>
    Effect.gen(function* () {
      const w = yield* simulator()
      const report = yield* withGitLab((gl) => gl.preflight(connect(w, w.pats.readApi), project))
      assert.deepStrictEqual(report, { tokenCount: 0, canManage: false, reason: "access token lacks the api scope" })
    }),
  )

  it.live("group Maintainer: can list, cannot manage (Owner needed)", () =>
    Effect.gen(function* () {
      const w = yield* simulator()
      const report = yield* withGitLab((gl) => gl.preflight(connect(w, w.pats.groupMaintainer), group))
      assert.deepStrictEqual(report, { tokenCount: 0, canManage: false, reason: "role too low: need Maintainer on a project, Owner on a group" })
    }),
  )

  it.live("group Owner can manage", () =>
    Effect.gen(function* () {
      const w = yield* simulator()
      const report = yield* withGitLab((gl) => gl.preflight(connect(w, w.pats.groupOwner), group))
      assert.deepStrictEqual(report, { tokenCount: 0, canManage: true })
    }),
  )

  it.live("Developer cannot even list: Forbidden", () =>
    Effect.gen(function* () {
      const w = yield* simulator()
      const error = yield* failure(withGitLab((gl) => gl.preflight(connect(w, w.pats.developer), project)))
      assert.strictEqual(error._tag, "Forbidden")
    }),
  )
})

describe("https", () => {
  it.live("works with the simulator's CA as caPem", () =>
    Effect.gen(function* () {
      const w = yield* simulator({ tls: true })
      assert.isTrue(w.sim.url.startsWith("https://"))
      const minted = yield* withGitLab((gl) =>
        gl.create(connect(w, w.pats.maintainer, { allowHttp: false }), project, { name: "n", scopes: ["read_registry"] }),
      )
      assert.strictEqual(Redacted.value(minted.token), w.sim.tokens()[0]?.token)
    }),
  )

  it.live("fails without the CA, before sending anything, and says to pass caPem", () =>
    Effect.gen(function* () {
      const w = yield* simulator({ tls: true })
      const error = yield* failure(
        withGitLab((gl) => gl.create(connect(w, w.pats.maintainer, { allowHttp: false, caPem: undefined }), project, { name: "n", scopes: ["read_registry"] })),
      )
      assert.strictEqual(error._tag, "Unavailable")
      assert.isTrue(error._tag === "Unavailable" && !error.maybeApplied)
      assert.match(error.message, /TLS verification failed .*pass it as caPem/)
      assert.strictEqual(w.sim.requests().length, 0)
    }),
  )

  it.live("one client per CA: two simulators with different CAs in one layer", () =>
    Effect.gen(function* () {
      const a = yield* simulator({ tls: true })
      const b = yield* simulator({ tls: true })
      const counts = yield* withGitLab((gl) =>
        Effect.gen(function* () {
          const x = yield* gl.list(connect(a, a.pats.maintainer), project)
          const y = yield* gl.list(connect(b, b.pats.maintainer), project)
          const z = yield* gl.list(connect(a, a.pats.maintainer), project)
          const wrong = yield* Effect.exit(gl.list(connect(b, b.pats.maintainer, { caPem: a.sim.caPem }), project))
          return [x.length, y.length, z.length, Exit.isFailure(wrong)]
        }),
      )
      assert.deepStrictEqual(counts, [0, 0, 0, true])
    }),
  )
})

describe("secrets", () => {
  it.live("no access token or minted token in any error message or log line", () =>
    Effect.gen(function* () {
      const w = yield* simulator()
      const logs = captureLogs()
      const errors: Array<string> = []
      const c = connect(w, w.pats.maintainer)
      w.sim.faults.add({ method: "*", kind: "status5xx", status: 502, probability: 0.3, seed: 7 })
      w.sim.faults.add({ method: "*", kind: "rateLimit", retryAfter: 0, probability: 0.2, seed: 8 })
      const program = Effect.gen(function* () {
        const gl = yield* GitLab
        for (let i = 0; i < 12; i++) {
          const ops: ReadonlyArray<Effect.Effect<unknown, GitLabError>> = [
            gl.create(c, project, { name: `n${i}`, scopes: ["read_registry"] }),
            gl.list(c, project),
            gl.preflight(c, project),
            gl.revoke(c, project, i),
            gl.list(connect(w, w.pats.expired), project),
            gl.create(connect(w, w.pats.readApi), project, { name: "x", scopes: ["read_registry"] }),
          ]
          for (const op of ops) {
            const exit = yield* Effect.exit(op)
            if (Exit.isFailure(exit)) errors.push(String(exit.cause))
            else yield* Effect.logInfo("ok", exit.value)
          }
        }
      })
      yield* logs.provide(program.pipe(Effect.provide(layer({ ...fast, maxAttempts: 3 }))))
      const secrets = [...Object.values(w.pats), ...w.sim.tokens({ includeDeleted: true }).map((t) => t.token)]
      assert.isAbove(secrets.length, 6)
      assert.isAbove(errors.length, 5)
      const everything = [...errors, ...logs.lines].join("\n")
      for (const secret of secrets) assert.notInclude(everything, secret)
    }),
  )
})
