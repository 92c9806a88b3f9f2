/** Response values produced by handlers; the server writes them out. */

export interface Reply {
  readonly status: number
  readonly headers: Record<string, string>
  readonly body: string | Buffer
}

export const json = (status: number, value: unknown, headers: Record<string, string> = {}): Reply => ({
  status,
  headers: { "content-type": "application/json", ...headers },
  body: JSON.stringify(value),
})

export const text = (status: number, body: string, headers: Record<string, string> = {}, contentType = "text/plain; charset=utf-8"): Reply => ({
  status,
  headers: { "content-type": contentType, ...headers },
  body,
})

export const empty = (status: number, headers: Record<string, string> = {}): Reply => ({ status, headers, body: "" })

/** `render_api_error!`: `{"message": …}`. */
export const message = (status: number, msg: string, headers: Record<string, string> = {}): Reply => json(status, { message: msg }, headers)

/** Grape `error!` with a string: `{"error": …}`. */
export const error = (status: number, err: string, headers: Record<string, string> = {}): Reply => json(status, { error: err }, headers)

export const UNAUTHORIZED = (): Reply => message(401, "401 Unauthorized")
export const FORBIDDEN = (): Reply => message(403, "403 Forbidden")
export const PROJECT_NOT_FOUND = (): Reply => message(404, "404 Project Not Found")
export const GROUP_NOT_FOUND = (): Reply => message(404, "404 Group Not Found")
export const RECORD_NOT_FOUND = (): Reply => message(404, "404 Not found")
export const ROUTE_NOT_FOUND = (): Reply => error(404, "404 Not Found")
export const INTERNAL_ERROR = (): Reply => message(500, "500 Internal Server Error")

const GATEWAY_TITLES: Record<number, string> = {
  502: "502 Bad Gateway",
  503: "503 Service Unavailable",
  504: "504 Gateway Time-out",
}

/** What a 5xx looks like: Rails' JSON 500, or a proxy's HTML page for 502/503/504. */
export const serverError = (status: number, body?: string): Reply => {
  if (body !== undefined) return text(status, body)
  if (status === 500) return INTERNAL_ERROR()
  const title = GATEWAY_TITLES[status] ?? `${status} Server Error`
  return text(
    status,
    `<html>\r\n<head><title>${title}</title></head>\r\n<body>\r\n<center><h1>${title}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n`,
    {},
    "text/html",
  )
}

export interface RateLimitInfo {
  readonly name: string
  /** Limit normalised to a 60 s window: `ceil(limit * 60 / period)`. */
  readonly limit: number
  readonly observed: number
  readonly remaining: number
  /** Unix seconds at which the window resets. */
  readonly resetAt: number
  readonly retryAfter: number
}

export const rateLimitHeaders = (info: RateLimitInfo): Record<string, string> => ({
  "RateLimit-Name": info.name,
  "RateLimit-Limit": String(info.limit),
  "RateLimit-Observed": String(info.observed),
  "RateLimit-Remaining": String(info.remaining),
  "RateLimit-Reset": String(info.resetAt),
})

/** Rack::Attack's throttled response (row 41). */
export const tooManyRequests = (info: RateLimitInfo): Reply =>
  text(
    429,
    "Retry later\n",
    {
      ...rateLimitHeaders(info),
      "RateLimit-ResetTime": new Date(info.resetAt * 1000).toUTCString(),
      "Retry-After": String(info.retryAfter),
    },
    "text/plain",
  )
