/** GitLab's error bodies, in either of their shapes, read into one line of GitLab's own words. */

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

/** One line, at most 300 characters: what an error message may quote of an answer. */
export const clip = (s: string): string => {
  const flat = s.replace(/\s+/g, " ").trim()
  return flat.length > MAX_TEXT ? `${flat.slice(0, MAX_TEXT)}…` : flat
}

const asText = (v: unknown): string | undefined => (v === undefined || v === null ? undefined : typeof v === "string" ? v : JSON.stringify(v))

const fromJson = (json: unknown, raw: string): ErrorBody => {
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
  return { text: clip(raw) }
}

export const parseErrorBody = (text: string, contentType: string | undefined): ErrorBody => {
  const trimmed = text.trim()
  if (trimmed === "") return {}
  let json: unknown
  try {
    json = JSON.parse(trimmed)
  } catch {
    if ((contentType ?? "").includes("html") || /^<(!doctype|html)/i.test(trimmed)) return { html: true }
    return { text: clip(trimmed.split("\n")[0] ?? "") }
  }
  return fromJson(json, trimmed)
}

/** GitLab's words, in one line: `message`, else `error: error_description`, else the raw text. */
export const gitlabText = (body: ErrorBody): string | undefined => {
  if (body.message !== undefined) return body.message
  if (body.error !== undefined) return body.errorDescription === undefined ? body.error : `${body.error}: ${body.errorDescription}`
  if (body.text !== undefined && body.text !== "") return body.text
  if (body.html) return "an HTML page instead of JSON (is the URL a GitLab API, or is a proxy in the way?)"
  return undefined
}
