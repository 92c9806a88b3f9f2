/** GitLab offset pagination (Kaminari + OffsetHeaderBuilder). */
import { type ParamValue, toQuery } from "./params.ts"

export const DEFAULT_PER_PAGE = 20
export const MAX_PER_PAGE = 100
/** Above this many rows GitLab omits X-Total, X-Total-Pages and rel="last". */
export const MAX_COUNT_LIMIT = 10_000

export interface PageRequest {
  /** Coerced `page` param (may be absent). */
  readonly page: number | undefined
  /** Coerced `per_page` param (may be absent, may exceed the cap). */
  readonly perPage: number | undefined
  /** Request params for the Link header (query params + route params), without page/per_page. */
  readonly linkParams: Readonly<Record<string, ParamValue | undefined>>
  /** Absolute URL of the request path, built from the configured base URL. */
  readonly baseUrl: string
}

export interface Page<T> {
  readonly items: readonly T[]
  readonly headers: Record<string, string>
}

export const paginate = <T>(all: readonly T[], req: PageRequest): Page<T> => {
  const requestedPage = req.page ?? 1
  const requestedPerPage = req.perPage ?? DEFAULT_PER_PAGE
  const page = Math.max(requestedPage, 1)
  const perPage = requestedPerPage < 1 ? DEFAULT_PER_PAGE : Math.min(requestedPerPage, MAX_PER_PAGE)
  const offset = (page - 1) * perPage
  const items = all.slice(offset, offset + perPage)
  const total = all.length
  const withoutCount = total > MAX_COUNT_LIMIT

  let next: number | null
  let prev: number | null
  let totalPages: number | null = null
  if (withoutCount) {
    next = offset + perPage < total ? page + 1 : null
    prev = page > 1 && items.length > 0 ? page - 1 : null
  } else {
    const pages = Math.ceil(total / perPage)
    const outOfRange = page > pages
    next = !outOfRange && page < pages ? page + 1 : null
    prev = page > 1 && !outOfRange ? page - 1 : null
    totalPages = Math.max(pages, 1)
  }

  const href = (p: number): string => `${req.baseUrl}?${toQuery({ ...req.linkParams, page: p, per_page: requestedPerPage })}`
  const links: string[] = []
  if (prev !== null) links.push(`<${href(prev)}>; rel="prev"`)
  if (next !== null) links.push(`<${href(next)}>; rel="next"`)
  links.push(`<${href(1)}>; rel="first"`)
  if (totalPages !== null) links.push(`<${href(totalPages)}>; rel="last"`)

  const headers: Record<string, string> = {
    "X-Per-Page": String(perPage),
    "X-Page": String(page),
    "X-Next-Page": next === null ? "" : String(next),
    "X-Prev-Page": prev === null ? "" : String(prev),
    Link: links.join(", "),
  }
  if (totalPages !== null) {
    headers["X-Total"] = String(total)
    headers["X-Total-Pages"] = String(totalPages)
  }
  return { items, headers }
}
