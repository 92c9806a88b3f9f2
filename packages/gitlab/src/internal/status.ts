/**
 * A non-success HTTP status turned into core's typed error: one table row per status (or range),
 * each a small function of the answer. Messages name the method, the path, the status and
 * GitLab's own words, and say what to do.
 */
import { Forbidden, type GitLabError, Invalid, Moved, RateLimited, TargetNotFound, TokenNotFound, Unauthorized, Unavailable } from "@gldt/core/Errors"
import type { Headers } from "effect/http"
import { type ErrorBody, gitlabText } from "./errorBody.ts"
import { type Failure, POSSIBLY_CREATED, type RequestInfo } from "./request.ts"
import { retryAfterMs, secondsText } from "./retryHints.ts"

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

/** Statuses after which a GET or DELETE may be tried again. */
const TRANSIENT_STATUS = new Set([408, 500, 502, 503, 504])

/** One answer, with what every row needs to word its error. */
interface Answer {
  readonly info: RequestInfo
  readonly status: number
  readonly headers: Headers.Headers
  readonly body: ErrorBody
  readonly nowMs: number
  readonly requestUrl: URL
  /** `GitLab answered 403 Forbidden for DELETE /projects/…`. */
  readonly head: string
  /** GitLab's own words, if it gave any. */
  readonly said: string | undefined
  /** The `Location` header resolved against the request URL, if it is a URL at all. */
  readonly location: URL | undefined
}

const plain = (a: Answer, error: GitLabError): Failure => ({ error, retryable: false, summary: `answered ${statusLine(a.status)}`, status: a.status })

const resolveLocation = (headers: Headers.Headers, requestUrl: URL): URL | undefined => {
  const raw = headers.location
  if (raw === undefined || raw.trim() === "") return undefined
  try {
    return new URL(raw, requestUrl)
  } catch {
    return undefined
  }
}

const refused = (a: Answer): Failure => plain(a, new Invalid({ message: `${a.head}: ${a.said ?? "the request was refused"}` }))

const unauthorized = (a: Answer): Failure => {
  const why = (): string => {
    if (a.body.errorDescription !== undefined) return `the access token was refused (${a.body.errorDescription})`
    if (a.said !== undefined && a.said !== "401 Unauthorized") return `the access token was refused (${a.said})`
    return "the access token is unknown, expired or revoked"
  }
  return plain(a, new Unauthorized({ message: `${a.head}: ${why()}` }))
}

const FORBIDDEN_WHY = {
  scope: { GET: "access token lacks the api or read_api scope", write: "access token lacks the api scope" },
  role: { GET: "role too low: listing deploy tokens needs Maintainer", write: "role too low: need Maintainer on a project, Owner on a group" },
} as const

const forbidden = (a: Answer): Failure => {
  const insufficientScope = a.body.error === "insufficient_scope"
  const why = FORBIDDEN_WHY[insufficientScope ? "scope" : "role"][a.info.method === "GET" ? "GET" : "write"]
  const extra = !insufficientScope && a.said !== undefined && a.said !== "403 Forbidden" ? ` (GitLab: ${a.said})` : ""
  return plain(a, new Forbidden({ message: `${a.head}: ${why}${extra}`, insufficientScope }))
}

const notFound = (a: Answer): Failure => {
  // Only GitLab's exact "404 Not found" for a token id means the token is gone (I5).
  if (a.info.tokenId !== undefined && a.body.message === "404 Not found") return plain(a, new TokenNotFound({ tokenId: a.info.tokenId }))
  const why = (): string => {
    if (a.body.message === "404 Project Not Found" || a.body.message === "404 Group Not Found") {
      return `${a.info.kind} ${a.info.targetId} does not exist or is not visible to this access token`
    }
    if (a.body.error === "404 Not Found") return "no API route matched; check the GitLab URL (including any path prefix) and the target id"
    if (a.said === undefined) return "not found; check that the URL points at GitLab (including any path prefix)"
    return `not found (${a.said})`
  }
  return plain(a, new TargetNotFound({ message: `${a.head}: ${why()}` }))
}

const movedProject = (a: Answer): Failure =>
  plain(
    a,
    new Moved({
      message: `${a.head}: the ${a.info.kind} was renamed or moved and GitLab refuses writes to its old path; use its numeric id${a.said === undefined ? "" : ` (GitLab: ${a.said})`}`,
      location: a.location?.href,
    }),
  )

const redirect = (a: Answer): Failure => {
  const where = a.location === undefined ? "without a usable Location" : `to ${a.location.href}`
  const why = (): string => {
    if (a.location === undefined) return "nothing to follow; if the project moved, use its numeric id"
    if (a.location.origin !== a.requestUrl.origin) {
      return `a redirect to another origin is not followed, so the access token was not sent there; if ${a.location.origin} is the right GitLab, use it as the URL`
    }
    if (a.info.method === "GET") return "too many redirects; if the project moved, use its numeric id"
    return "redirects are not followed for writes; if the project moved, use its numeric id"
  }
  return plain(a, new Moved({ message: `${a.head} ${where}: ${why()}`, location: a.location?.href }))
}

const rateLimited = (a: Answer): Failure => {
  const wait = retryAfterMs(a.headers, a.nowMs)
  const when = wait === undefined ? "" : `; GitLab asks to wait ${secondsText(wait)}`
  return {
    error: new RateLimited({ message: `${a.head}: rate limited${when}`, retryAfterMs: wait ?? 0 }),
    retryable: true,
    retryAfterMs: wait,
    summary: `answered ${statusLine(a.status)}`,
    status: a.status,
  }
}

const unavailable = (a: Answer): Failure => {
  const isPost = a.info.method === "POST"
  const detail = a.said === undefined || a.said === `${a.status} ${PHRASES[a.status] ?? ""}`.trim() ? "" : ` (${a.said})`
  return {
    error: new Unavailable({ message: `${a.head}${detail}${isPost ? `; ${POSSIBLY_CREATED}` : ""}`, maybeApplied: isPost }),
    // A create that reached GitLab's application is never re-sent: it may have been applied.
    retryable: !isPost && TRANSIENT_STATUS.has(a.status),
    retryAfterMs: a.status === 503 ? retryAfterMs(a.headers, a.nowMs) : undefined,
    summary: `answered ${statusLine(a.status)}`,
    status: a.status,
  }
}

const unexpected = (a: Answer): Failure => {
  const isPost = a.info.method === "POST"
  return plain(a, new Unavailable({ message: `${a.head}: unexpected status${isPost ? `; ${POSSIBLY_CREATED}` : ""}`, maybeApplied: isPost }))
}

/** First matching row wins. */
const STATUS_TABLE: ReadonlyArray<readonly [(status: number) => boolean, (a: Answer) => Failure]> = [
  [(s) => s === 400, refused],
  [(s) => s === 401, unauthorized],
  [(s) => s === 403, forbidden],
  [(s) => s === 404, notFound],
  [(s) => s === 405, movedProject],
  [(s) => s >= 300 && s < 400, redirect],
  [(s) => s === 429, rateLimited],
  [(s) => s >= 500 || s === 408, unavailable],
  [(s) => s >= 400, refused],
]

/** Classifies a non-success status of a request sent to `requestUrl`. */
export const classifyStatus = (info: RequestInfo, status: number, headers: Headers.Headers, body: ErrorBody, nowMs: number, requestUrl: URL): Failure => {
  const answer: Answer = {
    info,
    status,
    headers,
    body,
    nowMs,
    requestUrl,
    head: `GitLab answered ${statusLine(status)} for ${info.method} ${info.path}`,
    said: gitlabText(body),
    location: resolveLocation(headers, requestUrl),
  }
  const row = STATUS_TABLE.find(([matches]) => matches(status))
  return (row?.[1] ?? unexpected)(answer)
}
