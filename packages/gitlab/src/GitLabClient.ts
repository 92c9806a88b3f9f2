/**
 * `@gldt/core`'s `GitLab` service over GitLab's REST API (v4), on `effect/http`.
 *
 * - `create` (POST) is retried only when it certainly did not reach GitLab's application: a 429
 *   (Rack::Attack answers before the app runs) or a connection that failed before sending. A 5xx, a
 *   reset or a timeout after sending is `Unavailable{maybeApplied: true}`, never retried.
 * - `resolveTarget` turns a `group/project` path into its numeric id (GET, following a moved
 *   project's redirect within the instance).
 * - `revoke` (DELETE), `list` and `resolveTarget` (GET) and the `preflight` probe retry 429, 500/502/503/504, 408 and
 *   network failures with jittered exponential back-off, honouring `Retry-After`/`RateLimit-Reset`.
 * - The access token goes only to the connection's origin: `http://` is refused unless
 *   `allowHttp`, redirects are followed only on GET and only within the origin.
 */
import type { GitLabError } from "@gldt/core/Errors"
import { Invalid, RateLimited } from "@gldt/core/Errors"
import { type AccessReport, type Connection, type CreateRequest, type DeployToken, GitLab, type MintedToken } from "@gldt/core/GitLab"
import type { Target } from "@gldt/core/Spec"
import { Clock, Duration, Effect, Layer, Option, Redacted, Result, Schedule } from "effect"
import { FetchHttpClient, Headers, type HttpClient, HttpClientError, HttpClientRequest } from "effect/http"
import { decodeEntity, isInt, parseJson } from "./internal/entity.ts"
import { parseErrorBody } from "./internal/errorBody.ts"
import { classifyNetwork, timeoutFailure, unreadable } from "./internal/network.ts"
import { baseUrl, nextPage, PER_PAGE, targetPath } from "./internal/paths.ts"
import type { Failure, Method, RequestInfo } from "./internal/request.ts"
import { secondsText } from "./internal/retryHints.ts"
import { scrub, withMessage } from "./internal/scrub.ts"
import { classifyStatus } from "./internal/status.ts"
import { type GitLabClientOptions, type ResolvedOptions, resolveOptions } from "./Options.ts"
import * as Transport from "./Transport.ts"

/** A list stops here whatever the headers say (a million tokens). */
const MAX_PAGES = 10_000

/**
 * Only matters for a fetch-based transport: fetch must hand redirects back instead of following
 * them with our headers. Any `RequestInit` the caller provided (e.g. a dispatcher) is kept.
 */
const manualRedirects = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.flatMap(Effect.serviceOption(FetchHttpClient.RequestInit), (init) =>
    Effect.provideService(effect, FetchHttpClient.RequestInit, { ...Option.getOrElse(init, () => ({})), redirect: "manual" }),
  )

// ---------------------------------------------------------------------------------------------
// Connection and target
// ---------------------------------------------------------------------------------------------

interface Ctx {
  /** e.g. `https://gitlab.example.com/gitlab/api/v4` (no trailing slash). */
  readonly apiRoot: string
  readonly origin: string
  readonly client: HttpClient.HttpClient
  readonly accessToken: Redacted.Redacted<string>
  /** Values no message may contain. */
  readonly secrets: ReadonlyArray<string>
  readonly targetPath: string
  readonly target: Target
}

// ---------------------------------------------------------------------------------------------
// The layer
// ---------------------------------------------------------------------------------------------

interface Exchange {
  readonly status: number
  readonly headers: Headers.Headers
  readonly text: string
  readonly url: URL
}

const REDIRECTS = new Set([301, 302, 303, 307, 308])

/** The GitLab service itself, on the `GitLabTransport` in context. */
export const make = (options?: GitLabClientOptions): Effect.Effect<GitLab["Service"], never, Transport.GitLabTransport> =>
  Effect.gen(function* () {
    const transport = yield* Transport.GitLabTransport
    return makeService(resolveOptions(options), transport)
  })

/** The GitLab service on a `GitLabTransport` from the context. */
export const layerNoTransport = (options?: GitLabClientOptions): Layer.Layer<GitLab, never, Transport.GitLabTransport> => Layer.effect(GitLab, make(options))

/** The GitLab service on undici's fetch (a dispatcher per distinct `caPem`). */
export const layer = (options?: GitLabClientOptions): Layer.Layer<GitLab> => layerNoTransport(options).pipe(Layer.provide(Transport.layer))

const makeService = (opts: ResolvedOptions, transport: Transport.GitLabTransport["Service"]): GitLab["Service"] => {
  const maxDelayMs = Duration.toMillis(opts.maxDelay)

  const context = (conn: Connection, target: Target): Effect.Effect<Ctx, GitLabError> =>
    Effect.gen(function* () {
      const base = baseUrl(conn)
      if (Result.isFailure(base)) return yield* base.failure
      if (typeof target.id !== "string" || target.id.trim() === "") {
        return yield* new Invalid({ message: `the ${target.kind} id is empty` })
      }
      const client = yield* transport.client(conn.caPem === undefined || conn.caPem.trim() === "" ? undefined : conn.caPem)
      const url = base.success
      return {
        apiRoot: `${url.origin}${url.pathname.replace(/\/+$/, "")}/api/v4`,
        origin: url.origin,
        client,
        accessToken: conn.accessToken,
        secrets: [Redacted.value(conn.accessToken)],
        targetPath: targetPath(target),
        target,
      }
    })

  /** One HTTP exchange: send, read the whole answer, within the request timeout. */
  const exchangeOnce = (ctx: Ctx, info: RequestInfo, url: URL, body: unknown): Effect.Effect<Exchange, Failure> => {
    let request = HttpClientRequest.make(info.method)(url.href).pipe(
      HttpClientRequest.setHeaders({
        "PRIVATE-TOKEN": Redacted.value(ctx.accessToken),
        "User-Agent": opts.userAgent,
        Accept: "application/json",
      }),
    )
    if (body !== undefined) request = HttpClientRequest.bodyJsonUnsafe(request, body)
    return ctx.client.execute(request).pipe(
      Effect.flatMap((response) => Effect.map(response.text, (text): Exchange => ({ status: response.status, headers: response.headers, text, url }))),
      Effect.mapError((error): Failure => {
        const reason = HttpClientError.isHttpClientError(error) ? error.reason : undefined
        if (reason?._tag === "InvalidUrlError" || reason?._tag === "EncodeError") {
          return {
            error: new Invalid({ message: `${info.method} ${info.path}: the request could not be built (${reason._tag})` }),
            retryable: false,
            summary: reason._tag,
          }
        }
        return classifyNetwork(info, ctx.origin, reason !== undefined && "cause" in reason ? reason.cause : error)
      }),
      Effect.timeoutOrElse({
        duration: opts.requestTimeout,
        orElse: () => Effect.fail(timeoutFailure(info, ctx.origin, opts.requestTimeout)),
      }),
      Effect.tap((ex) => Effect.logDebug(`GitLab ${info.method} ${info.path}${url.search} answered ${ex.status}`)),
      Effect.updateService(Headers.CurrentRedactedNames, (names) => (names.includes("private-token") ? names : [...names, "private-token"])),
      manualRedirects,
    )
  }

  /** An exchange that follows same-origin redirects on GET (and nothing else). */
  const exchange = (ctx: Ctx, info: RequestInfo, url: URL, body: unknown, hops = 0): Effect.Effect<Exchange, Failure> =>
    Effect.flatMap(exchangeOnce(ctx, info, url, body), (ex) => {
      if (info.method !== "GET" || !REDIRECTS.has(ex.status) || hops >= opts.maxRedirects) return Effect.succeed(ex)
      const location = ex.headers.location
      if (location === undefined) return Effect.succeed(ex)
      let next: URL
      try {
        next = new URL(location, url)
      } catch {
        return Effect.succeed(ex)
      }
      if (next.origin !== ctx.origin) return Effect.succeed(ex)
      if (next.search === "") next.search = url.search
      return Effect.logDebug(`GitLab ${info.method} ${info.path}: following ${ex.status} redirect within ${ctx.origin} to ${next.pathname}`).pipe(
        Effect.andThen(exchange(ctx, info, next, body, hops + 1)),
      )
    })

  const retrySchedule = (info: RequestInfo) =>
    Schedule.exponential(opts.baseDelay).pipe(
      Schedule.jittered,
      Schedule.setInputType<Failure>(),
      Schedule.while(
        ({ input, attempt }) => input.retryable && attempt < opts.maxAttempts && (input.retryAfterMs === undefined || input.retryAfterMs <= maxDelayMs),
      ),
      Schedule.modifyDelay(({ input, duration }) =>
        Effect.succeed(input.retryAfterMs !== undefined ? Duration.millis(input.retryAfterMs) : Duration.min(duration, opts.maxDelay)),
      ),
      Schedule.tap(({ input, attempt, duration }) => {
        const delayMs = Math.round(Duration.toMillis(duration))
        const line = `GitLab ${info.method} ${info.path}: ${input.summary}; attempt ${attempt}/${opts.maxAttempts}, retrying in ${delayMs} ms`
        const annotations = { method: info.method, path: info.path, status: input.status ?? "none", attempt, delayMs }
        return (input.status === 429 ? Effect.logInfo(line) : Effect.logDebug(line)).pipe(Effect.annotateLogs(annotations))
      }),
    )

  /**
   * Runs a request with retries. `accept` reads a 2xx answer; anything else is classified. The
   * error that comes out is scrubbed of the access token (and `extraSecrets`).
   */
  const call = <A>(
    ctx: Ctx,
    info: RequestInfo,
    url: URL,
    body: unknown,
    accept: (ex: Exchange, nowMs: number) => Result.Result<A, Failure>,
  ): Effect.Effect<A, GitLabError> =>
    Effect.suspend(() => {
      let attempts = 0
      const attempt = Effect.gen(function* () {
        attempts++
        const ex = yield* exchange(ctx, info, url, body)
        const nowMs = yield* Clock.currentTimeMillis
        if (ex.status >= 200 && ex.status < 300) {
          const result = accept(ex, nowMs)
          return Result.isSuccess(result) ? result.success : yield* Effect.fail(result.failure)
        }
        return yield* Effect.fail(classifyStatus(info, ex.status, ex.headers, parseErrorBody(ex.text, ex.headers["content-type"]), nowMs, ex.url))
      })
      return attempt.pipe(
        Effect.retry(retrySchedule(info)),
        Effect.mapError((failure) => {
          let error = failure.error
          if (error._tag === "RateLimited" && failure.retryAfterMs === undefined) {
            // No hint from GitLab: suggest the wait the back-off would have used next.
            const next = Math.min(Duration.toMillis(opts.baseDelay) * 2 ** attempts, maxDelayMs)
            error = new RateLimited({ message: error.message, retryAfterMs: Math.round(next) })
          }
          if (failure.retryable) {
            const note =
              failure.retryAfterMs !== undefined && failure.retryAfterMs > maxDelayMs
                ? `; not retried, as that is longer than the ${secondsText(maxDelayMs)} this client waits`
                : `; gave up after ${attempts} attempt${attempts === 1 ? "" : "s"}`
            error = withMessage(error, `${error.message}${note}`)
          }
          return scrub(error, ctx.secrets)
        }),
      )
    })

  const info = (ctx: Ctx, method: Method, path: string, tokenId?: number): RequestInfo => ({
    method,
    path: `${ctx.targetPath}${path}`,
    kind: ctx.target.kind,
    targetId: ctx.target.id,
    tokenId,
  })

  const urlOf = (ctx: Ctx, path: string, params?: Record<string, string>): URL => {
    const url = new URL(`${ctx.apiRoot}${ctx.targetPath}${path}`)
    for (const [k, v] of Object.entries(params ?? {})) url.searchParams.set(k, v)
    return url
  }

  // -------------------------------------------------------------------------------------------

  const create = (conn: Connection, target: Target, req: CreateRequest): Effect.Effect<MintedToken, GitLabError> =>
    Effect.gen(function* () {
      const ctx = yield* context(conn, target)
      const body: Record<string, unknown> = { name: req.name, scopes: [...req.scopes] }
      if (req.username !== undefined) body.username = req.username
      if (req.expiresAt !== undefined) body.expires_at = req.expiresAt
      const i = info(ctx, "POST", "/deploy_tokens")
      return yield* call(ctx, i, urlOf(ctx, "/deploy_tokens"), body, (ex, nowMs): Result.Result<MintedToken, Failure> => {
        const json = parseJson(ex.text)
        if (Result.isFailure(json)) return Result.fail(unreadable(i, ex.status, "its answer is not JSON"))
        const entity = decodeEntity(json.success, nowMs)
        if (typeof entity === "string") return Result.fail(unreadable(i, ex.status, `its answer is malformed (${entity})`))
        const token = (json.success as { token?: unknown }).token
        if (typeof token !== "string" || token === "") {
          return Result.fail(
            unreadable(i, ex.status, `its answer carries no token value for deploy token ${entity.id}, which exists now and should be revoked`),
          )
        }
        return Result.succeed({ ...entity, token: Redacted.make(token) })
      })
    }).pipe(Effect.withSpan("GitLab.create", { attributes: { target: `${target.kind}:${target.id}` } }))

  const revokeWith = (ctx: Ctx, tokenId: number): Effect.Effect<void, GitLabError> => {
    const path = `/deploy_tokens/${tokenId}`
    return call(ctx, info(ctx, "DELETE", path, tokenId), urlOf(ctx, path), undefined, () => Result.succeed(undefined))
  }

  const revoke = (conn: Connection, target: Target, tokenId: number): Effect.Effect<void, GitLabError> =>
    Effect.gen(function* () {
      if (!Number.isSafeInteger(tokenId) || tokenId < 0) {
        return yield* new Invalid({ message: `deploy token id must be a non-negative integer (got ${String(tokenId)})` })
      }
      const ctx = yield* context(conn, target)
      return yield* revokeWith(ctx, tokenId)
    }).pipe(Effect.withSpan("GitLab.revoke", { attributes: { target: `${target.kind}:${target.id}`, tokenId } }))

  const listWith = (ctx: Ctx): Effect.Effect<ReadonlyArray<DeployToken>, GitLabError> =>
    Effect.gen(function* () {
      const i = info(ctx, "GET", "/deploy_tokens")
      const byId = new Map<number, DeployToken>()
      let page: number | undefined = 1
      for (let n = 0; page !== undefined && n < MAX_PAGES; n++) {
        const current: number = page
        const url = urlOf(ctx, "/deploy_tokens", { per_page: String(PER_PAGE), page: String(current) })
        const result: { items: ReadonlyArray<DeployToken>; next: number | undefined } = yield* call(ctx, i, url, undefined, (ex, nowMs) => {
          const json = parseJson(ex.text)
          if (Result.isFailure(json) || !Array.isArray(json.success)) {
            return Result.fail(unreadable(i, ex.status, `page ${current} is not a JSON array`))
          }
          const items: Array<DeployToken> = []
          for (const u of json.success) {
            const entity = decodeEntity(u, nowMs)
            if (typeof entity === "string") return Result.fail(unreadable(i, ex.status, `page ${current} is malformed (${entity})`))
            items.push(entity)
          }
          return Result.succeed({ items, next: nextPage(ex.headers, current, items.length) })
        })
        for (const t of result.items) byId.set(t.id, t)
        page = result.next
      }
      return [...byId.values()].sort((a, b) => a.id - b.id)
    })

  const list = (conn: Connection, target: Target): Effect.Effect<ReadonlyArray<DeployToken>, GitLabError> =>
    Effect.flatMap(context(conn, target), listWith).pipe(Effect.withSpan("GitLab.list", { attributes: { target: `${target.kind}:${target.id}` } }))

  const resolveTarget = (conn: Connection, target: Target): Effect.Effect<Target, GitLabError> =>
    Effect.gen(function* () {
      if (/^\d+$/.test(target.id)) return target
      const ctx = yield* context(conn, target)
      const i = info(ctx, "GET", "")
      // A moved project answers 301 to its numeric id on GET, which `exchange` follows within the origin.
      return yield* call(ctx, i, urlOf(ctx, ""), undefined, (ex): Result.Result<Target, Failure> => {
        const json = parseJson(ex.text)
        const id = Result.isSuccess(json) && typeof json.success === "object" && json.success !== null ? (json.success as { id?: unknown }).id : undefined
        return isInt(id) && id > 0
          ? Result.succeed({ kind: target.kind, id: String(id) })
          : Result.fail(unreadable(i, ex.status, `the ${target.kind} has no numeric id in the answer`))
      })
    }).pipe(Effect.withSpan("GitLab.resolveTarget", { attributes: { target: `${target.kind}:${target.id}` } }))

  const preflight = (conn: Connection, target: Target): Effect.Effect<AccessReport, GitLabError> =>
    Effect.gen(function* () {
      const ctx = yield* context(conn, target)
      const tokens = yield* listWith(ctx)
      // No token has id 0: 404 "Not found" means we got past the permission check, 403 that we did not.
      return yield* revokeWith(ctx, 0).pipe(
        Effect.as<AccessReport>({ tokenCount: tokens.length, canManage: true }),
        Effect.catchTags({
          TokenNotFound: () => Effect.succeed<AccessReport>({ tokenCount: tokens.length, canManage: true }),
          Forbidden: (e) => Effect.succeed<AccessReport>({ tokenCount: tokens.length, canManage: false, reason: forbiddenReason(e.message) }),
        }),
      )
    }).pipe(Effect.withSpan("GitLab.preflight", { attributes: { target: `${target.kind}:${target.id}` } }))

  return GitLab.of({ create, revoke, list, resolveTarget, preflight })
}

/** `GitLab answered 403 Forbidden for DELETE /…: role too low: …` → `role too low: …`. */
const forbiddenReason = (message: string): string => {
  const at = message.indexOf(": ")
  return at === -1 ? message : message.slice(at + 2)
}
