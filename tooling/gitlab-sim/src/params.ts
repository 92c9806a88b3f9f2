/**
 * Grape-like parameter coercion (the subset used by the deploy-token API),
 * Rack-like form/query parsing and Ruby-like helpers.
 */

export type ParamValue = string | number | boolean | null | ParamValue[] | { readonly [key: string]: ParamValue }
export type Params = Record<string, ParamValue>

/**
 * Rack-style parsing of `key=value` pairs: `key[]` collects an array, a
 * repeated plain key keeps the last value.
 */
export const rackParams = (search: URLSearchParams, into: Params = {}): Params => {
  for (const [key, value] of search) {
    if (key.endsWith("[]")) {
      const base = key.slice(0, -2)
      const existing = into[base]
      if (Array.isArray(existing)) existing.push(value)
      else into[base] = [value]
    } else {
      into[key] = value
    }
  }
  return into
}

const TRUE_VALUES = new Set(["1", "on", "t", "true", "y", "yes"])
const FALSE_VALUES = new Set(["0", "off", "f", "false", "n", "no"])

export type Coerced<T> = { readonly ok: true; readonly value: T } | { readonly ok: false }

const invalid = { ok: false } as const

/** Grape Boolean coercion. `undefined`/`null`/`""` mean "not given". */
export const coerceBoolean = (value: ParamValue | undefined): Coerced<boolean | undefined> => {
  if (value === undefined || value === null || value === "") return { ok: true, value: undefined }
  if (typeof value === "boolean") return { ok: true, value }
  if (typeof value === "number") {
    if (value === 1) return { ok: true, value: true }
    if (value === 0) return { ok: true, value: false }
    return invalid
  }
  if (typeof value === "string") {
    const lower = value.toLowerCase()
    if (TRUE_VALUES.has(lower)) return { ok: true, value: true }
    if (FALSE_VALUES.has(lower)) return { ok: true, value: false }
  }
  return invalid
}

/** Grape Integer coercion. `undefined`/`null`/`""` mean "not given". */
export const coerceInteger = (value: ParamValue | undefined): Coerced<number | undefined> => {
  if (value === undefined || value === null || value === "") return { ok: true, value: undefined }
  if (typeof value === "number") return Number.isInteger(value) ? { ok: true, value } : invalid
  if (typeof value === "string" && /^\s*[+-]?\d+\s*$/.test(value)) {
    const n = Number.parseInt(value, 10)
    return Number.isSafeInteger(n) ? { ok: true, value: n } : { ok: true, value: Number.MAX_SAFE_INTEGER }
  }
  return invalid
}

/** Grape String coercion: numbers and booleans become strings; arrays/objects are invalid. */
export const coerceString = (value: ParamValue | undefined): Coerced<string | null | undefined> => {
  if (value === undefined) return { ok: true, value: undefined }
  if (value === null) return { ok: true, value: null }
  if (typeof value === "string") return { ok: true, value }
  if (typeof value === "number" || typeof value === "boolean") return { ok: true, value: String(value) }
  return invalid
}

/** Ruby `String#split(",")` (drops trailing empty fields) followed by `strip`. */
const splitComma = (value: string): string[] => {
  const parts = value.split(",")
  while (parts.length > 0 && parts[parts.length - 1] === "") parts.pop()
  return parts.map((p) => p.trim())
}

/**
 * `CommaSeparatedToArray` + `Array[String]`: a string is split on commas, an
 * array's string elements are split too. Returns null for a value that cannot
 * be coerced (Grape's "is invalid").
 */
export const coerceCommaSeparatedArray = (value: ParamValue): string[] | null => {
  if (typeof value === "string") return splitComma(value)
  if (Array.isArray(value)) {
    const out: string[] = []
    for (const item of value) {
      if (typeof item === "string") out.push(...splitComma(item))
      else if (typeof item === "number" || typeof item === "boolean") out.push(String(item))
      else return null
    }
    return out
  }
  return null
}

const DAYS_IN_MONTH = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]

const isLeap = (y: number): boolean => (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0

const utcMs = (y: number, mo: number, d: number, h: number, mi: number, s: number, ms: number): number => {
  const date = new Date(0)
  date.setUTCFullYear(y, mo - 1, d)
  date.setUTCHours(h, mi, s, ms)
  return date.getTime()
}

const ISO_RE = /^(\d{4})-?(\d{2})-?(\d{2})(?:[Tt ]+(\d{2}):?(\d{2})(?::?(\d{2})(?:[.,](\d+))?)?)?\s*(Z|z|UTC|[+-]\d{2}(?::?\d{2})?)?$/

/**
 * Approximates Ruby's `DateTime.parse` for the formats clients send: ISO 8601
 * dates and date-times (with or without offset; no offset means UTC), the
 * compact `YYYYMMDDTHHMMSSZ` form, and looser strings such as
 * `Jan 1 2030` or `2030/01/01` (read as UTC). Returns epoch ms or null.
 */
export const parseRubyDateTime = (input: string): number | null => {
  const s = input.trim()
  if (s === "") return null
  const m = ISO_RE.exec(s)
  if (m) {
    const y = Number(m[1])
    const mo = Number(m[2])
    const d = Number(m[3])
    const h = m[4] === undefined ? 0 : Number(m[4])
    const mi = m[5] === undefined ? 0 : Number(m[5])
    const sec = m[6] === undefined ? 0 : Number(m[6])
    const frac = m[7] === undefined ? 0 : Number(`0.${m[7]}`)
    if (mo < 1 || mo > 12) return null
    if (d < 1 || d > (DAYS_IN_MONTH[mo - 1] ?? 31) || (mo === 2 && d === 29 && !isLeap(y))) return null
    if (h > 23 || mi > 59 || sec > 60) return null
    let offsetMin = 0
    const zone = m[8]
    if (zone !== undefined && zone !== "Z" && zone !== "z" && zone !== "UTC") {
      const sign = zone.startsWith("-") ? -1 : 1
      const digits = zone.slice(1).replace(":", "")
      const oh = Number(digits.slice(0, 2))
      const om = digits.length > 2 ? Number(digits.slice(2, 4)) : 0
      if (oh > 23 || om > 59) return null
      offsetMin = sign * (oh * 60 + om)
    }
    return utcMs(y, mo, d, h, mi, Math.min(sec, 59), Math.floor(frac * 1000)) - offsetMin * 60_000
  }
  // Looser formats: require a 4-digit year so that "foo" or "12" are rejected.
  if (!/\d{4}/.test(s)) return null
  const hasZone = /(?:Z|UTC|GMT|[+-]\d{2}:?\d{2})\s*$/i.test(s)
  const parsed = Date.parse(hasZone ? s : `${s} UTC`)
  return Number.isFinite(parsed) ? parsed : null
}

/** ActiveSupport `Array#to_sentence` (English). */
export const toSentence = (items: readonly string[]): string => {
  if (items.length <= 1) return items[0] ?? ""
  if (items.length === 2) return `${items[0]} and ${items[1]}`
  return `${items.slice(0, -1).join(", ")}, and ${items[items.length - 1]}`
}

/** Ruby `CGI.escape`: unreserved `a-zA-Z0-9_.-~` kept, space as `+`. */
export const cgiEscape = (value: string): string =>
  encodeURIComponent(value)
    .replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)
    .replace(/%20/g, "+")

/** Rails `Hash#to_query`: `key=value` pairs (arrays as `key[]`), sorted. */
export const toQuery = (params: Readonly<Record<string, ParamValue | undefined>>): string => {
  const pairs: string[] = []
  for (const [key, value] of Object.entries(params)) {
    if (value === undefined) continue
    if (Array.isArray(value)) {
      for (const item of value) pairs.push(`${cgiEscape(`${key}[]`)}=${cgiEscape(item === null ? "" : String(item))}`)
    } else if (value === null) {
      pairs.push(`${cgiEscape(key)}=`)
    } else if (typeof value === "object") {
      pairs.push(`${cgiEscape(key)}=${cgiEscape(JSON.stringify(value))}`)
    } else {
      pairs.push(`${cgiEscape(key)}=${cgiEscape(String(value))}`)
    }
  }
  return pairs.sort().join("&")
}

/** Ruby-style character count (code points, not UTF-16 units). */
export const charLength = (value: string): number => {
  let n = 0
  for (const _ of value) n++
  return n
}
