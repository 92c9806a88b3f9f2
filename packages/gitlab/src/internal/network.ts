/** Failures to get any answer (network, TLS, timeout) and success answers that cannot be read. */
import { Unavailable } from "@gldt/core/Errors"
import { Duration } from "effect"
import { clip } from "./errorBody.ts"
import { type Failure, POSSIBLY_CREATED, type RequestInfo } from "./request.ts"
import { statusLine } from "./status.ts"

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

const CODE_TEXT: Record<string, string> = {
  ECONNREFUSED: "connection refused",
  ENOTFOUND: "host name not found",
  EAI_NONAME: "host name not found",
  EAI_NODATA: "host name not found",
  EAI_AGAIN: "DNS lookup failed",
  EAI_FAIL: "DNS lookup failed",
  ECONNRESET: "connection reset",
  EPIPE: "connection closed while sending",
  ETIMEDOUT: "connection timed out",
}

const describeCode = (code: string): string => CODE_TEXT[code] ?? code

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
