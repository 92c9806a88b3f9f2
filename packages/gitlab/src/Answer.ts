/**
 * Turning GitLab's answers (and failures to get one) into core's typed errors.
 *
 * Messages are built from the method, the API path (with the escaped target), the status and
 * GitLab's own error text. They never contain request headers or a create's `201` body, and every
 * message is scrubbed of the secrets the caller knows about before it leaves this package.
 */
import {
  Forbidden,
  type GitLabError,
  Invalid,
  Moved,
  RateLimited,
  TargetNotFound,
  TokenNotFound,
  Unauthorized,
  Unavailable,
} from "@gldt/core/Errors"
import { Duration, Result } from "effect"
import { Headers } from "effect/http"

export type Method = "GET" | "POST" | "DELETE"

/** What a request is for: enough to word an error, and nothing secret. */
export interface RequestInfo {
  readonly method: Method
  /** Path under `/api/v4`, target escaped, e.g. `/projects/group%2Fproject/deploy_tokens`. */
  readonly path: string
  readonly kind: "project" | "group"
  /** The target id as the caller gave it. */
  readonly targetId: string
  /** Set on `DELETE …/deploy_tokens/:id`. */
  readonly tokenId?: number | undefined
}

/** One failed attempt: the error to report, and whether (and when) another attempt may follow. */
export interface Failure {
  readonly error: GitLabError
  readonly retryable: boolean
  /** The server's own wait (`Retry-After`, `RateLimit-Reset`), when it gave one. */
  readonly retryAfterMs?: number | undefined
  /** Short text for logs: status or network condition, never a body. */
  readonly summary: string
  readonly status?: number | undefined
}

// ---------------------------------------------------------------------------------------------
// Bodies
// ---------------------------------------------------------------------------------------------

/** GitLab's error body, in either of its shapes, or a snippet of a non-JSON answer. */
export interface ErrorBody {
  readonly message?: string | undefined
  readonly error?: string | undefined
  readonly errorDescription?: string | undefined
  /** First line of a non-JSON, non-HTML answer. */
  readonly text?: string | undefined
  /** The answer was an HTML page (a proxy's or a login page). */
  readonly html?: boolean | undefined
}

const MAX_TEXT = 300

const clip = (s: string): string => {
  const flat = s.replace(/\s+/g, " ").trim()
  return flat.length > MAX_TEXT ? `${flat.slice(0, MAX_TEXT)}…` : flat
}

const asText = (v: unknown): string | undefined =>
  v === undefined || v === null ? undefined : typeof v === "string" ? v : JSON.stringify(v)

export const parseErrorBody = (text: string, contentType: string | undefined): ErrorBody => {
  const trimmed = text.trim()
  if (trimmed === "") return {}
  try {
    const json: unknown = JSON.parse(trimmed)
    if (typeof json === "string") return { message: clip(json) }
    if (typeof json === "object" && json !== null && !Array.isArray(json)) {
      const o = json as Record<string, unknown>
      const message = asText(o.message)
      const error = asText(o.error)
      const errorDescription = asText(o.error_description)
      if (message !== undefined || error !== undefined) {
        return {
          message: message === undefined ? undefined : clip(message),
          error: error === undefined ? undefined : clip(error),
          errorDescription: errorDescription === undefined ? undefined : clip(errorDescription),
        }
      }
    }
    return { text: clip(trimmed) }
  } catch {
    if ((contentType ?? "").includes("html") || /^<(!doctype|html)/i.test(trimmed)) return { html: true }
    return { text: clip(trimmed.split("\n")[0] ?? "") }
  }
}

/** GitLab's words, in one line: `message`, else `error: error_description`, else the raw text. */
export const gitlabText = (body: ErrorBody): string | undefined => {
  if (body.message !== undefined) return body.message
  if (body.error !== undefined) return body.errorDescription === undefined ? body.error : `${body.error}: ${body.errorDescription}`
  if (body.text !== undefined && body.text !== "") return body.text
  if (body.html) return "an HTML page instead of JSON (is the URL a GitLab API, or is a proxy in the way?)"
  return undefined
}

// ---------------------------------------------------------------------------------------------
// Retry hints
// ---------------------------------------------------------------------------------------------

/**
 * The server's wait in ms: `Retry-After` (delta seconds or HTTP date), else `RateLimit-Reset`
 * (Unix seconds; a small number is read as seconds from now), else `RateLimit-ResetTime` (HTTP date).
 */
export const retryAfterMs = (headers: Headers.Headers, nowMs: number): number | undefined => {
  const retryAfter = headers["retry-after"]
  if (retryAfter !== undefined) {
    const parsed = Headers.parseRetryAfter(retryAfter)
    if (Result.isSuccess(parsed)) return Math.max(0, Math.ceil(Duration.toMillis(Headers.retryAfterDelay(parsed.success, nowMs))))
  }
  const reset = headers["ratelimit-reset"]
  if (reset !== undefined && /^\s*\d+(\.\d+)?\s*$/.test(reset)) {
    const n = Number(reset)
    if (n > 1_000_000_000) return Math.max(0, Math.ceil(n * 1000 - nowMs))
    if (n >= 0) return Math.ceil(n * 1000)
  }
  const resetTime = headers["ratelimit-resettime"]
  if (resetTime !== undefined) {
    const at = Date.parse(resetTime)
    if (!Number.isNaN(at)) return Math.max(0, at - nowMs)
  }
  return undefined
}

// ---------------------------------------------------------------------------------------------
// Status answers
// ---------------------------------------------------------------------------------------------

const PHRASES: Record<number, string> = {
  301: "Moved Permanently",
  302: "Found",
  303: "See Other",
  307: "Temporary Redirect",
  308: "Permanent Redirect",
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  408: "Request Timeout",
  409: "Conflict",
  422: "Unprocessable Entity",
  429: "Too Many Requests",
  500: "Internal Server Error",
  501: "Not Implemented",
  502: "Bad Gateway",
  503: "Service Unavailable",
  504: "Gateway Timeout",
}

export const statusLine = (status: number): string => (PHRASES[status] === undefined ? `${status}` : `${status} ${PHRASES[status]}`)

const prefix = (info: RequestInfo, status: number) => `GitLab answered ${statusLine(status)} for ${info.method} ${info.path}`

const POSSIBLY_CREATED = "the deploy token may have been created; list the target's tokens to find out"

const TRANSIENT_STATUS = new Set([408, 500, 502, 503, 504])

const secondsText = (ms: number) => (ms % 1000 === 0 ? `${ms / 1000} s` : `${(ms / 1000).toFixed(1)} s`)

/** The `Location` header resolved against the request URL, if it is a URL at all. */
const resolveLocation = (headers: Headers.Headers, requestUrl: URL): URL | undefined => {
  const raw = headers.location
  if (raw === undefined || raw.trim() === "") return undefined
  try {
    return new URL(raw, requestUrl)
  } catch {
    return undefined
  }
}

/** Classifies a non-success status of a request sent to `requestUrl`. */
export const classifyStatus = (
  info: RequestInfo,
  status: number,
  headers: Headers.Headers,
  body: ErrorBody,
  nowMs: number,
  requestUrl: URL,
): Failure => {
  const target = resolveLocation(headers, requestUrl)
  const location = target?.href
  const head = prefix(info, status)
  const said = gitlabText(body)
  const summary = `answered ${statusLine(status)}`
  const isPost = info.method === "POST"
  const plain = (error: GitLabError): Failure => ({ error, retryable: false, summary, status })

  if (status === 400) return plain(new Invalid({ message: `${head}: ${said ?? "the request was refused"}` }))

  if (status === 401) {
    const why =
      body.errorDescription !== undefined
        ? `the access token was refused (${body.errorDescription})`
        : said !== undefined && said !== "401 Unauthorized"
          ? `the access token was refused (${said})`
          : "the access token is unknown, expired or revoked"
    return plain(new Unauthorized({ message: `${head}: ${why}` }))
  }

  if (status === 403) {
    const insufficientScope = body.error === "insufficient_scope"
    const why = insufficientScope
      ? info.method === "GET"
        ? "access token lacks the api or read_api scope"
        : "access token lacks the api scope"
      : info.method === "GET"
        ? "role too low: listing deploy tokens needs Maintainer"
        : "role too low: need Maintainer on a project, Owner on a group"
    const extra = !insufficientScope && said !== undefined && said !== "403 Forbidden" ? ` (GitLab: ${said})` : ""
    return plain(new Forbidden({ message: `${head}: ${why}${extra}`, insufficientScope }))
  }

  if (status === 404) {
    if (info.tokenId !== undefined && body.message === "404 Not found") return plain(new TokenNotFound({ tokenId: info.tokenId }))
    const what = info.kind === "project" ? "project" : "group"
    const why =
      body.message === "404 Project Not Found" || body.message === "404 Group Not Found"
        ? `${what} ${info.targetId} does not exist or is not visible to this access token`
        : body.error === "404 Not Found"
          ? "no API route matched; check the GitLab URL (including any path prefix) and the target id"
          : said === undefined
            ? "not found; check that the URL points at GitLab (including any path prefix)"
            : `not found (${said})`
    return plain(new TargetNotFound({ message: `${head}: ${why}` }))
  }

  if (status === 405) {
    return plain(
      new Moved({
        message: `${head}: the ${info.kind} was renamed or moved and GitLab refuses writes to its old path; use its numeric id${said === undefined ? "" : ` (GitLab: ${said})`}`,
        location,
      }),
    )
  }

  if (status >= 300 && status < 400) {
    const where = location === undefined ? "without a usable Location" : `to ${location}`
    const why =
      target === undefined
        ? "nothing to follow; if the project moved, use its numeric id"
        : target.origin !== requestUrl.origin
        ? `a redirect to another origin is not followed, so the access token was not sent there; if ${target.origin} is the right GitLab, use it as the URL`
        : info.method === "GET"
          ? "too many redirects; if the project moved, use its numeric id"
          : "redirects are not followed for writes; if the project moved, use its numeric id"
    return plain(new Moved({ message: `${head} ${where}: ${why}`, location }))
  }

  if (status === 429) {
    const wait = retryAfterMs(headers, nowMs)
    const when = wait === undefined ? "" : `; GitLab asks to wait ${secondsText(wait)}`
    return {
      error: new RateLimited({ message: `${head}: rate limited${when}`, retryAfterMs: wait ?? 0 }),
      retryable: true,
      retryAfterMs: wait,
      summary,
      status,
    }
  }

  if (status >= 500 || status === 408) {
    const detail = said === undefined || said === `${status} ${PHRASES[status] ?? ""}`.trim() ? "" : ` (${said})`
    return {
      error: new Unavailable({
        message: `${head}${detail}${isPost ? `; ${POSSIBLY_CREATED}` : ""}`,
        maybeApplied: isPost,
      }),
      retryable: !isPost && TRANSIENT_STATUS.has(status),
      retryAfterMs: status === 503 ? retryAfterMs(headers, nowMs) : undefined,
      summary,
      status,
    }
  }

  if (status >= 400) return plain(new Invalid({ message: `${head}: ${said ?? "the request was refused"}` }))

  return plain(
    new Unavailable({
      message: `${head}: unexpected status${isPost ? `; ${POSSIBLY_CREATED}` : ""}`,
      maybeApplied: isPost,
    }),
  )
}

// ---------------------------------------------------------------------------------------------
// Network failures
// ---------------------------------------------------------------------------------------------

/**
 * Codes that can only come before a connection exists (name resolution, a refused connect). Used
 * only when the transport did not mark the error with its timing, and only on the outermost error.
 */
const PRE_CONNECT = new Set(["ECONNREFUSED", "ENOTFOUND", "EAI_AGAIN", "EAI_FAIL", "EAI_NONAME", "EAI_NODATA"])

const TLS_CODE = /^(ERR_TLS_|ERR_SSL_|CERT_|UNABLE_TO_|DEPTH_ZERO_|SELF_SIGNED_|HOSTNAME_MISMATCH|ERR_OSSL_)/

interface ErrorInfo {
  readonly code?: string | undefined
  readonly message?: string | undefined
  /** The transport's mark: could the request have been written when this failed? */
  readonly writable?: boolean | undefined
}

/** Every `code`/`message` along the `cause` chain and inside AggregateErrors, outermost first. */
export const errorChain = (cause: unknown): ReadonlyArray<ErrorInfo> => {
  const out: Array<ErrorInfo> = []
  const seen = new Set<unknown>()
  const visit = (e: unknown, depth: number) => {
    if (depth > 8 || e === null || typeof e !== "object" || seen.has(e)) return
    seen.add(e)
    const o = e as { code?: unknown; message?: unknown; cause?: unknown; errors?: unknown; gldtRequestWritable?: unknown }
    out.push({
      code: typeof o.code === "string" ? o.code : undefined,
      message: typeof o.message === "string" ? o.message : undefined,
      writable: typeof o.gldtRequestWritable === "boolean" ? o.gldtRequestWritable : undefined,
    })
    if (Array.isArray(o.errors)) for (const inner of o.errors) visit(inner, depth + 1)
    visit(o.cause, depth + 1)
  }
  visit(cause, 0)
  return out
}

const describeCode = (code: string): string => {
  switch (code) {
    case "ECONNREFUSED":
      return "connection refused"
    case "ENOTFOUND":
    case "EAI_NONAME":
    case "EAI_NODATA":
      return "host name not found"
    case "EAI_AGAIN":
    case "EAI_FAIL":
      return "DNS lookup failed"
    case "ECONNRESET":
      return "connection reset"
    case "EPIPE":
      return "connection closed while sending"
    case "ETIMEDOUT":
      return "connection timed out"
    default:
      return code
  }
}

/**
 * Whether a failed request certainly never reached the server: the connection was never established
 * and no byte was written. Decided by the transport's timing mark when present; without one, only a
 * resolver failure or a refused connect as the outermost coded error counts (codes deeper in the
 * cause chain, TLS and unreachable-host codes included, can come after the request went out).
 */
export const certainlyNotSent = (chain: ReadonlyArray<ErrorInfo>): boolean => {
  const mark = chain.find((e) => e.writable !== undefined)
  if (mark !== undefined) return mark.writable === false
  const outermost = chain.find((e) => e.code !== undefined)
  return outermost?.code !== undefined && PRE_CONNECT.has(outermost.code)
}

/** Classifies a failure to get any answer. `origin` is scheme://host:port, never with credentials. */
export const classifyNetwork = (info: RequestInfo, origin: string, cause: unknown): Failure => {
  const chain = errorChain(cause)
  const codes = chain.flatMap((e) => (e.code === undefined ? [] : [e.code]))
  const isPost = info.method === "POST"
  const head = `${info.method} ${info.path} to ${origin} failed`
  const notSent = certainlyNotSent(chain)
  const tls = codes.find((c) => TLS_CODE.test(c))
  if (tls !== undefined) {
    const detail = chain.find((e) => e.code === tls)?.message ?? tls
    return {
      error: new Unavailable({
        message: `${head}: TLS verification failed (${tls}: ${clip(detail)}); if GitLab uses a private CA, pass it as caPem${isPost && !notSent ? `; ${POSSIBLY_CREATED}` : ""}`,
        maybeApplied: isPost && !notSent,
      }),
      retryable: false,
      summary: `TLS ${tls}`,
    }
  }
  const code = codes[0]
  const what = code !== undefined ? describeCode(code) : clip(chain.find((e) => e.message !== undefined)?.message ?? "network error")
  if (notSent) {
    return {
      error: new Unavailable({ message: `${head} before sending: ${what}`, maybeApplied: false }),
      retryable: true,
      summary: what,
    }
  }
  return {
    error: new Unavailable({
      message: `${head}: ${what}${isPost ? `; ${POSSIBLY_CREATED}` : ""}`,
      maybeApplied: isPost,
    }),
    retryable: !isPost,
    summary: what,
  }
}

export const timeoutFailure = (info: RequestInfo, origin: string, timeout: Duration.Duration): Failure => {
  const isPost = info.method === "POST"
  return {
    error: new Unavailable({
      message: `${info.method} ${info.path} to ${origin} got no complete answer within ${Duration.format(timeout)}${isPost ? `; ${POSSIBLY_CREATED}` : ""}`,
      maybeApplied: isPost,
    }),
    retryable: !isPost,
    summary: "timed out",
  }
}

/** A success status whose body is not what GitLab sends. */
export const unreadable = (info: RequestInfo, status: number, what: string): Failure => {
  const isPost = info.method === "POST"
  return {
    error: new Unavailable({
      message: `GitLab answered ${statusLine(status)} for ${info.method} ${info.path} but ${what}${isPost ? `; ${POSSIBLY_CREATED}` : ""}`,
      maybeApplied: isPost,
    }),
    retryable: false,
    summary: `unreadable ${status}`,
    status,
  }
}

// ---------------------------------------------------------------------------------------------
// Scrubbing and notes
// ---------------------------------------------------------------------------------------------

const replaceAll = (s: string, secret: string) => (secret.length >= 4 ? s.split(secret).join("[REDACTED]") : s)

/** Returns the error with every secret removed from its message (a last line of defence). */
export const scrub = (error: GitLabError, secrets: ReadonlyArray<string>): GitLabError => {
  if (error._tag === "TokenNotFound") return error
  const clean = secrets.reduce(replaceAll, error.message)
  return clean === error.message ? error : withMessage(error, clean)
}

/** The same error with another message. */
export const withMessage = (error: GitLabError, message: string): GitLabError => {
  switch (error._tag) {
    case "Unauthorized":
      return new Unauthorized({ message })
    case "Forbidden":
      return new Forbidden({ message, insufficientScope: error.insufficientScope })
    case "TargetNotFound":
      return new TargetNotFound({ message })
    case "TokenNotFound":
      return error
    case "Invalid":
      return new Invalid({ message })
    case "RateLimited":
      return new RateLimited({ message, retryAfterMs: error.retryAfterMs })
    case "Moved":
      return new Moved({ message, location: error.location })
    case "Unavailable":
      return new Unavailable({ message, maybeApplied: error.maybeApplied })
  }
}

export { secondsText }
