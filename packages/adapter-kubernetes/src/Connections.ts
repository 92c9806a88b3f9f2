/**
 * Connection reuse for a `KubeConfig`.
 *
 * @kubernetes/client-node 2.x builds a new undici `Agent` for every request whenever the cluster has
 * a CA or a client certificate, which is every real cluster. Each call then pays a fresh TCP + TLS
 * handshake and leaves an idle pool behind until it times out. A controller making thousands of
 * calls spent its CPU on handshakes (on both ends) and its memory on pools: 100 ExternalSecrets
 * took 40 s and 685 MiB. `shareConnections` makes the config hand out one `Agent` per TLS identity
 * (cluster, CA, client certificate and key, verification settings), so calls share keep-alive
 * connections, and a rotated client certificate still gets a pool of its own.
 */
import { createHash } from "node:crypto"
import type { KubeConfig } from "@kubernetes/client-node"

type CreateDispatcher = (cluster: unknown, agentOptions: Record<string, unknown>) => unknown

const shared = new WeakSet<KubeConfig>()

/** Identity of a connection: everything that decides where it goes and how it authenticates (hashed: keys are secret). */
const identity = (cluster: unknown, o: Record<string, unknown>): string => {
  const c = (cluster ?? {}) as { name?: unknown; server?: unknown; proxyUrl?: unknown }
  const h = createHash("sha256")
  for (const part of [c.name, c.server, c.proxyUrl, o.ca, o.cert, o.key, o.pfx, o.passphrase, o.rejectUnauthorized, o.servername]) {
    h.update(part === undefined ? "\u0000" : Buffer.isBuffer(part) ? part : String(part))
    h.update("\u0001")
  }
  return h.digest("hex")
}

/**
 * Makes `kc` reuse one connection pool per TLS identity, and returns it. Idempotent. Should a
 * future client-node drop the per-request dispatcher this relies on, `kc` is returned unchanged.
 */
export const shareConnections = (kc: KubeConfig): KubeConfig => {
  if (shared.has(kc)) return kc
  shared.add(kc)
  const target = kc as unknown as { createDispatcher?: CreateDispatcher }
  const create = target.createDispatcher
  if (typeof create !== "function") return kc
  const pools = new Map<string, unknown>()
  target.createDispatcher = (cluster, agentOptions) => {
    const id = identity(cluster, agentOptions)
    if (pools.has(id)) return pools.get(id)
    const dispatcher = create.call(kc, cluster, agentOptions)
    pools.set(id, dispatcher)
    return dispatcher
  }
  return kc
}

/** Whether `shareConnections` took effect on `kc` (false when the library no longer has the hook). */
export const isSharing = (kc: KubeConfig): boolean => shared.has(kc) && Object.hasOwn(kc as object, "createDispatcher")
