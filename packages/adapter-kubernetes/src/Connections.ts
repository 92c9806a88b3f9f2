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
import { Readable } from "node:stream"
import { type KubeConfig, type RequestContext, ResponseContext, wrapHttpLibrary } from "@kubernetes/client-node"

type CreateDispatcher = (cluster: unknown, agentOptions: Record<string, unknown>) => unknown

const shared = new WeakSet<KubeConfig>()

/** The agent options that decide how a connection authenticates. */
const PARTS = ["ca", "cert", "key", "pfx", "passphrase", "rejectUnauthorized", "servername"] as const

const same = (a: unknown, b: unknown): boolean => a === b || (Buffer.isBuffer(a) && Buffer.isBuffer(b) && a.equals(b))

/** Identity of a connection: everything that decides where it goes and how it authenticates (hashed: keys are secret). */
const identity = (cluster: unknown, o: Record<string, unknown>): string => {
  const c = (cluster ?? {}) as { name?: unknown; server?: unknown; proxyUrl?: unknown }
  const h = createHash("sha256")
  for (const part of [c.name, c.server, c.proxyUrl, ...PARTS.map((k) => o[k])]) {
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
  // It is asked on every request: the last answer is kept with what it was for, so a request whose
  // cluster and TLS material are the very same objects (or equal bytes) costs no hash.
  let last: { readonly cluster: unknown; readonly parts: ReadonlyArray<unknown>; readonly dispatcher: unknown } | undefined
  target.createDispatcher = (cluster, agentOptions) => {
    const parts = PARTS.map((k) => agentOptions[k])
    if (last !== undefined && last.cluster === cluster && parts.every((p, i) => same(p, last!.parts[i]))) return last.dispatcher
    const id = identity(cluster, agentOptions)
    let dispatcher = pools.get(id)
    if (dispatcher === undefined) {
      dispatcher = create.call(kc, cluster, agentOptions)
      pools.set(id, dispatcher)
    }
    last = { cluster, parts, dispatcher }
    return dispatcher
  }
  lightRequests(kc)
  return kc
}

/** The part of an undici dispatcher `send` uses (the one client-node made, so its own undici's). */
interface Requesting {
  request(options: {
    origin: string
    path: string
    method: string
    headers: Record<string, string>
    body?: string | Buffer | undefined
    signal?: AbortSignal | undefined
  }): Promise<{ statusCode: number; headers: Record<string, string | Array<string> | undefined>; body: Readable & { arrayBuffer(): Promise<ArrayBuffer> } }>
}

/**
 * A request on the dispatcher's own `request`, not WHATWG `fetch`: the same connection, headers and
 * body, without fetch's Request/Response objects and web streams, which were a tenth of a busy
 * controller's CPU and much of its garbage. Requests without a dispatcher (plain http) keep fetch.
 */
const send = (fallback: { send(ctx: RequestContext): unknown }) =>
  wrapHttpLibrary({
    send: async (ctx: RequestContext) => {
      const dispatcher = ctx.getDispatcher() as unknown as Requesting | undefined
      if (dispatcher === undefined || typeof dispatcher.request !== "function")
        return (fallback.send(ctx) as { toPromise(): Promise<ResponseContext> }).toPromise()
      const url = new URL(ctx.getUrl())
      const body = ctx.getBody() as unknown
      const response = await dispatcher.request({
        origin: url.origin,
        path: `${url.pathname}${url.search}`,
        method: ctx.getHttpMethod().toString(),
        headers: ctx.getHeaders(),
        body: body === undefined || body === null ? undefined : typeof body === "string" || Buffer.isBuffer(body) ? body : JSON.stringify(body),
        signal: ctx.getSignal() ?? undefined,
      })
      const headers: Record<string, string> = {}
      for (const [name, value] of Object.entries(response.headers)) if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(", ") : value
      // The processors read the body once, as text (JSON) or bytes.
      let read: Promise<Buffer> | undefined
      const bytes = () => (read ??= response.body.arrayBuffer().then((b) => Buffer.from(b)))
      return new ResponseContext(response.statusCode, headers, {
        text: () => bytes().then((b) => b.toString("utf8")),
        binary: bytes,
        stream: () => Readable.toWeb(response.body) as never,
      })
    },
  })

/** Makes every API client `kc` hands out send through `send` (the generated clients keep their configuration on `api`). */
const lightRequests = (kc: KubeConfig) => {
  const make = kc.makeApiClient
  kc.makeApiClient = function <T>(this: KubeConfig, type: new (config: never) => T): T {
    const client = make.call(this, type as never) as T
    const config = (client as { api?: { configuration?: { httpApi?: { send(ctx: RequestContext): unknown } } } }).api?.configuration
    if (config?.httpApi !== undefined) config.httpApi = send(config.httpApi)
    return client
  } as KubeConfig["makeApiClient"]
}

/** Whether `shareConnections` took effect on `kc` (false when the library no longer has the hook). */
export const isSharing = (kc: KubeConfig): boolean => shared.has(kc) && Object.hasOwn(kc as object, "createDispatcher")
