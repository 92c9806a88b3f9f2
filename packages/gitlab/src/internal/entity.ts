/** GitLab's deploy-token entity read into core's `DeployToken`, and JSON read without throwing. */
import type { DeployToken } from "@gldt/core/GitLab"
import { Result } from "effect"

export const isInt = (v: unknown): v is number => typeof v === "number" && Number.isSafeInteger(v)

/**
 * Reads a deploy-token entity. Returns a description of the first problem instead of throwing; the
 * description names the field, never its value (a `201` body holds the secret).
 */
export const decodeEntity = (u: unknown, nowMs: number): DeployToken | string => {
  if (typeof u !== "object" || u === null || Array.isArray(u)) return "an entry is not an object"
  const o = u as Record<string, unknown>
  if (!isInt(o.id)) return "an entry lacks a numeric id"
  if (typeof o.name !== "string") return `token ${o.id} lacks a name`
  const username = typeof o.username === "string" ? o.username : o.username == null ? `gitlab+deploy-token-${o.id}` : undefined
  if (username === undefined) return `token ${o.id} has a malformed username`
  const expiresAt = o.expires_at == null ? null : typeof o.expires_at === "string" ? o.expires_at : undefined
  if (expiresAt === undefined) return `token ${o.id} has a malformed expires_at`
  if (!Array.isArray(o.scopes) || !o.scopes.every((s) => typeof s === "string")) return `token ${o.id} lacks scopes`
  if (o.revoked !== undefined && typeof o.revoked !== "boolean") return `token ${o.id} has a malformed revoked`
  if (o.expired !== undefined && typeof o.expired !== "boolean") return `token ${o.id} has a malformed expired`
  // GitLab before `revoked`/`expired` existed (13.x/14.x): compute `expired` from the date.
  const expired = typeof o.expired === "boolean" ? o.expired : expiresAt !== null && !Number.isNaN(Date.parse(expiresAt)) && Date.parse(expiresAt) <= nowMs
  return {
    id: o.id,
    name: o.name,
    username,
    expiresAt,
    scopes: o.scopes as ReadonlyArray<string>,
    revoked: o.revoked === true,
    expired,
  }
}

export const parseJson = (text: string): Result.Result<unknown, void> => {
  try {
    return Result.succeed(JSON.parse(text))
  } catch {
    return Result.fail(undefined)
  }
}
