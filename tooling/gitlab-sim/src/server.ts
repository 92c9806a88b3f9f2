/** The simulator: an HTTP(S) server around a World, with fault injection and a request log. */
import { randomUUID } from "node:crypto"
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from "node:http"
import { createServer as createHttpsServer } from "node:https"
import { isIP, type Socket } from "node:net"
import { setTimeout as sleep } from "node:timers/promises"
import { requestToken, routeDeployTokens } from "./api.ts"
import { gitInfoRefs, gitProjectPath, genericPackage, jwtAuth, registryPing, type ConsumerRequest } from "./consumers.ts"
import { handleControl } from "./control.ts"
import { type FaultAction, FaultController, type FaultKind } from "./faults.ts"
import type { DeployTokenRecord, Namespace, User } from "./model.ts"
import { INTERNAL_ERROR, message, type Reply, ROUTE_NOT_FOUND, rateLimitHeaders, serverError, text, tooManyRequests } from "./reply.ts"
import { type RateLimitOptions, Throttle } from "./throttle.ts"
import { generateTlsMaterial, type TlsMaterial } from "./tls.ts"
import {
  type AddAccessTokenInput,
  type AddNamespaceInput,
  type AddUserInput,
  type ForeignTokenInput,
  type SimDeployToken,
  type TokenTarget,
  World,
} from "./world.ts"

export interface SimulatorOptions {
  /** TCP port; 0 (default) picks a free one. */
  readonly port?: number | undefined
  /** Listen address (default 127.0.0.1). */
  readonly host?: string | undefined
  /** Serve HTTPS with a freshly generated CA (see `caPem`). */
  readonly tls?: boolean | undefined
  /** Clock in epoch ms (default Date.now); the clock offset is added on top. */
  readonly now?: (() => number) | undefined
  /** Built-in throttle answering row-41 429s. Off by default, as on self-managed GitLab. */
  readonly rateLimit?: RateLimitOptions | undefined
  /** Seed of the shared fault RNG (default 1). */
  readonly seed?: number | undefined
  /** Lifetime of registry JWTs issued by /jwt/auth, seconds (default 300). */
  readonly registryTokenTtlSeconds?: number | undefined
  /** How many request-log entries to keep (default 10,000; oldest dropped first). */
  readonly requestLogLimit?: number | undefined
  /** Called after each logged request (e.g. for verbose CLI output). */
  readonly onRequest?: ((entry: RequestLogEntry) => void) | undefined
}

export interface RequestLogEntry {
  /** 1, 2, 3… in arrival order. */
  readonly seq: number
  readonly method: string
  /** Raw request path (still percent-encoded), without the query string. */
  readonly path: string
  /** Raw query string without `?` ("" when none). */
  readonly query: string
  /** Status sent; 0 when the connection was reset instead. */
  readonly status: number
  /** Simulated clock (ms) when the request arrived. */
  readonly time: number
  /** Wall-clock handling time, ms. */
  readonly durationMs: number
  /** The outcome-deciding fault, or "latency" when only latency applied, else null. */
  readonly fault: FaultKind | null
  /** Every fault kind that fired for this request, in order. */
  readonly faults: readonly FaultKind[]
  /** For `appliedButLost`: the status the applied operation produced. */
  readonly appliedStatus: number | null
  /** Name of the PAT's user, when the request carried a known PAT. */
  readonly user: string | null
  /** Message of an unexpected exception (answered 500). */
  readonly error?: string
}

const MAX_BODY_BYTES = 8 * 1024 * 1024

class BodyTooLarge extends Error {}

const readBody = (req: IncomingMessage): Promise<Buffer> =>
  new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    req.on("data", (chunk: Buffer) => {
      size += chunk.length
      if (size > MAX_BODY_BYTES) reject(new BodyTooLarge())
      else chunks.push(chunk)
    })
    req.on("end", () => resolve(chunks.length === 1 && chunks[0] ? chunks[0] : Buffer.concat(chunks)))
    req.on("error", reject)
  })

const isLoopback = (address: string | undefined): boolean =>
  address !== undefined && (address === "::1" || address.startsWith("127.") || address.startsWith("::ffff:127."))

const resetConnection = (socket: Socket): void => {
  try {
    socket.resetAndDestroy()
  } catch {
    socket.destroy()
  }
}

/** The response a terminal fault sends instead of running the request. */
const faultReply = (action: FaultAction, time: number): Reply => {
  if (action.kind === "rateLimit") {
    const retryAfter = action.retryAfter ?? 1
    const limit = action.limit ?? 2000
    return tooManyRequests({
      name: action.name ?? "throttle_authenticated_api",
      limit,
      observed: limit + 1,
      remaining: 0,
      resetAt: Math.floor(time / 1000) + retryAfter,
      retryAfter,
    })
  }
  if (action.kind === "status5xx") return serverError(action.status ?? 500, action.body)
  return INTERNAL_ERROR()
}

const API_HEADERS = {
  "X-Content-Type-Options": "nosniff",
  "X-Frame-Options": "SAMEORIGIN",
  "Cache-Control": "max-age=0, private, must-revalidate",
} as const

export class Simulator {
  /** Base URL, e.g. `http://127.0.0.1:41234` (the API is under `/api/v4`). */
  readonly url: string
  /** `url + "/api/v4"`. */
  readonly apiUrl: string
  readonly host: string
  readonly port: number
  /** PEM of the CA that signed the server certificate (TLS mode only). */
  readonly caPem: string | undefined
  /** Fault rules applied to every non-`/_sim` request. */
  readonly faults: FaultController
  /** The underlying state (for advanced tests). */
  readonly world: World

  private readonly server: Server
  private readonly options: SimulatorOptions
  private throttle: Throttle | null
  private log: RequestLogEntry[] = []
  private seq = 0
  private closed: Promise<void> | null = null

  private constructor(server: Server, world: World, options: SimulatorOptions, url: string, host: string, port: number, caPem: string | undefined) {
    this.server = server
    this.world = world
    this.options = options
    this.url = url
    this.apiUrl = `${url}/api/v4`
    this.host = host
    this.port = port
    this.caPem = caPem
    this.faults = new FaultController(options.seed ?? 1)
    this.throttle = options.rateLimit ? new Throttle(options.rateLimit) : null
  }

  /** Starts a simulator with an empty world. */
  static async start(options: SimulatorOptions = {}): Promise<Simulator> {
    const host = options.host ?? "127.0.0.1"
    const world = new World(options.now ?? Date.now)
    let tls: TlsMaterial | undefined
    if (options.tls === true) {
      const extra =
        host === "127.0.0.1" || host === "localhost" || host === "::1" || host === "0.0.0.0" || host === "::"
          ? {}
          : isIP(host) === 4
            ? { ipAddresses: [host] }
            : isIP(host) === 0
              ? { dnsNames: [host] }
              : {}
      tls = generateTlsMaterial(extra)
    }
    let handler: (req: IncomingMessage, res: ServerResponse) => void = () => undefined
    const listener = (req: IncomingMessage, res: ServerResponse): void => handler(req, res)
    const server = tls ? createHttpsServer({ key: tls.keyPem, cert: tls.certPem }, listener) : createHttpServer(listener)
    server.keepAliveTimeout = 5_000
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject)
      server.listen(options.port ?? 0, host, () => {
        server.off("error", reject)
        resolve()
      })
    })
    const address = server.address()
    const port = typeof address === "object" && address !== null ? address.port : (options.port ?? 0)
    const urlHost = host === "0.0.0.0" ? "127.0.0.1" : host === "::" ? "[::1]" : isIP(host) === 6 ? `[${host}]` : host
    const sim = new Simulator(server, world, options, `${tls ? "https" : "http"}://${urlHost}:${port}`, host, port, tls?.caPem)
    handler = (req, res) => {
      sim.handle(req, res).catch(() => {
        if (!res.headersSent) sim.send(res, INTERNAL_ERROR())
      })
    }
    return sim
  }

  // ---------------------------------------------------------------- world setup

  addUser(input: AddUserInput): User {
    return this.world.addUser(input)
  }

  /** Adds a personal access token; returns its value (`glpat-…` unless given). */
  addAccessToken(input: AddAccessTokenInput): string {
    return this.world.addAccessToken(input)
  }

  revokeAccessToken(value: string): void {
    this.world.revokeAccessToken(value)
  }

  addProject(input: AddNamespaceInput): Namespace {
    return this.world.addProject(input)
  }

  addGroup(input: AddNamespaceInput): Namespace {
    return this.world.addGroup(input)
  }

  moveProject(ref: number | string, newPath: string): Namespace {
    return this.world.moveProject(ref, newPath)
  }

  setMember(target: TokenTarget, userName: string, role: Parameters<World["setMember"]>[2]): void {
    this.world.setMember(target, userName, role)
  }

  // ---------------------------------------------------------------- deploy-token hooks

  /** A deploy token "made by someone else" (UI, another tool). */
  createForeignToken(input: ForeignTokenInput): { readonly id: number; readonly token: string } {
    return this.world.createForeignToken(input)
  }

  /** The UI's Revoke button: the row stays, `revoked` becomes true. */
  revokeInUi(id: number): void {
    this.world.revokeDeployToken(id)
  }

  /** Deletes a deploy token outside the API (as if someone else did). Returns false if unknown. */
  deleteToken(id: number): boolean {
    return this.world.deleteDeployToken(id)
  }

  /** Ground truth: every deploy token with its secret, ascending id. */
  tokens(options: { readonly includeDeleted?: boolean | undefined } = {}): SimDeployToken[] {
    return this.world.tokens(options)
  }

  /** The raw record (or undefined). */
  token(id: number): DeployTokenRecord | undefined {
    return this.world.deployToken(id)
  }

  // ---------------------------------------------------------------- clock

  now(): number {
    return this.world.now()
  }

  get clockOffset(): number {
    return this.world.offsetMs
  }

  setClockOffset(ms: number): void {
    this.world.setClockOffset(ms)
  }

  advanceClock(ms: number): void {
    this.world.advanceClock(ms)
  }

  // ---------------------------------------------------------------- throttle & log

  /** Enables (or with null disables) the built-in throttle. */
  setRateLimit(options: RateLimitOptions | null): void {
    this.throttle = options === null ? null : new Throttle(options)
  }

  get rateLimit(): RateLimitOptions | null {
    return this.throttle?.options ?? null
  }

  /** Logged requests (everything except `/_sim/…`), oldest first. */
  requests(): RequestLogEntry[] {
    return [...this.log]
  }

  clearRequests(): void {
    this.log = []
  }

  /** Stops listening and drops open connections. Idempotent. */
  close(): Promise<void> {
    if (this.closed === null) {
      this.closed = new Promise<void>((resolve) => {
        this.server.close(() => resolve())
        this.server.closeAllConnections()
      })
    }
    return this.closed
  }

  // ---------------------------------------------------------------- request handling

  private send(res: ServerResponse, reply: Reply, extra?: Readonly<Record<string, string>>): void {
    if (res.headersSent || res.destroyed) return
    const headers: Record<string, string> = { ...extra, ...reply.headers }
    if (reply.status !== 204 && reply.status !== 304) headers["Content-Length"] = String(Buffer.byteLength(reply.body))
    res.writeHead(reply.status, headers)
    res.end(reply.status === 204 || reply.status === 304 ? undefined : reply.body)
  }

  private record(entry: Omit<RequestLogEntry, "seq">): void {
    const full: RequestLogEntry = { seq: ++this.seq, ...entry }
    this.log.push(full)
    const limit = this.options.requestLogLimit ?? 10_000
    if (this.log.length > limit) this.log.splice(0, this.log.length - limit)
    this.options.onRequest?.(full)
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = req.url ?? "/"
    const q = url.indexOf("?")
    const rawPath = q < 0 ? url : url.slice(0, q)
    const rawQuery = q < 0 ? "" : url.slice(q + 1)
    const method = (req.method ?? "GET").toUpperCase()

    if (rawPath === "/_sim" || rawPath.startsWith("/_sim/")) {
      let body: Buffer
      try {
        body = await readBody(req)
      } catch {
        this.send(res, message(413, "413 Request Entity Too Large"))
        return
      }
      if (!isLoopback(req.socket.remoteAddress)) {
        this.send(res, message(403, "/_sim is only served to loopback clients"))
        return
      }
      let reply: Reply
      try {
        reply = handleControl(this, method, rawPath, new URLSearchParams(rawQuery), body)
      } catch (e) {
        reply = { status: 400, headers: { "content-type": "application/json" }, body: JSON.stringify({ error: e instanceof Error ? e.message : String(e) }) }
      }
      this.send(res, reply)
      return
    }

    const started = performance.now()
    const time = this.world.now()
    const query = new URLSearchParams(rawQuery)
    const patValue = requestToken({ headers: req.headers, query })
    const patUserId = patValue === undefined ? undefined : this.world.pats.get(patValue)?.userId
    const user = patUserId === undefined ? null : (this.world.userById(patUserId)?.name ?? null)
    const log = (status: number, fault: FaultKind | null, faults: readonly FaultKind[], appliedStatus: number | null, error?: string): void =>
      this.record({
        method,
        path: rawPath,
        query: rawQuery,
        status,
        time,
        durationMs: performance.now() - started,
        fault,
        faults,
        appliedStatus,
        user,
        ...(error === undefined ? {} : { error }),
      })

    let body: Buffer
    try {
      body = await readBody(req)
    } catch {
      this.send(res, message(413, "413 Request Entity Too Large"))
      log(413, null, [], null)
      return
    }

    const decision = this.faults.decide(method, rawPath)
    if (decision.latencyBeforeMs > 0) await sleep(decision.latencyBeforeMs)
    const terminal = decision.terminal
    const faultName: FaultKind | null = terminal?.kind ?? (decision.applied.length > 0 ? "latency" : null)
    const isApi = rawPath.startsWith("/api/v4/") || rawPath === "/api/v4"

    if (terminal !== null && terminal.kind !== "appliedButLost") {
      if (terminal.kind === "reset") {
        resetConnection(req.socket)
        log(0, faultName, decision.applied, null)
        return
      }
      const reply = faultReply(terminal, time)
      this.send(res, reply)
      log(reply.status, faultName, decision.applied, null)
      return
    }

    let throttleHeaders: Record<string, string> | undefined
    if (this.throttle !== null && isApi) {
      const key = patUserId === undefined ? `ip:${req.socket.remoteAddress ?? ""}` : `user:${patUserId}`
      const result = this.throttle.hit(key, patUserId !== undefined, time)
      if (result.limited) {
        const reply = tooManyRequests(result.info)
        this.send(res, reply)
        log(reply.status, faultName, decision.applied, null)
        return
      }
      throttleHeaders = rateLimitHeaders(result.info)
    }

    let reply: Reply
    let failure: string | undefined
    try {
      reply = this.route(method, rawPath, query, req, body)
    } catch (e) {
      failure = e instanceof Error ? (e.stack ?? e.message) : String(e)
      reply = INTERNAL_ERROR()
    }
    if (isApi) reply = { ...reply, headers: { ...API_HEADERS, "X-Request-Id": randomUUID(), ...throttleHeaders, ...reply.headers } }

    if (terminal?.kind === "appliedButLost") {
      const lose = terminal.lose ?? "reset"
      if (decision.latencyAfterMs > 0) await sleep(decision.latencyAfterMs)
      if (lose === "reset") {
        resetConnection(req.socket)
        log(0, faultName, decision.applied, reply.status, failure)
      } else {
        this.send(res, serverError(lose))
        log(lose, faultName, decision.applied, reply.status, failure)
      }
      return
    }
    if (decision.latencyAfterMs > 0) await sleep(decision.latencyAfterMs)
    this.send(res, reply)
    log(reply.status, faultName, decision.applied, null, failure)
  }

  private route(method: string, rawPath: string, query: URLSearchParams, req: IncomingMessage, body: Buffer): Reply {
    const consumer: ConsumerRequest = {
      method,
      rawPath,
      query,
      headers: req.headers,
      body,
      baseUrl: this.url,
      registryTokenTtlMs: (this.options.registryTokenTtlSeconds ?? 300) * 1000,
    }
    if (rawPath.startsWith("/api/v4/")) {
      const segments = rawPath.slice("/api/v4/".length).split("/")
      return (
        genericPackage(this.world, consumer, segments) ??
        routeDeployTokens(this.world, { method, segments, rawPath, query, headers: req.headers, body, baseUrl: this.url }) ??
        ROUTE_NOT_FOUND()
      )
    }
    if (rawPath === "/api/v4") return ROUTE_NOT_FOUND()
    if (rawPath === "/jwt/auth" && (method === "GET" || method === "HEAD")) return jwtAuth(this.world, consumer)
    if ((rawPath === "/v2/" || rawPath === "/v2") && (method === "GET" || method === "HEAD")) return registryPing(this.world, consumer)
    const gitPath = gitProjectPath(rawPath)
    if (gitPath !== undefined) return gitInfoRefs(this.world, consumer, gitPath)
    return text(404, "Not Found\n")
  }
}

/** Starts a simulator (empty world unless you seed it). */
export const startSimulator = (options: SimulatorOptions = {}): Promise<Simulator> => Simulator.start(options)
