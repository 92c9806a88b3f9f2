/**
 * The engine's configuration and roles: how request bodies become validated values, and how they
 * are stored and read back. Every refusal names the field and the fix. The access token is stored
 * (seal-wrapped where Vault supports it) and never returned.
 */
import { parseGoDuration } from "@gldt/core/GoDuration"
import { SCOPES, type Scope, USERNAME_PATTERN } from "@gldt/core/Spec"
import { VaultError } from "../vault/Logical.ts"

export interface EngineConfig {
  readonly url: string
  readonly token: string
  readonly caPem: string | undefined
  readonly defaultTtlMs: number | undefined
  readonly maxTtlMs: number | undefined
}

export interface Role {
  readonly target: { readonly kind: "project" | "group"; readonly id: string }
  readonly name: string
  readonly scopes: ReadonlyArray<Scope>
  readonly username: string | undefined
  readonly ttlMs: number | undefined
  readonly maxTtlMs: number | undefined
}

export const CONFIG_FIELDS = ["url", "token", "ca_pem", "default_ttl", "max_ttl"] as const
export const ROLE_FIELDS = ["project_id", "group_id", "name", "scopes", "username", "ttl", "max_ttl"] as const

export const ROLE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/

const bad = (problems: ReadonlyArray<string>): VaultError => new VaultError(400, problems.join("; "))

const refuseUnknown = (data: Record<string, unknown>, known: ReadonlyArray<string>, problems: string[]) => {
  for (const k of Object.keys(data)) {
    if (!known.includes(k)) problems.push(`${k}: unknown field; the fields are ${known.join(", ")}`)
  }
}

/** A TTL as Vault users write it: seconds (number or digits) or a duration such as "90m" or "1h30m". */
export const parseTtl = (field: string, value: unknown, problems: string[]): number | undefined => {
  if (value === undefined || value === null || value === "") return undefined
  if (typeof value === "number") {
    if (Number.isInteger(value) && value >= 0) return value * 1000
  } else if (typeof value === "string") {
    if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000
    const ms = parseGoDuration(value)
    if (ms !== undefined) return ms
  }
  problems.push(`${field}: ${JSON.stringify(value)} is not a duration; use seconds (3600) or a duration such as "1h" or "90m"`)
  return undefined
}

const text = (field: string, value: unknown, problems: string[]): string | undefined => {
  if (value === undefined || value === null) return undefined
  if (typeof value === "number" && Number.isFinite(value)) return String(value)
  if (typeof value !== "string") {
    problems.push(`${field}: must be a string`)
    return undefined
  }
  return value.trim() === "" ? undefined : value.trim()
}

const checkTtls = (ttl: number | undefined, max: number | undefined, names: readonly [string, string], problems: string[]) => {
  if (ttl !== undefined && max !== undefined && max > 0 && ttl > max) {
    problems.push(`${names[0]}: ${ttl / 1000}s is longer than ${names[1]} (${max / 1000}s); lower ${names[0]} or raise ${names[1]}`)
  }
}

/** Validates a write to `config`; `previous` keeps the stored token when the write omits it. */
export const parseConfig = (data: Record<string, unknown>, previous: EngineConfig | undefined): EngineConfig => {
  const problems: string[] = []
  refuseUnknown(data, CONFIG_FIELDS, problems)
  const urlText = text("url", data.url, problems) ?? previous?.url
  let url: string | undefined
  if (urlText === undefined) problems.push("url: is required, e.g. url=https://gitlab.example.com")
  else {
    try {
      const u = new URL(urlText)
      if (u.protocol === "http:") {
        problems.push(`url: ${urlText} uses plain http, which is refused: the access token must travel over TLS; use https:// (and ca_pem for a private CA)`)
      } else if (u.protocol !== "https:") problems.push(`url: ${urlText} is not an https URL`)
      else if (u.username || u.password) problems.push("url: must not carry credentials; put the access token in token")
      else url = `${u.origin}${u.pathname.replace(/\/+$/, "")}`
    } catch {
      problems.push(`url: ${JSON.stringify(urlText)} is not a URL; use e.g. https://gitlab.example.com`)
    }
  }
  const token = text("token", data.token, problems) ?? previous?.token
  if (token === undefined) problems.push("token: is required: a GitLab access token with the api scope (Maintainer on the project, Owner on the group)")
  const caPem = data.ca_pem === undefined ? previous?.caPem : text("ca_pem", data.ca_pem, problems)
  if (caPem !== undefined && !caPem.includes("-----BEGIN CERTIFICATE-----")) problems.push("ca_pem: must be a PEM bundle (-----BEGIN CERTIFICATE----- …)")
  const defaultTtlMs = data.default_ttl === undefined ? previous?.defaultTtlMs : parseTtl("default_ttl", data.default_ttl, problems)
  const maxTtlMs = data.max_ttl === undefined ? previous?.maxTtlMs : parseTtl("max_ttl", data.max_ttl, problems)
  checkTtls(defaultTtlMs, maxTtlMs, ["default_ttl", "max_ttl"], problems)
  if (problems.length > 0) throw bad(problems)
  return { url: url!, token: token!, caPem, defaultTtlMs, maxTtlMs }
}

/** What `read config` returns: everything but the access token. */
export const showConfig = (c: EngineConfig): Record<string, unknown> => ({
  url: c.url,
  ca_pem: c.caPem ?? "",
  default_ttl: Math.floor((c.defaultTtlMs ?? 0) / 1000),
  max_ttl: Math.floor((c.maxTtlMs ?? 0) / 1000),
})

const parseScopes = (value: unknown, problems: string[]): Scope[] => {
  let list: unknown[]
  if (Array.isArray(value)) list = value
  else if (typeof value === "string") list = value.split(",")
  else {
    problems.push(`scopes: is required: a list or a comma-separated string of ${SCOPES.join(", ")}`)
    return []
  }
  const scopes: Scope[] = []
  list.forEach((raw, i) => {
    const s = typeof raw === "string" ? raw.trim() : raw
    if (s === "") return
    if (typeof s !== "string" || !(SCOPES as ReadonlyArray<string>).includes(s)) {
      problems.push(`scopes[${i}]: ${JSON.stringify(s)} is not a deploy-token scope; use one of ${SCOPES.join(", ")}`)
    } else if (!scopes.includes(s as Scope)) scopes.push(s as Scope)
  })
  if (scopes.length === 0 && problems.length === 0) problems.push(`scopes: needs at least one of ${SCOPES.join(", ")}`)
  return scopes
}

export const parseRole = (roleName: string, data: Record<string, unknown>): Role => {
  const problems: string[] = []
  refuseUnknown(data, ROLE_FIELDS, problems)
  const project = text("project_id", data.project_id, problems)
  const group = text("group_id", data.group_id, problems)
  if ((project === undefined) === (group === undefined)) {
    problems.push("project_id, group_id: set exactly one: the numeric id or full path of the project or group the tokens belong to")
  }
  const name = text("name", data.name, problems) ?? `vault-${roleName}`
  if (name.length > 255) problems.push(`name: is ${name.length} characters long; shorten it to at most 255`)
  const scopes = parseScopes(data.scopes, problems)
  const username = text("username", data.username, problems)
  if (username !== undefined && (!USERNAME_PATTERN.test(username) || username.length > 255)) {
    problems.push("username: use letters, digits, '_', '-', '+' and '.' only, at most 255 characters")
  }
  const ttlMs = parseTtl("ttl", data.ttl, problems)
  const maxTtlMs = parseTtl("max_ttl", data.max_ttl, problems)
  checkTtls(ttlMs, maxTtlMs, ["ttl", "max_ttl"], problems)
  if (problems.length > 0) throw bad(problems)
  return {
    target: project !== undefined ? { kind: "project", id: project } : { kind: "group", id: group! },
    name,
    scopes,
    username,
    ttlMs,
    maxTtlMs,
  }
}

export const showRole = (r: Role): Record<string, unknown> => ({
  ...(r.target.kind === "project" ? { project_id: r.target.id } : { group_id: r.target.id }),
  name: r.name,
  scopes: [...r.scopes],
  username: r.username ?? "",
  ttl: Math.floor((r.ttlMs ?? 0) / 1000),
  max_ttl: Math.floor((r.maxTtlMs ?? 0) / 1000),
})
