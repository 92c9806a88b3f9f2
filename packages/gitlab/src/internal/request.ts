/** What a request is for, and what one failed attempt at it amounts to. */
import type { GitLabError } from "@gldt/core/Errors"

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

/** Appended to every message about a create whose outcome is unknown. */
export const POSSIBLY_CREATED = "the deploy token may have been created; list the target's tokens to find out"
