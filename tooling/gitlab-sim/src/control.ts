/**
 * `/_sim/...` control and inspection endpoints (no auth; served to loopback
 * clients only). Errors thrown here become `400 {"error": ...}`.
 */
import type { Namespace, Role } from "./model.ts"
import { empty, json, type Reply } from "./reply.ts"
import type { Simulator } from "./server.ts"
import type { AddAccessTokenInput, AddNamespaceInput, AddUserInput, ForeignTokenInput, TokenTarget } from "./world.ts"

const parseJson = (body: Buffer): Record<string, unknown> => {
  if (body.length === 0) return {}
  const parsed: unknown = JSON.parse(body.toString("utf8"))
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) throw new Error("body must be a JSON object")
  return parsed as Record<string, unknown>
}

const namespaceJson = (ns: Namespace): Record<string, unknown> => ({
  kind: ns.kind,
  id: ns.id,
  path: ns.path,
  visibility: ns.visibility,
  members: Object.fromEntries(ns.members),
  movedFrom: [...ns.movedFrom],
})

const notFound = (what: string): Reply => json(404, { error: `${what} not found` })

const clockJson = (sim: Simulator): Record<string, unknown> => ({
  now: sim.now(),
  iso: new Date(sim.now()).toISOString(),
  offsetMs: sim.clockOffset,
})

const asTarget = (value: unknown): TokenTarget => {
  if (typeof value === "object" && value !== null) {
    const v = value as Record<string, unknown>
    if (typeof v.project === "number" || typeof v.project === "string") return { project: v.project }
    if (typeof v.group === "number" || typeof v.group === "string") return { group: v.group }
  }
  if (typeof value === "string") {
    const m = /^(project|group):(.+)$/.exec(value)
    if (m?.[1] === "project" && m[2] !== undefined) return { project: /^\d+$/.test(m[2]) ? Number(m[2]) : m[2] }
    if (m?.[1] === "group" && m[2] !== undefined) return { group: /^\d+$/.test(m[2]) ? Number(m[2]) : m[2] }
  }
  throw new Error('target must be {"project": id|path}, {"group": id|path}, "project:<id|path>" or "group:<id|path>"')
}

export const handleControl = (sim: Simulator, method: string, rawPath: string, query: URLSearchParams, body: Buffer): Reply => {
  const parts = rawPath
    .split("/")
    .slice(2)
    .map((p) => decodeURIComponent(p))
  const [resource, id, action] = parts
  const route = `${method} ${resource ?? ""}${id === undefined ? "" : "/:id"}${action === undefined ? "" : `/${action}`}`

  switch (route) {
    case "GET health":
      return json(200, { ok: true, url: sim.url })

    case "GET tokens":
      return json(200, sim.tokens({ includeDeleted: query.get("includeDeleted") === "true" }))
    case "GET tokens/:id": {
      const found = sim.tokens({ includeDeleted: true }).find((t) => t.id === Number(id))
      return found ? json(200, found) : notFound("deploy token")
    }
    case "POST tokens/:id/revoke": {
      const tokenId = Number(id)
      if (!sim.token(tokenId)) return notFound("deploy token")
      sim.revokeInUi(tokenId)
      return json(
        200,
        sim.tokens().find((t) => t.id === tokenId),
      )
    }
    case "DELETE tokens/:id":
      return sim.deleteToken(Number(id)) ? empty(204) : notFound("deploy token")

    case "POST foreign-tokens": {
      const b = parseJson(body)
      const input: ForeignTokenInput = {
        target: asTarget(b.target),
        name: String(b.name ?? ""),
        scopes: Array.isArray(b.scopes) ? (b.scopes as ForeignTokenInput["scopes"]) : [],
        username: typeof b.username === "string" ? b.username : null,
        expiresAt: typeof b.expiresAt === "string" || typeof b.expiresAt === "number" ? b.expiresAt : null,
        revoked: b.revoked === true,
        token: typeof b.token === "string" ? b.token : undefined,
      }
      return json(201, sim.createForeignToken(input))
    }

    case "GET requests":
      return json(200, sim.requests())
    case "DELETE requests":
      sim.clearRequests()
      return empty(204)

    case "GET faults":
      return json(200, sim.faults.list())
    case "POST faults": {
      const rule = parseJson(body)
      return json(201, { id: sim.faults.add(rule as unknown as Parameters<typeof sim.faults.add>[0]) })
    }
    case "DELETE faults":
      sim.faults.clear()
      return empty(204)
    case "DELETE faults/:id":
      return sim.faults.remove(id ?? "") ? empty(204) : notFound("fault rule")

    case "GET clock":
      return json(200, clockJson(sim))
    case "POST clock": {
      const b = parseJson(body)
      if (typeof b.offsetMs === "number") sim.setClockOffset(b.offsetMs)
      else if (typeof b.advanceMs === "number") sim.advanceClock(b.advanceMs)
      else if (typeof b.now === "number" || typeof b.now === "string") {
        const target = typeof b.now === "number" ? b.now : Date.parse(b.now)
        if (!Number.isFinite(target)) throw new Error("now must be epoch ms or an ISO date")
        sim.setClockOffset(sim.clockOffset + (target - sim.now()))
      } else throw new Error("give offsetMs, advanceMs or now")
      return json(200, clockJson(sim))
    }

    case "GET rate-limit":
      return json(200, sim.rateLimit)
    case "POST rate-limit": {
      const b = parseJson(body)
      if (typeof b.limit !== "number") sim.setRateLimit(null)
      else
        sim.setRateLimit({
          limit: b.limit,
          periodSeconds: typeof b.periodSeconds === "number" ? b.periodSeconds : undefined,
          name: typeof b.name === "string" ? b.name : undefined,
        })
      return json(200, sim.rateLimit)
    }

    case "GET world":
      return json(200, {
        users: [...sim.world.users.values()],
        projects: [...sim.world.projects.values()].map(namespaceJson),
        groups: [...sim.world.groups.values()].map(namespaceJson),
      })
    case "POST users":
      return json(201, sim.addUser(parseJson(body) as unknown as AddUserInput))
    case "POST access-tokens":
      return json(201, { token: sim.addAccessToken(parseJson(body) as unknown as AddAccessTokenInput) })
    case "POST projects":
      return json(201, namespaceJson(sim.addProject(parseJson(body) as unknown as AddNamespaceInput)))
    case "POST groups":
      return json(201, namespaceJson(sim.addGroup(parseJson(body) as unknown as AddNamespaceInput)))
    case "POST projects/:id/move": {
      const b = parseJson(body)
      if (typeof b.path !== "string") throw new Error("path is required")
      return json(200, namespaceJson(sim.moveProject(/^\d+$/.test(id ?? "") ? Number(id) : (id ?? ""), b.path)))
    }
    case "POST members": {
      const b = parseJson(body)
      if (typeof b.user !== "string") throw new Error("user is required")
      sim.setMember(asTarget(b.target), b.user, (b.role ?? null) as Role | null)
      return empty(204)
    }
    default:
      return json(404, { error: `no such control endpoint: ${method} ${rawPath}` })
  }
}
