/**
 * The client against a small local node:http server: what GitLab itself rarely does on demand
 * (redirects, resets, HTML bodies, Retry-After as a date) and the exact shape of each request.
 */
import * as net from "node:net"
import { assert, describe, it } from "@effect/vitest"
import type { GitLabError } from "@gldt/core/Errors"
import { type Connection, GitLab } from "@gldt/core/GitLab"
import { Context, Effect, Exit, Fiber, Layer, Redacted } from "effect"
import { TestClock } from "effect/testing"
import { FetchHttpClient, Headers, HttpClient, HttpClientResponse } from "effect/http"
import { layer, layerNoTransport } from "../src/GitLabClient.ts"
import type { GitLabClientOptions } from "../src/Options.ts"
import { GitLabTransport, KEEP_ALIVE_MS, layerHttpClient } from "../src/Transport.ts"
import { captureLogs, json, startServer, type TestServer, text } from "./support/server.ts"

const ACCESS = "glpat-ACCESS-secret-1234567890"
const MINTED = "gldt-MINTED-secret-abcdefgh"

const fast: GitLabClientOptions = { baseDelay: "2 millis", maxDelay: "2 seconds", requestTimeout: "5 seconds" }

const conn = (server: TestServer | string, extra: Partial<Connection> = {}): Connection => ({
  url: typeof server === "string" ? server : server.url,
  accessToken: Redacted.make(ACCESS),
  allowHttp: true,
  ...extra,
})

const project = { kind: "project", id: "group/sub/project" } as const
const group = { kind: "group", id: "my-group" } as const

const entity = (id: number, extra: Record<string, unknown> = {}) => ({
  id,
  name: `t${id}`,
  username: "eso",
  expires_at: null,
  scopes: ["read_repository"],
  revoked: false,
  expired: false,
  ...extra,
})

const withGitLab = <A, E>(f: (gl: GitLab["Service"]) => Effect.Effect<A, E>, options: GitLabClientOptions = fast) =>
  Effect.gen(function* () {
    const gl = yield* GitLab
    return yield* f(gl)
  }).pipe(Effect.provide(layer(options)))

/** Runs and returns the typed failure (the test fails if it succeeds). */
const failure = <A>(effect: Effect.Effect<A, GitLabError>) =>
  Effect.flatMap(Effect.exit(effect), (exit) => {
    if (Exit.isSuccess(exit)) return Effect.die(new Error(`expected a failure, got ${JSON.stringify(exit.value)}`))
    const found = exit.cause.reasons.find((r) => r._tag === "Fail")
    return found === undefined ? Effect.die(new Error(`expected a typed failure: ${String(exit.cause)}`)) : Effect.succeed(found.error as GitLabError)
  })

const freePort = () =>
  Effect.callback<number>((resume) => {
    const s = net.createServer()
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as net.AddressInfo).port
      s.close(() => resume(Effect.succeed(port)))
    })
  })

describe("requests", () => {
  it.live("create sends one JSON POST with PRIVATE-TOKEN and User-Agent, and wraps the token", () =>
    Effect.gen(function* () {
      const server = yield* startServer((_req, res) => json(res, 201, { ...entity(11, { username: "eso" }), token: MINTED }))
      const minted = yield* withGitLab((gl) =>
        gl.create(conn(server), project, {
          name: "eso-managed",
          scopes: ["read_repository", "read_registry"],
          username: "eso",
          expiresAt: "2030-01-01T00:00:00.000Z",
        }),
      )
      assert.strictEqual(minted.id, 11)
      assert.strictEqual(Redacted.value(minted.token), MINTED)
      assert.notInclude(String(minted.token), MINTED)
      assert.notInclude(JSON.stringify(minted), MINTED)
      assert.strictEqual(server.requests.length, 1)
      const [req] = server.requests
      assert.strictEqual(req?.method, "POST")
      assert.strictEqual(req?.url, "/api/v4/projects/group%2Fsub%2Fproject/deploy_tokens")
      assert.strictEqual(req?.headers["private-token"], ACCESS)
      assert.strictEqual(req?.headers["user-agent"], "gldt/0.1.0")
      assert.match(String(req?.headers["content-type"]), /application\/json/)
      assert.deepStrictEqual(JSON.parse(req?.body ?? ""), {
        name: "eso-managed",
        scopes: ["read_repository", "read_registry"],
        username: "eso",
        expires_at: "2030-01-01T00:00:00.000Z",
      })
    }),
  )

  it.live("omits username and expires_at when not given; honours a path prefix and a custom User-Agent", () =>
    Effect.gen(function* () {
      const server = yield* startServer((_req, res) => json(res, 201, { ...entity(12), token: MINTED }))
      yield* withGitLab((gl) => gl.create(conn(`${server.url}/gitlab///`), group, { name: "n", scopes: ["read_registry"] }), {
        ...fast,
        userAgent: "custom/1",
      })
      const [req] = server.requests
      assert.strictEqual(req?.url, "/gitlab/api/v4/groups/my-group/deploy_tokens")
      assert.strictEqual(req?.headers["user-agent"], "custom/1")
      assert.deepStrictEqual(JSON.parse(req?.body ?? ""), { name: "n", scopes: ["read_registry"] })
    }),
  )

  it.live("numeric ids are sent as they are", () =>
    Effect.gen(function* () {
      const server = yield* startServer((_req, res) => {
        res.writeHead(204)
        res.end()
      })
      yield* withGitLab((gl) => gl.revoke(conn(server), { kind: "project", id: "42" }, 7))
      assert.strictEqual(server.requests[0]?.url, "/api/v4/projects/42/deploy_tokens/7")
      assert.strictEqual(server.requests[0]?.method, "DELETE")
    }),
  )

  it.live("refuses http:// without allowHttp before sending anything", () =>
    Effect.gen(function* () {
      const server = yield* startServer((_req, res) => json(res, 200, []))
      const error = yield* failure(withGitLab((gl) => gl.list(conn(server, { allowHttp: false }), project)))
      assert.strictEqual(error._tag, "Invalid")
      assert.match(error.message, /use https:\/\/ \(or --allow-http/)
      assert.strictEqual(server.requests.length, 0)
    }),
  )
})

describe("create is never retried once it may have been applied", () => {
  it.live("502 → Unavailable{maybeApplied: true}, one POST", () =>
    Effect.gen(function* () {
      const server = yield* startServer((_req, res) => text(res, 502, "<html>Bad Gateway</html>", { "content-type": "text/html" }))
      const error = yield* failure(withGitLab((gl) => gl.create(conn(server), project, { name: "n", scopes: ["read_registry"] })))
      assert.strictEqual(error._tag, "Unavailable")
      assert.isTrue(error._tag === "Unavailable" && error.maybeApplied)
      assert.match(error.message, /GitLab answered 502 Bad Gateway for POST \/projects\/group%2Fsub%2Fproject\/deploy_tokens/)
      assert.strictEqual(server.requests.length, 1)
    }),
  )

  it.live("a reset after the request was sent → maybeApplied, one POST", () =>
    Effect.gen(function* () {
      const server = yield* startServer((_req, res) => res.socket?.destroy())
      const error = yield* failure(withGitLab((gl) => gl.create(conn(server), project, { name: "n", scopes: ["read_registry"] })))
      assert.strictEqual(error._tag, "Unavailable")
      assert.isTrue(error._tag === "Unavailable" && error.maybeApplied)
      assert.match(error.message, /may have been created/)
      assert.strictEqual(server.requests.length, 1)
    }),
  )

  it.live("a timeout → maybeApplied, one POST", () =>
    Effect.gen(function* () {
      const server = yield* startServer(() => {})
      const error = yield* failure(
        withGitLab((gl) => gl.create(conn(server), project, { name: "n", scopes: ["read_registry"] }), { ...fast, requestTimeout: "200 millis" }),
      )
      assert.strictEqual(error._tag, "Unavailable")
      assert.isTrue(error._tag === "Unavailable" && error.maybeApplied)
      assert.match(error.message, /no complete answer within/)
      assert.strictEqual(server.requests.length, 1)
    }),
  )

  it.live("a 201 without a token → maybeApplied, naming the id to clean up", () =>
    Effect.gen(function* () {
      const server = yield* startServer((_req, res) => json(res, 201, entity(99)))
      const error = yield* failure(withGitLab((gl) => gl.create(conn(server), project, { name: "n", scopes: ["read_registry"] })))
      assert.strictEqual(error._tag, "Unavailable")
      assert.isTrue(error._tag === "Unavailable" && error.maybeApplied)
      assert.match(error.message, /no token value for deploy token 99/)
    }),
  )

  it.live("429 is retried (Rack::Attack refused it before the app ran)", () =>
    Effect.gen(function* () {
      const server = yield* startServer((_req, res, n) =>
        n === 1 ? text(res, 429, "Retry later\n", { "retry-after": "0" }) : json(res, 201, { ...entity(5), token: MINTED }),
      )
      const minted = yield* withGitLab((gl) => gl.create(conn(server), project, { name: "n", scopes: ["read_registry"] }))
      assert.strictEqual(minted.id, 5)
      assert.strictEqual(server.requests.length, 2)
    }),
  )

  it.live("connection refused is retried and reported as not applied", () =>
    Effect.gen(function* () {
      const port = yield* freePort()
      const logs = captureLogs()
      const error = yield* failure(
        logs.provide(withGitLab((gl) => gl.create(conn(`http://127.0.0.1:${port}`), project, { name: "n", scopes: ["read_registry"] }))),
      )
      assert.strictEqual(error._tag, "Unavailable")
      assert.isTrue(error._tag === "Unavailable" && !error.maybeApplied)
      assert.match(error.message, /before sending: connection refused; gave up after 5 attempts/)
      assert.strictEqual(logs.lines.filter((l) => l.includes("retrying in")).length, 4)
    }),
  )
})

describe("revoke", () => {
  const cases = [
    { body: { message: "404 Not found" }, tag: "TokenNotFound" },
    { body: { message: "404 Project Not Found" }, tag: "TargetNotFound" },
    { body: { message: "404 Group Not Found" }, tag: "TargetNotFound" },
    { body: { error: "404 Not Found" }, tag: "TargetNotFound" },
  ] as const
  for (const c of cases) {
    it.live(`404 ${JSON.stringify(c.body)} → ${c.tag}`, () =>
      Effect.gen(function* () {
        const server = yield* startServer((_req, res) => json(res, 404, c.body))
        const error = yield* failure(withGitLab((gl) => gl.revoke(conn(server), project, 31)))
        assert.strictEqual(error._tag, c.tag)
        if (error._tag === "TokenNotFound") assert.strictEqual(error.tokenId, 31)
        assert.strictEqual(server.requests.length, 1)
      }),
    )
  }

  it.live("503 twice, then 204: retried with back-off and logged without secrets", () =>
    Effect.gen(function* () {
      const server = yield* startServer((_req, res, n) => {
        if (n < 3) return text(res, 503, "down")
        res.writeHead(204)
        res.end()
      })
      const logs = captureLogs()
      yield* logs.provide(withGitLab((gl) => gl.revoke(conn(server), project, 8)))
      assert.strictEqual(server.requests.length, 3)
      assert.isTrue(server.requests.every((r) => r.method === "DELETE"))
      const retries = logs.lines.filter((l) => l.includes("retrying in"))
      assert.strictEqual(retries.length, 2)
      assert.include(retries[0], "DELETE /projects/group%2Fsub%2Fproject/deploy_tokens/8: answered 503 Service Unavailable; attempt 1/5")
      assert.include(retries[0], "status=503")
    }),
  )

  it.live("always 503: Unavailable{maybeApplied: false} after maxAttempts", () =>
    Effect.gen(function* () {
      const server = yield* startServer((_req, res) => json(res, 503, { message: "503 Service Unavailable" }))
      const error = yield* failure(withGitLab((gl) => gl.revoke(conn(server), project, 8), { ...fast, maxAttempts: 3 }))
      assert.strictEqual(error._tag, "Unavailable")
      assert.isTrue(error._tag === "Unavailable" && !error.maybeApplied)
      assert.match(error.message, /gave up after 3 attempts/)
      assert.strictEqual(server.requests.length, 3)
    }),
  )

  it.live("a reset on DELETE is retried", () =>
    Effect.gen(function* () {
      const server = yield* startServer((_req, res, n) => {
        if (n === 1) return res.socket?.destroy()
        res.writeHead(204)
        res.end()
      })
      yield* withGitLab((gl) => gl.revoke(conn(server), project, 8))
      assert.strictEqual(server.requests.length, 2)
    }),
  )
})

describe("rate limits", () => {
  it.live("waits for Retry-After (seconds) in real time", () =>
    Effect.gen(function* () {
      const server = yield* startServer((_req, res, n) => (n === 1 ? text(res, 429, "Retry later\n", { "retry-after": "1" }) : json(res, 200, [entity(1)])))
      const started = Date.now()
      const tokens = yield* withGitLab((gl) => gl.list(conn(server), project))
      assert.isAtLeast(Date.now() - started, 950)
      assert.strictEqual(tokens.length, 1)
      assert.strictEqual(server.requests.length, 2)
    }),
  )

  it.effect("the wait goes through Effect's Clock: Retry-After as an HTTP date, driven by TestClock", () =>
    Effect.gen(function* () {
      const server = yield* startServer((_req, res, n) => {
        if (n === 1) {
          // The date is relative to the TestClock's "now" (epoch 0), as the client reads it from Clock.
          return text(res, 429, "Retry later\n", { "retry-after": new Date(30_000).toUTCString() })
        }
        res.writeHead(204)
        res.end()
      })
      const logs = captureLogs()
      const fiber = yield* Effect.forkChild(logs.provide(withGitLab((gl) => gl.revoke(conn(server), project, 3), { ...fast, maxDelay: "1 minute" })))
      while (!logs.lines.some((l) => l.includes("retrying in"))) yield* TestClock.withLive(Effect.sleep("5 millis"))
      assert.include(
        logs.lines.find((l) => l.includes("retrying in")),
        "retrying in 30000 ms",
      )
      yield* TestClock.adjust("29 seconds")
      yield* TestClock.withLive(Effect.sleep("50 millis"))
      assert.strictEqual(server.requests.length, 1)
      yield* TestClock.adjust("1 second")
      yield* Fiber.join(fiber)
      assert.strictEqual(server.requests.length, 2)
    }),
  )

  it.live("falls back to RateLimit-Reset", () =>
    Effect.gen(function* () {
      const server = yield* startServer((_req, res, n) =>
        n === 1 ? text(res, 429, "Retry later\n", { "ratelimit-reset": String(Math.ceil(Date.now() / 1000) + 1) }) : json(res, 200, []),
      )
      const logs = captureLogs()
      yield* logs.provide(withGitLab((gl) => gl.list(conn(server), project)))
      const line = logs.lines.find((l) => l.includes("retrying in")) ?? ""
      const ms = Number(/retrying in (\d+) ms/.exec(line)?.[1])
      assert.isAbove(ms, 0)
      assert.isAtMost(ms, 2000)
      assert.include(line, "level=INFO")
    }),
  )

  it.live("a Retry-After longer than maxDelay is not waited for: RateLimited at once", () =>
    Effect.gen(function* () {
      const server = yield* startServer((_req, res) => text(res, 429, "Retry later\n", { "retry-after": "3600" }))
      const error = yield* failure(withGitLab((gl) => gl.revoke(conn(server), project, 3)))
      assert.strictEqual(error._tag, "RateLimited")
      assert.isTrue(error._tag === "RateLimited" && error.retryAfterMs === 3_600_000)
      assert.match(error.message, /GitLab asks to wait 3600 s; not retried/)
      assert.strictEqual(server.requests.length, 1)
    }),
  )

  it.live("429 without hints until attempts run out → RateLimited", () =>
    Effect.gen(function* () {
      const server = yield* startServer((_req, res) => text(res, 429, "Retry later\n"))
      const error = yield* failure(withGitLab((gl) => gl.list(conn(server), project), { ...fast, maxAttempts: 2 }))
      assert.strictEqual(error._tag, "RateLimited")
      assert.match(error.message, /gave up after 2 attempts/)
      // No hint from GitLab: the next back-off step (2 ms × 2²).
      assert.isTrue(error._tag === "RateLimited" && error.retryAfterMs === 8)
      assert.strictEqual(server.requests.length, 2)
    }),
  )
})

describe("error classification", () => {
  const cases: ReadonlyArray<{
    name: string
    status: number
    body: unknown
    raw?: string
    tag: GitLabError["_tag"]
    message: RegExp
    insufficientScope?: boolean
  }> = [
    {
      name: "400 message",
      status: 400,
      body: { message: "Scopes can't be blank" },
      tag: "Invalid",
      message: /400 Bad Request for POST .*: Scopes can't be blank$/,
    },
    { name: "400 error", status: 400, body: { error: "scopes does not have a valid value" }, tag: "Invalid", message: /: scopes does not have a valid value$/ },
    { name: "400 object message", status: 400, body: { message: { name: ["is too long"] } }, tag: "Invalid", message: /: \{"name":\["is too long"\]\}$/ },
    { name: "401 plain", status: 401, body: { message: "401 Unauthorized" }, tag: "Unauthorized", message: /unknown, expired or revoked/ },
    {
      name: "401 expired",
      status: 401,
      body: { error: "invalid_token", error_description: "Token is expired. You can either do re-authorization or token refresh." },
      tag: "Unauthorized",
      message: /refused \(Token is expired\./,
    },
    {
      name: "403 insufficient_scope",
      status: 403,
      body: {
        error: "insufficient_scope",
        error_description: "The request requires higher privileges than provided by the access token.",
        scope: "api read_api",
      },
      tag: "Forbidden",
      message: /403 Forbidden for POST \/projects\/group%2Fsub%2Fproject\/deploy_tokens: access token lacks the api scope/,
      insufficientScope: true,
    },
    {
      name: "403 role",
      status: 403,
      body: { message: "403 Forbidden" },
      tag: "Forbidden",
      message: /403 Forbidden for POST \/projects\/group%2Fsub%2Fproject\/deploy_tokens: role too low: need Maintainer on a project, Owner on a group$/,
      insufficientScope: false,
    },
    {
      name: "404 project",
      status: 404,
      body: { message: "404 Project Not Found" },
      tag: "TargetNotFound",
      message: /project group\/sub\/project does not exist/,
    },
    { name: "404 html", status: 404, body: undefined, raw: "<html>nginx</html>", tag: "TargetNotFound", message: /HTML page/ },
    { name: "405 moved", status: 405, body: { message: "Non GET methods are not allowed for moved projects" }, tag: "Moved", message: /renamed or moved/ },
    {
      name: "500 html",
      status: 500,
      body: undefined,
      raw: "<!DOCTYPE html><html>oops</html>",
      tag: "Unavailable",
      message: /500 Internal Server Error .*HTML page/,
    },
    { name: "418 unexpected", status: 418, body: { message: "teapot" }, tag: "Invalid", message: /418 for POST .*: teapot/ },
    { name: "302 on POST", status: 302, body: undefined, raw: "", tag: "Moved", message: /redirects are not followed for writes/ },
  ]
  for (const c of cases) {
    it.live(`${c.name} → ${c.tag}`, () =>
      Effect.gen(function* () {
        const server = yield* startServer((_req, res) => {
          if (c.raw !== undefined) {
            res.writeHead(c.status, { "content-type": c.raw.startsWith("<") ? "text/html" : "text/plain", location: "/elsewhere" })
            return res.end(c.raw)
          }
          json(res, c.status, c.body)
        })
        const error = yield* failure(withGitLab((gl) => gl.create(conn(server), project, { name: "n", scopes: ["read_registry"] })))
        assert.strictEqual(error._tag, c.tag)
        assert.match(error.message, c.message)
        if (c.insufficientScope !== undefined) assert.isTrue(error._tag === "Forbidden" && error.insufficientScope === c.insufficientScope)
        assert.notInclude(error.message, ACCESS)
        assert.strictEqual(server.requests.length, 1)
      }),
    )
  }

  it.live("a list page that is not a JSON array → Unavailable{maybeApplied: false}", () =>
    Effect.gen(function* () {
      const server = yield* startServer((_req, res) => json(res, 200, { not: "an array" }))
      const error = yield* failure(withGitLab((gl) => gl.list(conn(server), project)))
      assert.strictEqual(error._tag, "Unavailable")
      assert.isTrue(error._tag === "Unavailable" && !error.maybeApplied)
      assert.match(error.message, /page 1 is not a JSON array/)
    }),
  )
})

describe("list", () => {
  it.live("follows X-Next-Page over every page and sorts by id", () =>
    Effect.gen(function* () {
      const all = Array.from({ length: 250 }, (_, i) => entity(1000 - i * 3))
      const server = yield* startServer((req, res) => {
        const u = new URL(req.url, "http://x")
        const page = Number(u.searchParams.get("page"))
        const per = Number(u.searchParams.get("per_page"))
        const slice = all.slice((page - 1) * per, page * per)
        json(res, 200, slice, { "x-next-page": page * per < all.length ? String(page + 1) : "", "x-page": String(page) })
      })
      const tokens = yield* withGitLab((gl) => gl.list(conn(server), project))
      assert.strictEqual(tokens.length, 250)
      assert.deepStrictEqual(
        tokens.map((t) => t.id),
        all.map((t) => t.id).sort((a, b) => a - b),
      )
      assert.deepStrictEqual(
        server.requests.map((r) => r.url),
        [1, 2, 3].map((p) => `/api/v4/projects/group%2Fsub%2Fproject/deploy_tokens?per_page=100&page=${p}`),
      )
    }),
  )

  it.live("without pagination headers, stops at a short page; old entities lack revoked/expired", () =>
    Effect.gen(function* () {
      const server = yield* startServer((req, res) => {
        const page = Number(new URL(req.url, "http://x").searchParams.get("page"))
        const items =
          page === 1
            ? Array.from({ length: 100 }, (_, i) => entity(i + 1))
            : [{ id: 101, name: "old", username: "u", expires_at: "2000-01-01", scopes: ["read_registry"] }]
        json(res, 200, items)
      })
      const tokens = yield* withGitLab((gl) => gl.list(conn(server), project))
      assert.strictEqual(tokens.length, 101)
      assert.deepStrictEqual(tokens[100], {
        id: 101,
        name: "old",
        username: "u",
        expiresAt: "2000-01-01",
        scopes: ["read_registry"],
        revoked: false,
        expired: true,
      })
      assert.strictEqual(server.requests.length, 2)
    }),
  )
})

describe("redirects", () => {
  it.live("a same-origin redirect on GET is followed", () =>
    Effect.gen(function* () {
      const server = yield* startServer((req, res) => {
        if (req.url.startsWith("/api/v4/projects/old%2Fpath/")) {
          res.writeHead(301, { location: "/api/v4/projects/77/deploy_tokens" })
          return res.end()
        }
        json(res, 200, [entity(1)])
      })
      const tokens = yield* withGitLab((gl) => gl.list(conn(server), { kind: "project", id: "old/path" }))
      assert.strictEqual(tokens.length, 1)
      assert.strictEqual(server.requests.length, 2)
      assert.strictEqual(server.requests[1]?.url, "/api/v4/projects/77/deploy_tokens?per_page=100&page=1")
    }),
  )

  it.live("a cross-origin redirect is not followed and the token never reaches the other server", () =>
    Effect.gen(function* () {
      const other = yield* startServer((_req, res) => json(res, 200, []))
      const server = yield* startServer((_req, res) => {
        res.writeHead(302, { location: `${other.url}/api/v4/projects/1/deploy_tokens` })
        res.end()
      })
      const listed = yield* failure(withGitLab((gl) => gl.list(conn(server), project)))
      assert.strictEqual(listed._tag, "Moved")
      assert.isTrue(listed._tag === "Moved" && listed.location === `${other.url}/api/v4/projects/1/deploy_tokens`)
      assert.match(listed.message, /another origin is not followed, so the access token was not sent there/)
      const revoked = yield* failure(withGitLab((gl) => gl.revoke(conn(server), project, 1)))
      assert.strictEqual(revoked._tag, "Moved")
      assert.strictEqual(other.requests.length, 0)
    }),
  )

  it.live("http → https on the same host is another origin: not followed", () =>
    Effect.gen(function* () {
      const server = yield* startServer((req, res) => {
        res.writeHead(301, { location: `https://127.0.0.1:1${req.url}` })
        res.end()
      })
      const error = yield* failure(withGitLab((gl) => gl.list(conn(server), project)))
      assert.strictEqual(error._tag, "Moved")
      assert.strictEqual(server.requests.length, 1)
    }),
  )
})

describe("preflight", () => {
  const probe = (status: number, body: unknown) =>
    startServer((req, res) => {
      if (req.method === "GET") return json(res, 200, [entity(1), entity(2)])
      json(res, status, body)
    })

  it.live("404 Not found on DELETE …/0 → canManage", () =>
    Effect.gen(function* () {
      const server = yield* probe(404, { message: "404 Not found" })
      const report = yield* withGitLab((gl) => gl.preflight(conn(server), project))
      assert.deepStrictEqual(report, { tokenCount: 2, canManage: true })
      assert.strictEqual(server.requests[1]?.method, "DELETE")
      assert.strictEqual(server.requests[1]?.url, "/api/v4/projects/group%2Fsub%2Fproject/deploy_tokens/0")
    }),
  )

  it.live("403 insufficient_scope → cannot manage: the access token lacks the api scope", () =>
    Effect.gen(function* () {
      const server = yield* probe(403, { error: "insufficient_scope", error_description: "…", scope: "api read_api" })
      const report = yield* withGitLab((gl) => gl.preflight(conn(server), project))
      assert.deepStrictEqual(report, { tokenCount: 2, canManage: false, reason: "access token lacks the api scope" })
    }),
  )

  it.live("403 Forbidden → cannot manage: role too low", () =>
    Effect.gen(function* () {
      const server = yield* probe(403, { message: "403 Forbidden" })
      const report = yield* withGitLab((gl) => gl.preflight(conn(server), group))
      assert.deepStrictEqual(report, {
        tokenCount: 2,
        canManage: false,
        reason: "role too low: need Maintainer on a project, Owner on a group",
      })
    }),
  )

  it.live("401 on the list is an error", () =>
    Effect.gen(function* () {
      const server = yield* startServer((_req, res) => json(res, 401, { message: "401 Unauthorized" }))
      const error = yield* failure(withGitLab((gl) => gl.preflight(conn(server), project)))
      assert.strictEqual(error._tag, "Unauthorized")
      assert.strictEqual(server.requests.length, 1)
    }),
  )
})

describe("secrets", () => {
  it.live("neither the access token nor a minted token appears in any error or log line", () =>
    Effect.gen(function* () {
      // A hostile server echoes everything it got, headers included, in every error body.
      const server = yield* startServer((req, res, n) => {
        const echo = `${JSON.stringify(req.headers)} ${req.body} ${MINTED}`
        if (req.method === "POST" && n % 2 === 1) return json(res, 201, { ...entity(1), token: MINTED })
        const status = [400, 401, 403, 404, 405, 429, 500, 502][n % 8] ?? 500
        json(res, status, { message: echo, error: echo, error_description: echo })
      })
      const logs = captureLogs()
      const errors: Array<GitLabError> = []
      const program = Effect.gen(function* () {
        const gl = yield* GitLab
        for (let i = 0; i < 8; i++) {
          const c = conn(server)
          for (const op of [
            gl.create(c, project, { name: "n", scopes: ["read_registry"] }),
            gl.revoke(c, project, i),
            gl.list(c, project),
            gl.preflight(c, project),
          ] as ReadonlyArray<Effect.Effect<unknown, GitLabError>>) {
            const exit = yield* Effect.exit(op)
            if (Exit.isFailure(exit)) {
              for (const r of exit.cause.reasons) if (r._tag === "Fail") errors.push(r.error as GitLabError)
            } else yield* Effect.logInfo("result", exit.value)
          }
        }
      })
      yield* logs.provide(program.pipe(Effect.provide(layer({ ...fast, maxAttempts: 2 }))))
      assert.isAbove(errors.length, 10)
      const everything = [...errors.map((e) => `${e.message} ${JSON.stringify(e)} ${String(e)}`), ...logs.lines].join("\n")
      assert.notInclude(everything, ACCESS)
      assert.notInclude(everything, MINTED)
      assert.include(everything, "[REDACTED]")
    }),
  )
})

describe("layers", () => {
  it.live("calls in a burst reuse connections; a connection idle for over KEEP_ALIVE_MS is not reused", () =>
    Effect.gen(function* () {
      const server = yield* startServer((_req, res) => {
        res.writeHead(204)
        res.end()
      })
      let connections = 0
      ;(server as unknown as { server: import("node:http").Server }).server.on("connection", () => connections++)
      const target = { kind: "project", id: "42" } as const
      yield* withGitLab((gl) =>
        Effect.gen(function* () {
          for (let id = 1; id <= 6; id++) yield* gl.revoke(conn(server), target, id)
          // A call may start before the previous one's socket is back in the pool: at most two.
          const inBurst = connections
          yield* Effect.sleep(KEEP_ALIVE_MS + 500)
          yield* gl.revoke(conn(server), target, 7)
          assert.isAtMost(inBurst, 2)
          assert.strictEqual(connections, inBurst + 1)
          assert.strictEqual(server.requests.length, 7)
        }),
      )
    }),
  )

  it.live("a fetch-based transport does not follow a cross-origin redirect either", () =>
    Effect.gen(function* () {
      const other = yield* startServer((_req, res) => json(res, 200, []))
      const server = yield* startServer((_req, res) => {
        res.writeHead(307, { location: `${other.url}/api/v4/projects/1/deploy_tokens` })
        res.end()
      })
      const fetchLayer = layerNoTransport(fast).pipe(Layer.provide(layerHttpClient), Layer.provide(FetchHttpClient.layer))
      const error = yield* failure(
        Effect.gen(function* () {
          const gl = yield* GitLab
          return yield* gl.list(conn(server), project)
        }).pipe(Effect.provide(fetchLayer)),
      )
      assert.strictEqual(error._tag, "Moved")
      assert.strictEqual(other.requests.length, 0)
      assert.strictEqual(server.requests[0]?.headers["private-token"], ACCESS)
    }),
  )

  it.effect("requests run with private-token redacted for tracing and fetch told not to follow redirects", () =>
    Effect.gen(function* () {
      const seen: Array<{ redacted: ReadonlyArray<string | RegExp>; init: unknown; token: string | undefined }> = []
      const client = HttpClient.make((request, _url, _signal, fiber) => {
        seen.push({
          redacted: fiber.getRef(Headers.CurrentRedactedNames),
          init: Context.getOrUndefined(fiber.context, FetchHttpClient.RequestInit),
          token: request.headers["private-token"],
        })
        return Effect.succeed(HttpClientResponse.fromWeb(request, new Response("[]", { status: 200 })))
      })
      const transport = Layer.succeed(GitLabTransport, GitLabTransport.of({ client: () => Effect.succeed(client) }))
      yield* Effect.gen(function* () {
        const gl = yield* GitLab
        yield* gl.list(conn("http://gitlab.test"), project)
      }).pipe(Effect.provide(layerNoTransport(fast).pipe(Layer.provide(transport))), Effect.provideService(FetchHttpClient.RequestInit, { keepalive: true }))
      assert.strictEqual(seen.length, 1)
      assert.include(seen[0]?.redacted, "private-token")
      assert.include(seen[0]?.redacted, "authorization")
      assert.deepStrictEqual(seen[0]?.init, { keepalive: true, redirect: "manual" })
      assert.strictEqual(seen[0]?.token, ACCESS)
    }),
  )

  it.live("a custom transport is asked for a client with the connection's CA", () =>
    Effect.gen(function* () {
      const server = yield* startServer((_req, res) => json(res, 200, []))
      const asked: Array<string | undefined> = []
      const transport = Layer.effect(
        GitLabTransport,
        Effect.gen(function* () {
          const client = yield* HttpClient.HttpClient
          return GitLabTransport.of({
            client: (caPem) =>
              Effect.sync(() => {
                asked.push(caPem)
                return client
              }),
          })
        }),
      ).pipe(Layer.provide(FetchHttpClient.layer))
      yield* Effect.gen(function* () {
        const gl = yield* GitLab
        yield* gl.list(conn(server), project)
        yield* gl.list(conn(server, { caPem: "-----BEGIN CERTIFICATE-----x" }), project)
        yield* gl.list(conn(server, { caPem: "  " }), project)
      }).pipe(Effect.provide(layerNoTransport(fast).pipe(Layer.provide(transport))))
      assert.deepStrictEqual(asked, [undefined, "-----BEGIN CERTIFICATE-----x", undefined])
    }),
  )

  it.live("the service can be built once and shared", () =>
    Effect.gen(function* () {
      const server = yield* startServer((_req, res) => json(res, 200, []))
      const shared = layer(fast)
      const run = Effect.gen(function* () {
        const gl = yield* GitLab
        return yield* gl.list(conn(server), project)
      })
      const both = yield* Effect.all([run, run], { concurrency: 2 }).pipe(Effect.provide(Layer.fresh(shared)))
      assert.deepStrictEqual(both, [[], []])
    }),
  )
})
