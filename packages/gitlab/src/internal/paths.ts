/** Where a request goes: the instance's base URL, the escaped target, the next page of a list. */
import { Invalid } from "@gldt/core/Errors"
import type { Connection } from "@gldt/core/GitLab"
import type { Target } from "@gldt/core/Spec"
import { Result } from "effect"
import type { Headers } from "effect/http"

/** `group/sub/project` → `group%2Fsub%2Fproject`; a numeric id as it is. */
export const escapeId = (id: string): string => (/^\d+$/.test(id) ? id : encodeURIComponent(id))

export const targetPath = (target: Target): string => `/${target.kind === "project" ? "projects" : "groups"}/${escapeId(target.id)}`

/** Checks the connection before any request; the result is `scheme://host[:port]/prefix`. */
export const baseUrl = (conn: Pick<Connection, "url" | "allowHttp">): Result.Result<URL, Invalid> => {
  let url: URL
  try {
    url = new URL(conn.url.trim())
  } catch {
    return Result.fail(new Invalid({ message: "the GitLab URL is not a valid absolute URL (expected e.g. https://gitlab.example.com)" }))
  }
  if (url.username !== "" || url.password !== "") {
    return Result.fail(new Invalid({ message: "the GitLab URL must not contain credentials; pass the access token separately" }))
  }
  if (url.protocol === "http:" && conn.allowHttp !== true) {
    return Result.fail(
      new Invalid({
        message: `refusing to send the access token over plain http to ${url.origin}; use https:// (or --allow-http for local tests only)`,
      }),
    )
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") {
    return Result.fail(new Invalid({ message: `the GitLab URL must use https:// (got ${url.protocol})` }))
  }
  if (url.search !== "" || url.hash !== "") {
    return Result.fail(new Invalid({ message: `the GitLab URL must not contain a query or fragment (${url.origin})` }))
  }
  // Trailing slashes go, and so does an `/api/v4` the caller included.
  url.pathname = url.pathname.replace(/\/+$/, "").replace(/\/api\/v4$/, "")
  return Result.succeed(url)
}

/** Page size for list; GitLab caps `per_page` at 100. */
export const PER_PAGE = 100

/** The page after `page`: `X-Next-Page` when present (empty means none), else guessed from the count. */
export const nextPage = (headers: Headers.Headers, page: number, count: number): number | undefined => {
  if (count === 0) return undefined
  const header = headers["x-next-page"]
  if (header !== undefined) {
    const trimmed = header.trim()
    if (trimmed === "") return undefined
    const n = Number(trimmed)
    return Number.isSafeInteger(n) && n > page ? n : undefined
  }
  return count >= PER_PAGE ? page + 1 : undefined
}
