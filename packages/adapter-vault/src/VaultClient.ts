/**
 * A small typed Vault client: the few endpoints gldt needs (KV v2, token self-service, AppRole and
 * Kubernetes login, capabilities), one session per client with renewal and re-login, and every
 * failure turned into a `VaultError` that says what to fix.
 *
 * Session: the first request logs in (AppRole, Kubernetes) or looks the given token up. A token
 * with a TTL is renewed once two thirds of its lease have passed; when it is not renewable, or its
 * renewal stops extending it (max TTL reached), the client logs in again where the auth method
 * allows. A 403 whose token no longer looks itself up means the token is dead: the client logs in
 * again once and retries, or fails with `VaultTokenExpired` for a plain token.
 */
import { readFileSync } from "node:fs"
import { Clock, Context, Effect, Layer, Redacted, Schedule, type Scope, Semaphore } from "effect"
import { type Exchange, makeTransport, type NetworkFailure } from "./internal/http.ts"
import {
  VaultAuthFailed,
  VaultConfigError,
  type VaultError,
  VaultNotKv2,
  VaultPermissionDenied,
  VaultRequestFailed,
  VaultSealed,
  VaultTokenExpired,
  VaultUnreachable,
} from "./VaultErrors.ts"

/** How the client authenticates. */
export type VaultAuth =
  | {
      readonly method: "token"
      readonly token: Redacted.Redacted<string>
    }
  | {
      readonly method: "approle"
      readonly roleId: string
      readonly secretId: Redacted.Redacted<string>
      /** Mount path of the AppRole auth method. Default `approle`. */
      readonly mount?: string | undefined
    }
  | {
      readonly method: "kubernetes"
      readonly role: string
      /** File holding the service-account JWT, read at every login (projected tokens rotate). */
      readonly jwtFile?: string | undefined
      /** Mount path of the Kubernetes auth method. Default `kubernetes`. */
      readonly mount?: string | undefined
    }

export const DEFAULT_K8S_JWT_FILE = "/var/run/secrets/kubernetes.io/serviceaccount/token"

export interface VaultClientOptions {
  /** e.g. `https://vault.example.com:8200` (VAULT_ADDR). */
  readonly addr: string
  readonly auth: VaultAuth
  /** Vault Enterprise / HCP namespace (VAULT_NAMESPACE), sent as `X-Vault-Namespace`. */
  readonly namespace?: string | undefined
  /** PEM CA bundle trusted besides Node's default store (VAULT_CACERT). */
  readonly caPem?: string | undefined
  /** Name expected in Vault's certificate and sent as SNI (VAULT_TLS_SERVER_NAME). */
  readonly tlsServerName?: string | undefined
  /** Allow plain `http://` to a host other than loopback (the token would cross the network in clear). */
  readonly allowHttp?: boolean | undefined
  /** Time limit of one HTTP exchange. Default 30 s. */
  readonly requestTimeoutMs?: number | undefined
  /** Attempts for a read (or a write that was certainly not sent) that hit a network error, 429 or 5xx. Default 4. */
  readonly maxAttempts?: number | undefined
}

export type VaultMethod = "GET" | "POST" | "DELETE" | "LIST"

export interface VaultRequest {
  readonly method: VaultMethod
  /** API path without `/v1/`, e.g. `secret/data/gldt/state/e2e`. */
  readonly path: string
  readonly body?: unknown
  /** Query parameters (e.g. `version`). */
  readonly query?: Readonly<Record<string, string>> | undefined
  /** Capabilities the request needs on `path`, named in a permission-denied error. */
  readonly capabilities: ReadonlyArray<string>
}

export interface VaultAnswer {
  /** 2xx or 404 (every other status is a `VaultError`). */
  readonly status: number
  /** Parsed JSON body; undefined for an empty one. */
  readonly body: unknown
}

export interface Session {
  readonly token: Redacted.Redacted<string>
  readonly renewable: boolean
  /** Lease length in ms at issue or last renewal; 0 for a token that never expires. */
  readonly leaseMs: number
  readonly expiresAt: number | undefined
  readonly renewAt: number | undefined
  /**
   * What a renewal asks for, in ms: the token's TTL as created (Vault's `creation_ttl`) for a given
   * token, whose remaining TTL at lookup can be far shorter; otherwise the lease itself.
   */
  readonly incrementMs?: number | undefined
}

export class VaultClient extends Context.Service<
  VaultClient,
  {
    readonly addr: string
    readonly namespace: string | undefined
    /** One API call with the session's token; 2xx and 404 are answers, the rest `VaultError`s. */
    request(req: VaultRequest): Effect.Effect<VaultAnswer, VaultError>
    /** Fails with `VaultNotKv2` unless `mount` is a KV version 2 secrets engine (checked once per mount). */
    requireKv2(mount: string): Effect.Effect<void, VaultError>
    /** The token's capabilities on each path (`sys/capabilities-self`). */
    capabilities(paths: ReadonlyArray<string>): Effect.Effect<Record<string, ReadonlyArray<string>>, VaultError>
  }
>()("@gldt/adapter-vault/VaultClient") {
  /** The client itself (its connections close with the scope). */
  static readonly make = (options: VaultClientOptions) => makeClient(options)
  /** A `VaultClient` layer; its connections close with the layer. */
  static readonly layer = (options: VaultClientOptions): Layer.Layer<VaultClient, VaultConfigError> => Layer.effect(VaultClient, makeClient(options))
}

/** Vault's `{"errors": [...]}` as one line: "1 error occurred: * permission denied" → "permission denied". */
export const vaultErrorText = (text: string): string => {
  let errors: ReadonlyArray<unknown> = []
  try {
    const json = JSON.parse(text) as { errors?: unknown }
    if (Array.isArray(json.errors)) errors = json.errors
  } catch {
    const flat = text.replace(/\s+/g, " ").trim()
    return flat.length > 200 ? `${flat.slice(0, 200)}…` : flat
  }
  return errors
    .map((e) =>
      String(e)
        .replace(/^\s*\d+ errors? occurred:\s*/, "")
        .replace(/\s*\*\s+/g, "; ")
        .replace(/\s+/g, " ")
        .replace(/^[;\s]+|[;\s]+$/g, ""),
    )
    .filter((e) => e !== "")
    .join("; ")
}

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|\[::1\]|localhost)$/

/** Checks the address: absolute http(s) URL, no credentials, https unless loopback or allowed. */
export const checkAddr = (addr: string, allowHttp: boolean): URL | VaultConfigError => {
  let url: URL
  try {
    url = new URL(addr.trim())
  } catch {
    return new VaultConfigError({ message: `the Vault address "${addr}" is not an absolute URL; set VAULT_ADDR like https://vault.example.com:8200` })
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") {
    return new VaultConfigError({ message: `the Vault address must use https:// (got ${url.protocol})` })
  }
  if (url.username !== "" || url.password !== "") {
    return new VaultConfigError({ message: "the Vault address must not contain credentials; pass the token separately" })
  }
  if (url.protocol === "http:" && !allowHttp && !LOOPBACK.test(url.hostname)) {
    return new VaultConfigError({
      message: `refusing to send a Vault token over plain http to ${url.origin}; use https:// (plain http is allowed to loopback addresses, or with --vault-allow-http)`,
    })
  }
  url.pathname = url.pathname.replace(/\/+$/, "").replace(/\/v1$/, "")
  return url
}

const readBody = (ex: Exchange): unknown => {
  if (ex.text.trim() === "") return undefined
  try {
    return JSON.parse(ex.text)
  } catch {
    return ex.text
  }
}

const RETRY_STATUS = new Set([429, 500, 502, 503, 504])

/** A token this close to its expiry is treated as expired (the request would race it). */
const EXPIRY_MARGIN_MS = 250

/**
 * When a lease ends and when to renew it: after two thirds of a long lease, half of a short one
 * (Vault reports TTLs in whole seconds, so a short lease may be up to a second shorter than it says).
 */
export const lease = (now: number, leaseMs: number): Pick<Session, "leaseMs" | "expiresAt" | "renewAt"> =>
  leaseMs <= 0
    ? { leaseMs: 0, expiresAt: undefined, renewAt: undefined }
    : { leaseMs, expiresAt: now + leaseMs, renewAt: now + Math.floor(leaseMs < 30_000 ? leaseMs / 2 : (leaseMs * 2) / 3) }

const makeClient = (options: VaultClientOptions): Effect.Effect<VaultClient["Service"], VaultConfigError, Scope.Scope> =>
  Effect.gen(function* () {
    const url = checkAddr(options.addr, options.allowHttp === true)
    if (url instanceof VaultConfigError) return yield* url
    // A URL's pathname is never empty ("/" at least): drop the trailing slash so paths join with one.
    const addr = `${url.origin}${url.pathname.replace(/\/+$/, "")}`
    const namespace = options.namespace?.trim() ? options.namespace.trim().replace(/^\/+|\/+$/g, "") : undefined
    const transport = makeTransport({
      caPem: options.caPem?.trim() ? options.caPem : undefined,
      tlsServerName: options.tlsServerName?.trim() ? options.tlsServerName.trim() : undefined,
      timeoutMs: options.requestTimeoutMs ?? 30_000,
    })
    yield* Effect.addFinalizer(() => Effect.sync(transport.close))
    const maxAttempts = Math.max(1, options.maxAttempts ?? 4)
    const auth = options.auth
    const canLogin = auth.method !== "token"
    const authMount = auth.method === "token" ? "token" : (auth.mount ?? auth.method).replace(/^\/+|\/+$/g, "")
    /** Values no message may contain. */
    const secrets = (): ReadonlyArray<string> => [
      ...(auth.method === "token" ? [Redacted.value(auth.token)] : []),
      ...(auth.method === "approle" ? [Redacted.value(auth.secretId)] : []),
      ...(session ? [Redacted.value(session.token)] : []),
    ]
    const scrub = (s: string) =>
      secrets()
        .filter((v) => v.length >= 4)
        .reduce((m, v) => m.split(v).join("[redacted]"), s)

    let session: Session | undefined
    const sessionLock = Semaphore.makeUnsafe(1)
    const mountsOk = new Set<string>()

    const unreachable = (f: NetworkFailure) =>
      new VaultUnreachable({
        addr,
        message: scrub(
          `cannot reach Vault at ${addr}: ${f.code === "ETIMEDOUT" ? f.detail : `${f.code} (${f.detail})`}; check VAULT_ADDR, the network and${url.protocol === "https:" ? " the CA (VAULT_CACERT / --vault-cacert) and server name," : ""} that Vault is running`,
        ),
      })

    /** One exchange with retries for reads (and for writes that certainly were not sent). */
    const exchange = (
      method: VaultMethod,
      path: string,
      body: unknown,
      token: Redacted.Redacted<string> | undefined,
      query?: Readonly<Record<string, string>>,
    ) => {
      // Each segment is escaped, so a `%` or `?` in a key stays part of the path Vault sees.
      const target = new URL(`${addr}/v1/${path.replace(/^\/+/, "").split("/").map(encodeURIComponent).join("/")}`)
      if (method === "LIST") target.searchParams.set("list", "true")
      for (const [k, v] of Object.entries(query ?? {})) target.searchParams.set(k, v)
      const headers: Record<string, string> = { "X-Vault-Request": "true", Accept: "application/json" }
      if (token !== undefined) headers["X-Vault-Token"] = Redacted.value(token)
      if (namespace !== undefined) headers["X-Vault-Namespace"] = namespace
      const idempotent = method === "GET" || method === "LIST"
      const once = transport
        .send({ method: method === "LIST" ? "GET" : method, url: target, headers, body: body === undefined ? undefined : JSON.stringify(body) })
        .pipe(
          Effect.flatMap((ex) =>
            RETRY_STATUS.has(ex.status) && idempotent && !/sealed/i.test(ex.text) ? Effect.fail<Exchange | NetworkFailure>(ex) : Effect.succeed(ex),
          ),
        )
      const retryable = (e: Exchange | NetworkFailure) => ("_tag" in e ? idempotent || !e.sent : true)
      return once.pipe(
        Effect.retry(
          Schedule.exponential("200 millis").pipe(
            Schedule.jittered,
            Schedule.setInputType<Exchange | NetworkFailure>(),
            Schedule.while(({ input, attempt }) => attempt < maxAttempts && retryable(input)),
          ),
        ),
        Effect.catch((e) => ("_tag" in e ? Effect.fail(unreachable(e)) : Effect.succeed(e))),
        Effect.tap((ex) => Effect.logDebug(`vault ${method} ${path} answered ${ex.status}`)),
      )
    }

    /** Turns a non-2xx, non-404 answer into an error (403 handled by the caller). */
    const failure = (ex: Exchange, method: VaultMethod, path: string): VaultError => {
      const text = scrub(vaultErrorText(ex.text))
      if (ex.status === 503 && /sealed/i.test(ex.text)) return new VaultSealed({ addr })
      if (ex.status >= 300 && ex.status < 400) {
        return new VaultRequestFailed({
          status: ex.status,
          path,
          message: `Vault answered ${method} ${path} with a ${ex.status} redirect${ex.location ? ` to ${new URL(ex.location, addr).origin}` : ""}; gldt does not send its token across redirects: set VAULT_ADDR to the active node or its load balancer`,
        })
      }
      return new VaultRequestFailed({
        status: ex.status,
        path,
        message: `Vault answered ${ex.status} to ${method} ${path}${namespace ? ` (namespace ${namespace})` : ""}: ${text || "no error text"}`,
      })
    }

    // ---------------------------------------------------------------------------------- session

    const fromAuth = (body: unknown, now: number, method: string): Effect.Effect<Session, VaultAuthFailed> => {
      const a = (body as { auth?: { client_token?: unknown; lease_duration?: unknown; renewable?: unknown } })?.auth
      if (typeof a?.client_token !== "string" || a.client_token === "") {
        return Effect.fail(new VaultAuthFailed({ method, message: `Vault's ${method} login answer carries no client token` }))
      }
      const leaseMs = typeof a.lease_duration === "number" ? a.lease_duration * 1000 : 0
      return Effect.succeed({ token: Redacted.make(a.client_token), renewable: a.renewable === true, ...lease(now, leaseMs) })
    }

    const login: Effect.Effect<Session, VaultError> = Effect.gen(function* () {
      const now = yield* Clock.currentTimeMillis
      if (auth.method === "token") {
        // The given token: learn its TTL (and whether it can be renewed) from lookup-self.
        const ex = yield* exchange("GET", "auth/token/lookup-self", undefined, auth.token)
        if (ex.status === 403 || ex.status === 401) {
          return yield* new VaultTokenExpired({
            message: `the Vault token is invalid, expired or revoked (Vault: ${scrub(vaultErrorText(ex.text)) || ex.status}); give a valid token in VAULT_TOKEN (or --vault-token-file), or use AppRole / Kubernetes auth so gldt can log in again by itself`,
          })
        }
        if (ex.status !== 200) return yield* failure(ex, "GET", "auth/token/lookup-self")
        const d = (readBody(ex) as { data?: { ttl?: unknown; creation_ttl?: unknown; renewable?: unknown } })?.data
        const ttl = typeof d?.ttl === "number" ? d.ttl * 1000 : 0
        // Renewing by what is left would shrink the lease each time the lookup came late.
        const created = typeof d?.creation_ttl === "number" && d.creation_ttl * 1000 > ttl ? d.creation_ttl * 1000 : undefined
        return { token: auth.token, renewable: d?.renewable === true, ...lease(now, ttl), incrementMs: created }
      }
      const path = `auth/${authMount}/login`
      let body: Record<string, string>
      if (auth.method === "approle") {
        body = { role_id: auth.roleId, secret_id: Redacted.value(auth.secretId) }
      } else {
        const file = auth.jwtFile ?? DEFAULT_K8S_JWT_FILE
        let jwt: string
        try {
          jwt = readFileSync(file, "utf8").trim()
        } catch (e) {
          return yield* new VaultAuthFailed({
            method: "kubernetes",
            message: `cannot read the service-account token file ${file} (${(e as NodeJS.ErrnoException).code ?? String(e)}); mount a service-account token or pass --vault-k8s-jwt-file`,
          })
        }
        if (jwt === "") return yield* new VaultAuthFailed({ method: "kubernetes", message: `the service-account token file ${file} is empty` })
        body = { role: auth.role, jwt }
      }
      const ex = yield* exchange("POST", path, body, undefined)
      if (ex.status !== 200) {
        if (ex.status === 503 && /sealed/i.test(ex.text)) return yield* new VaultSealed({ addr })
        const why = scrub(vaultErrorText(ex.text)) || `status ${ex.status}`
        const hint =
          auth.method === "approle"
            ? `check the role id and secret id (a secret id may be used up or expired) and that AppRole is enabled at auth/${authMount}`
            : `check the role "${auth.role}", that the service account is bound to it, and that Kubernetes auth is enabled at auth/${authMount}`
        return yield* new VaultAuthFailed({ method: auth.method, message: `Vault refused the ${auth.method} login at ${path} (${ex.status}: ${why}); ${hint}` })
      }
      const s = yield* fromAuth(readBody(ex), now, auth.method)
      yield* Effect.logInfo(
        `vault: logged in with ${auth.method} at auth/${authMount} (lease ${Math.round(s.leaseMs / 1000)} s${s.renewable ? ", renewable" : ""})`,
      )
      return s
    })

    const renew = (s: Session): Effect.Effect<Session | undefined, VaultError> =>
      Effect.gen(function* () {
        const now = yield* Clock.currentTimeMillis
        const requested = Math.max(1, Math.round((s.incrementMs ?? s.leaseMs) / 1000))
        const ex = yield* exchange("POST", "auth/token/renew-self", { increment: `${requested}s` }, s.token)
        if (ex.status !== 200) {
          yield* Effect.logInfo(`vault: renewing the token failed (${ex.status}: ${scrub(vaultErrorText(ex.text))})`)
          return undefined
        }
        const renewed = yield* fromAuth(readBody(ex), now, "renew").pipe(Effect.orElseSucceed(() => undefined))
        if (renewed === undefined) return undefined
        // Vault cuts a renewal short at the token's max TTL: use what is left, then log in again (or expire).
        if (renewed.leaseMs + 1000 < requested * 1000) {
          yield* Effect.logInfo(`vault: the token nears its max TTL (${Math.round(renewed.leaseMs / 1000)} s left)`)
          return { ...renewed, token: s.token, renewable: false }
        }
        yield* Effect.logDebug(`vault: renewed the token (lease ${Math.round(renewed.leaseMs / 1000)} s)`)
        return { ...renewed, token: s.token, incrementMs: s.incrementMs }
      })

    /** The session to use now: logs in, renews or re-logs in as its lease requires. */
    const current = (forceLogin: boolean): Effect.Effect<Session, VaultError> =>
      sessionLock.withPermits(1)(
        Effect.gen(function* () {
          const now = yield* Clock.currentTimeMillis
          let s = session
          if (s === undefined || forceLogin) {
            s = yield* login
          } else if (s.expiresAt !== undefined && now >= s.expiresAt - EXPIRY_MARGIN_MS) {
            // Vault floors TTLs to whole seconds, so a lease "at its end" may have up to a second
            // left: a renewable token is asked to renew first (Vault refuses if it really ended).
            const renewed = s.renewable ? yield* renew(s) : undefined
            if (renewed?.renewable) s = renewed
            else if (canLogin) s = yield* login
            else if (renewed !== undefined) s = renewed
            else {
              return yield* new VaultTokenExpired({
                message: `the Vault token expired at ${new Date(s.expiresAt).toISOString()}; give a fresh token, or use AppRole / Kubernetes auth so gldt can log in again by itself`,
              })
            }
          } else if (s.renewAt !== undefined && now >= s.renewAt) {
            const renewed = s.renewable ? yield* renew(s) : undefined
            if (renewed?.renewable) s = renewed
            else if (canLogin) s = yield* login
            else s = renewed ?? { ...s, renewAt: undefined }
          }
          session = s
          return s
        }),
      )

    /** Does the token still look itself up? false means it is expired, revoked or unknown. */
    const tokenAlive = (token: Redacted.Redacted<string>) => Effect.map(exchange("GET", "auth/token/lookup-self", undefined, token), (ex) => ex.status === 200)

    const request = (req: VaultRequest): Effect.Effect<VaultAnswer, VaultError> =>
      Effect.gen(function* () {
        for (let relogin = false; ; relogin = true) {
          const s = yield* current(relogin)
          const ex = yield* exchange(req.method, req.path, req.body, s.token, req.query)
          if ((ex.status >= 200 && ex.status < 300) || ex.status === 404) return { status: ex.status, body: readBody(ex) }
          if (ex.status !== 403 && ex.status !== 401) return yield* failure(ex, req.method, req.path)
          if (yield* tokenAlive(s.token)) {
            return yield* new VaultPermissionDenied({ path: req.path, capabilities: [...req.capabilities], ...(namespace ? { namespace } : {}) })
          }
          if (!canLogin || relogin) {
            return yield* new VaultTokenExpired({
              message: `the Vault token is expired or revoked${s.expiresAt !== undefined ? ` (its lease ended ${new Date(s.expiresAt).toISOString()})` : ""}; give a fresh token (VAULT_TOKEN / --vault-token-file), or use AppRole / Kubernetes auth so gldt can log in again by itself`,
            })
          }
          yield* Effect.logInfo("vault: the token stopped working; logging in again")
        }
      })

    const requireKv2 = (mount: string) =>
      Effect.gen(function* () {
        const m = mount.replace(/^\/+|\/+$/g, "")
        if (mountsOk.has(m)) return
        // Vault answers 403 both for a mount that does not exist and for one the token may not use at all.
        const answer = yield* request({ method: "GET", path: `sys/internal/ui/mounts/${m}`, capabilities: ["read"] }).pipe(
          Effect.catchTag("VaultPermissionDenied", () =>
            Effect.fail(
              new VaultNotKv2({
                mount: m,
                message: `Vault shows this token no mount at ${m}/: check the mount name (vault secrets list) and that the token's policy grants some capability below ${m}/`,
              }),
            ),
          ),
        )
        const data = (answer.body as { data?: { type?: unknown; path?: unknown; options?: { version?: unknown } | null } } | undefined)?.data
        const fix = `mount one with: vault secrets enable -path=${m} -version=2 kv`
        if (answer.status === 404 || data === undefined || data.type === undefined) {
          return yield* new VaultNotKv2({ mount: m, message: `no secrets engine is mounted at ${m}/ (or the token sees none); ${fix}` })
        }
        const type = String(data.type)
        const version = data.options?.version === undefined ? "1" : String(data.options.version)
        const at = typeof data.path === "string" ? data.path.replace(/\/+$/, "") : m
        if (at !== m) {
          return yield* new VaultNotKv2({
            mount: m,
            message: `${m}/ is inside the mount ${at}/, not a mount itself; name the mount exactly (e.g. vault:${at}/…)`,
          })
        }
        if (type !== "kv" && type !== "generic") {
          return yield* new VaultNotKv2({ mount: m, message: `${m}/ is a "${type}" secrets engine, not KV version 2; ${fix}` })
        }
        if (version !== "2") {
          return yield* new VaultNotKv2({
            mount: m,
            message: `${m}/ is a KV version 1 mount; gldt needs KV version 2 (check-and-set, versions, custom metadata): upgrade it with vault kv enable-versioning ${m}/, or ${fix.replace(`-path=${m}`, "-path=<another path>")}`,
          })
        }
        mountsOk.add(m)
      })

    const capabilities = (paths: ReadonlyArray<string>) =>
      Effect.gen(function* () {
        const answer = yield* request({ method: "POST", path: "sys/capabilities-self", body: { paths }, capabilities: ["update"] })
        const body = (answer.body ?? {}) as Record<string, unknown> & { data?: Record<string, unknown> }
        const out: Record<string, ReadonlyArray<string>> = {}
        for (const p of paths) {
          const caps = body.data?.[p] ?? body[p]
          out[p] = Array.isArray(caps) ? caps.map(String) : []
        }
        return out
      })

    return VaultClient.of({ addr, namespace, request, requireKv2, capabilities })
  })

/**
 * Which of `needed` the token lacks on `path`, given `sys/capabilities-self`'s answer: `root` and
 * `sudo` aside, `create` and `update` stand for each other only where Vault says so.
 */
export const missingCapabilities = (granted: ReadonlyArray<string>, needed: ReadonlyArray<string>): ReadonlyArray<string> => {
  if (granted.includes("root")) return []
  if (granted.includes("deny")) return [...needed]
  return needed.filter((c) => !granted.includes(c))
}

/** The client itself (its connections close with the scope). */
export const make = (options: VaultClientOptions): Effect.Effect<VaultClient["Service"], VaultConfigError, Scope.Scope> => makeClient(options)

/** A `VaultClient` layer; its connections close with the layer. */
export const layer = (options: VaultClientOptions): Layer.Layer<VaultClient, VaultConfigError> => Layer.effect(VaultClient, makeClient(options))
