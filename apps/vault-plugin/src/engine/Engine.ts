/**
 * The gldt secrets engine: Vault's logical backend for GitLab deploy tokens.
 *
 * Every `read creds/<role>` is one lifecycle key of @gldt/core, minted with the write-ahead intent
 * (I1) kept in the mount's storage, and handed to Vault as a lease. GitLab's own `expires_at` is set
 * a day past the lease's max TTL, so a token outlives no lease by more than that even if every
 * revocation failed. Revoking the lease deletes the token (404 counts as done; anything else is an
 * error, which Vault retries). `tidy`, also run whenever the plugin starts, finishes interrupted
 * creates and revokes tokens whose lease never reached Vault or is long over.
 */
import { randomBytes } from "node:crypto"
import type { Connection, GitLab } from "@gldt/core/GitLab"
import { type Job, type LifecycleFailure, type Report, reconcile, recover, revokeAll } from "@gldt/core/Lifecycle"
import { type Credential, revealToken, Sink } from "@gldt/core/Sink"
import type { DeployTokenSpec } from "@gldt/core/Spec"
import { State } from "@gldt/core/State"
import { GitLabClient, type Options as GitLabOptions } from "@gldt/gitlab"
import { Effect, Layer, Logger, ManagedRuntime, Option, Redacted, References } from "effect"
import { type Fields, type Level, log } from "../goplugin/Log.ts"
import {
  type LogicalBackend,
  type Paths,
  type Request,
  type Response,
  type SetupContext,
  type Storage,
  type SystemView,
  UnsupportedOperation,
  UnsupportedPath,
  VaultError,
} from "../vault/Logical.ts"
import { type EngineConfig, parseConfig, parseRole, ROLE_NAME, type Role, showConfig, showRole } from "./Fields.ts"
import { pluginStateLayer } from "./PluginState.ts"

/** GitLab's expiry is set this long past the lease's max TTL (a GitLab keeping only dates still outlives the lease). */
export const BACKSTOP_MS = 24 * 3_600_000
/** A lease is certainly over this long after its max TTL; tidy then revokes whatever is left of it. */
export const LEASE_OVER_MS = 10 * 60_000
export const SECRET_TYPE = "gitlab_deploy_token"

const CONFIG_KEY = "config"
const ROLE_PREFIX = "roles/"
const LEASE_PREFIX = "leases/"

/** Written after a mint, before Vault receives the secret: this key's token is held by a lease. */
interface LeaseMarker {
  readonly role: string
  readonly tokenId: number
  readonly issuedAt: number
  /** issuedAt + the lease's max TTL. */
  readonly maxEnd: number
  readonly gitlabExpiresAt: string | null
}

export interface EngineOptions {
  /** How long after a create was sent its outcome may still change (core default 60 s). */
  readonly createSettleMs?: number | undefined
  /** GitLab client tuning (timeouts, retries). */
  readonly gitlab?: GitLabOptions.GitLabClientOptions | undefined
}

export interface TidyReport {
  readonly orphansRevoked: number
  readonly expiredRevoked: number
  readonly unsettled: number
  readonly errors: ReadonlyArray<string>
}

const json = (b: Buffer) => JSON.parse(b.toString("utf8")) as unknown

/** Maps a lifecycle failure to Vault's answer; messages never carry a secret (core guarantees it). */
const toVaultError = (e: LifecycleFailure | Error): VaultError => {
  const tag = "_tag" in e ? (e._tag as string) : "Error"
  const status = (() => {
    switch (tag) {
      case "Unauthorized":
      case "Forbidden":
      case "TargetNotFound":
      case "Invalid":
      case "Moved":
        return 400
      case "RateLimited":
      case "Unavailable":
        return 502
      default:
        return 500
    }
  })()
  const hint = tag === "Unauthorized" ? " (check the token in gldt/config)" : tag === "TargetNotFound" ? " (check project_id/group_id of the role)" : ""
  return new VaultError(status, `GitLab: ${tag}: ${e.message}${hint}`)
}

const leaseKey = () => randomBytes(12).toString("hex")

const LEVELS: Record<string, Level> = { Trace: "trace", Debug: "debug", Info: "info", Warn: "warn", Error: "error", Fatal: "error" }

/** Effect's log entries as hclog lines (message and annotations; core annotates ids, never values). */
const hclogLogger = Logger.make(({ message, logLevel, fiber, date }) => {
  const fields: Fields = {}
  for (const [k, v] of Object.entries(fiber.getRef(References.CurrentLogAnnotations))) {
    if (typeof v === "string" || typeof v === "number" || typeof v === "boolean") fields[k] = v
  }
  const text = (Array.isArray(message) ? message : [message]).map((m) => (typeof m === "string" ? m : JSON.stringify(m))).join(" ")
  log(LEVELS[logLevel] ?? "info", text, fields, date)
})

export class Engine implements LogicalBackend {
  private storage: Storage | undefined
  private system: SystemView | undefined
  private runtime: ManagedRuntime.ManagedRuntime<GitLab | State | Sink, never> | undefined
  /** Keys of mints running in this process: tidy leaves them alone. */
  private readonly inFlight = new Set<string>()
  /** Credentials between the lifecycle's delivery and the reply; removed at once. */
  private readonly handover = new Map<string, Credential>()
  private tidying: Promise<TidyReport> | undefined
  private retryTimer: NodeJS.Timeout | undefined
  private tidyRetries = 0
  private readonly options: EngineOptions

  constructor(options: EngineOptions = {}) {
    this.options = options
  }

  async setup(ctx: SetupContext): Promise<void> {
    this.storage = ctx.storage
    this.system = ctx.system
    const handover = this.handover
    const sink = Layer.succeed(
      Sink,
      Sink.of({
        check: () => Effect.void,
        deliver: (key, credential) => Effect.sync(() => void handover.set(key, credential)),
        inspect: (key) => Effect.sync(() => (handover.has(key) ? { _tag: "Holds", tokenId: handover.get(key)!.tokenId } : { _tag: "Empty" })),
        remove: (key) => Effect.sync(() => void handover.delete(key)),
      }),
    )
    // Lifecycle logs (ids only) go to stderr as hclog lines, which Vault re-logs; stdout belongs to the handshake.
    const logging = Logger.layer([hclogLogger])
    this.runtime = ManagedRuntime.make(Layer.mergeAll(GitLabClient.layer(this.options.gitlab), pluginStateLayer(ctx.storage), sink, logging))
  }

  /** After the mount is set up and after Vault restarted a crashed plugin: recover in the background. */
  async initialize(): Promise<void> {
    this.tidyInBackground("plugin start")
  }

  specialPaths(): Paths {
    return { sealWrapStorage: [CONFIG_KEY] }
  }

  async cleanup(): Promise<void> {
    if (this.retryTimer) clearTimeout(this.retryTimer)
    await this.runtime?.dispose()
  }

  private get store(): Storage {
    if (this.storage === undefined) throw new VaultError(500, "backend is not set up")
    return this.storage
  }

  private run<A>(effect: Effect.Effect<A, LifecycleFailure, GitLab | State | Sink>): Promise<A> {
    if (this.runtime === undefined) throw new VaultError(500, "backend is not set up")
    return this.runtime.runPromise(effect.pipe(Effect.mapError(toVaultError)))
  }

  async handleRequest(req: Request): Promise<Response | undefined> {
    switch (req.operation) {
      case "revoke":
        return this.revoke(req)
      case "renew":
        return this.renew(req)
      case "rollback":
        return undefined
      case "help":
        return { data: { help: HELP, see_also: [] } }
    }
    const path = req.path.replace(/\/+$/, "")
    if (path === "config") return this.config(req)
    if (path === "tidy") {
      if (req.operation !== "update" && req.operation !== "create") throw new UnsupportedOperation()
      if (Object.keys(req.data).length > 0) throw new VaultError(400, `tidy takes no fields; got ${Object.keys(req.data).join(", ")}`)
      const report = await this.tidy("requested")
      return {
        data: { orphans_revoked: report.orphansRevoked, expired_revoked: report.expiredRevoked, unsettled: report.unsettled, errors: [...report.errors] },
      }
    }
    if (path === "roles") {
      if (req.operation !== "list") throw new UnsupportedOperation()
      const keys = (await this.store.list(ROLE_PREFIX)).filter((k) => !k.endsWith("/")).sort()
      return { data: { keys } }
    }
    const role = /^roles\/(.+)$/.exec(path)
    if (role) return this.role(req, role[1]!)
    const creds = /^creds\/(.+)$/.exec(path)
    if (creds) {
      if (req.operation !== "read") throw new UnsupportedOperation()
      return this.creds(creds[1]!)
    }
    throw new UnsupportedPath()
  }

  // ------------------------------------------------------------------------------------ config

  private async loadConfig(): Promise<EngineConfig | undefined> {
    const entry = await this.store.get(CONFIG_KEY)
    return entry === undefined ? undefined : (json(entry.value) as EngineConfig)
  }

  private async config(req: Request): Promise<Response | undefined> {
    switch (req.operation) {
      case "read": {
        const c = await this.loadConfig()
        return c === undefined ? undefined : { data: showConfig(c) }
      }
      case "create":
      case "update": {
        const c = parseConfig(req.data, await this.loadConfig())
        await this.store.put(CONFIG_KEY, Buffer.from(JSON.stringify(c)), true)
        log("info", "configuration written", { url: c.url })
        return undefined
      }
      case "delete":
        await this.store.delete(CONFIG_KEY)
        return undefined
      default:
        throw new UnsupportedOperation()
    }
  }

  private connection(c: EngineConfig): Connection {
    return { url: c.url, accessToken: Redacted.make(c.token), caPem: c.caPem }
  }

  private async requireConfig(): Promise<EngineConfig> {
    const c = await this.loadConfig()
    if (c === undefined)
      throw new VaultError(400, "the engine is not configured: write url and token to config first (vault write gldt/config url=https://… token=…)")
    return c
  }

  // ------------------------------------------------------------------------------------- roles

  private async loadRole(name: string): Promise<Role | undefined> {
    const entry = await this.store.get(ROLE_PREFIX + name)
    return entry === undefined ? undefined : (json(entry.value) as Role)
  }

  private async role(req: Request, name: string): Promise<Response | undefined> {
    if (!ROLE_NAME.test(name))
      throw new VaultError(400, `role name ${JSON.stringify(name)}: use letters, digits, '.', '_' and '-' (at most 128), starting with a letter or digit`)
    switch (req.operation) {
      case "read": {
        const r = await this.loadRole(name)
        return r === undefined ? undefined : { data: showRole(r) }
      }
      case "create":
      case "update": {
        const r = parseRole(name, req.data)
        await this.store.put(ROLE_PREFIX + name, Buffer.from(JSON.stringify(r)))
        return undefined
      }
      case "delete":
        await this.store.delete(ROLE_PREFIX + name)
        return undefined
      default:
        throw new UnsupportedOperation()
    }
  }

  /** The lease's TTL and max TTL: the role's, else the config's, else the mount's. */
  private async ttls(config: EngineConfig, role: Role): Promise<{ ttlMs: number; maxTtlMs: number }> {
    const system = this.system
    const mountDefault = system ? await system.defaultLeaseTtlMs() : 3_600_000
    const mountMax = system ? await system.maxLeaseTtlMs() : 24 * 3_600_000
    let maxTtlMs = role.maxTtlMs || config.maxTtlMs || mountMax
    if (mountMax > 0) maxTtlMs = Math.min(maxTtlMs, mountMax)
    const ttlMs = Math.min(role.ttlMs || config.defaultTtlMs || mountDefault, maxTtlMs)
    return { ttlMs, maxTtlMs }
  }

  // ------------------------------------------------------------------------------------- creds

  private async creds(roleName: string): Promise<Response> {
    if (!ROLE_NAME.test(roleName)) throw new VaultError(400, `role name ${JSON.stringify(roleName)} is not valid`)
    const config = await this.requireConfig()
    const role = await this.loadRole(roleName)
    if (role === undefined)
      throw new VaultError(400, `role ${JSON.stringify(roleName)} does not exist; create it with vault write gldt/roles/${roleName} project_id=… scopes=…`)
    const { ttlMs, maxTtlMs } = await this.ttls(config, role)
    const key = leaseKey()
    this.inFlight.add(key)
    try {
      const issuedAt = Date.now()
      const spec: DeployTokenSpec = {
        url: config.url,
        target: role.target,
        name: role.name,
        scopes: role.scopes,
        username: role.username,
        expiry: { kind: "at", at: issuedAt + maxTtlMs + BACKSTOP_MS },
        auth: { secretRef: { name: "vault-mount-config", key: "token" } },
        revokeGracePeriodMs: 0,
        renewBeforeExpiryMs: undefined,
        caBundle: config.caPem,
        caProvider: undefined,
      }
      const job: Job = {
        key,
        spec,
        connection: this.connection(config),
        policy: { refreshIntervalMs: 0, graceMs: 0, refreshPolicy: "CreatedOnce", createSettleMs: this.options.createSettleMs },
      }
      const report: Report = await this.run(reconcile(job))
      const credential = this.handover.get(key)
      this.handover.delete(key)
      if (credential === undefined || report.currentTokenId === undefined) {
        throw new VaultError(500, "the deploy token was not minted; see the plugin log (tidy revokes anything left)")
      }
      const record = await this.run(State.use((s) => s.load(key)))
      const expiresAt = Option.isSome(record) ? (record.value.record.current?.expiresAt ?? null) : null
      const marker: LeaseMarker = { role: roleName, tokenId: credential.tokenId, issuedAt, maxEnd: issuedAt + maxTtlMs, gitlabExpiresAt: expiresAt }
      await this.store.put(LEASE_PREFIX + key, Buffer.from(JSON.stringify(marker)))
      log("info", "deploy token leased", { role: roleName, token_id: credential.tokenId, key })
      return {
        data: { username: credential.username, token: revealToken(credential), token_id: credential.tokenId, expires_at: expiresAt },
        secret: {
          ttlMs,
          maxTtlMs,
          renewable: true,
          internalData: { secret_type: SECRET_TYPE, key, role: roleName, token_id: credential.tokenId, max_ttl_ms: maxTtlMs, gitlab_expires_at: expiresAt },
        },
      }
    } catch (e) {
      // A failed read may leave an open intent (a create whose outcome is unknown) or an unleased
      // token: tidy resolves them once the create has settled.
      this.scheduleTidy()
      throw e
    } finally {
      this.handover.delete(key)
      this.inFlight.delete(key)
    }
  }

  // ----------------------------------------------------------------------------- renew, revoke

  private secretKey(req: Request): string {
    const key = req.secret?.internalData.key
    if (req.secret?.internalData.secret_type !== SECRET_TYPE || typeof key !== "string") {
      throw new VaultError(400, "this lease was not issued by the gldt engine")
    }
    return key
  }

  private async renew(req: Request): Promise<Response> {
    const key = this.secretKey(req)
    const marker = await this.store.get(LEASE_PREFIX + key)
    if (marker === undefined) throw new VaultError(400, "the deploy token of this lease is gone; read new credentials")
    const m = json(marker.value) as LeaseMarker
    const secret = req.secret!
    const now = Date.now()
    const config = await this.loadConfig()
    const role = await this.loadRole(m.role)
    const ttls = config && role ? await this.ttls(config, role) : undefined
    const maxTtlMs = Number(secret.internalData.max_ttl_ms) || m.maxEnd - m.issuedAt
    const issuedAt = secret.leaseOptions.issueTime ?? m.issuedAt
    const remaining = issuedAt + maxTtlMs - now
    const gitlabLeft = m.gitlabExpiresAt ? Date.parse(m.gitlabExpiresAt) - now : Number.POSITIVE_INFINITY
    const wanted = secret.leaseOptions.incrementMs || ttls?.ttlMs || secret.leaseOptions.ttlMs
    const ttlMs = Math.min(wanted, remaining, gitlabLeft)
    if (ttlMs <= 0) throw new VaultError(400, "the lease has reached its max TTL; read new credentials")
    return { secret: { issueTime: secret.leaseOptions.issueTime, ttlMs, maxTtlMs, renewable: true, internalData: secret.internalData } }
  }

  /**
   * Revokes every token of `key`; done only when its record tracks none any more. `retryNow` skips
   * core's per-token back-off: a revoke request from Vault is itself the retry, on Vault's back-off.
   */
  private async revokeKey(key: string, config: EngineConfig, retryNow: boolean): Promise<void> {
    const report = await this.run(revokeAll({ key, connection: this.connection(config) }, { createSettleMs: this.options.createSettleMs, retryNow }))
    if (report.revokeErrors.length > 0) {
      const detail = report.revokeErrors.map((e) => `token ${e.tokenId}: ${e.error}`).join("; ")
      throw new VaultError(502, `revoking the deploy token failed (${detail}); it stays tracked and Vault retries`)
    }
    const left = await this.run(State.use((s) => s.load(key)))
    if (Option.isSome(left)) {
      const r = left.value.record
      const tracked = [r.current, r.pending, ...r.retiring].filter((t) => t !== undefined).map((t) => t.id)
      if (tracked.length > 0 || r.intent !== undefined) {
        throw new VaultError(502, `deploy token ${tracked.join(", ") || "(interrupted create)"} is not revoked yet; it stays tracked and Vault retries`)
      }
    }
    await this.store.delete(LEASE_PREFIX + key)
    for (const a of report.actions) if (a.action === "revoked") log("info", "deploy token revoked", { key, token_id: a.tokenId })
  }

  private async revoke(req: Request): Promise<undefined> {
    const key = this.secretKey(req)
    const config = await this.loadConfig()
    if (config === undefined) throw new VaultError(500, "cannot revoke: config is gone; write url and token to config again and Vault retries")
    await this.revokeKey(key, config, true)
    return undefined
  }

  // -------------------------------------------------------------------------------------- tidy

  /** Runs tidy again once an interrupted create has settled; backs off while it keeps finding work it cannot finish. */
  private scheduleTidy(): void {
    if (this.retryTimer) return
    const settle = (this.options.createSettleMs ?? 60_000) + 1_000
    const delay = Math.min(settle * 2 ** Math.min(this.tidyRetries, 16), Math.max(settle, 3_600_000))
    this.tidyRetries++
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined
      this.tidyInBackground("settle")
    }, delay)
    this.retryTimer.unref()
  }

  private tidyInBackground(reason: string): void {
    this.tidy(reason).then(
      (r) => {
        if (r.orphansRevoked + r.expiredRevoked + r.unsettled + r.errors.length > 0) {
          log("info", "tidy finished", {
            reason,
            orphans_revoked: r.orphansRevoked,
            expired_revoked: r.expiredRevoked,
            unsettled: r.unsettled,
            errors: r.errors.length,
          })
        }
        if (r.unsettled > 0 || r.errors.length > 0) this.scheduleTidy()
        else this.tidyRetries = 0
      },
      (e: unknown) => {
        log("warn", "tidy failed", { reason, error: e instanceof Error ? e.message : String(e) })
        this.scheduleTidy()
      },
    )
  }

  /** One tidy at a time; a request while one runs waits for it. */
  tidy(reason: string): Promise<TidyReport> {
    if (this.tidying === undefined) {
      this.tidying = this.tidyOnce(reason).finally(() => {
        this.tidying = undefined
      })
    }
    return this.tidying
  }

  private async tidyOnce(_reason: string): Promise<TidyReport> {
    const config = await this.loadConfig()
    const keys = await this.run(State.use((s) => s.list()))
    if (keys.length === 0) return { orphansRevoked: 0, expiredRevoked: 0, unsettled: 0, errors: [] }
    if (config === undefined)
      return { orphansRevoked: 0, expiredRevoked: 0, unsettled: 0, errors: ["config is missing: tokens cannot be revoked until it is written again"] }
    const connection = this.connection(config)
    let orphansRevoked = 0
    let expiredRevoked = 0
    let unsettled = 0
    const errors: string[] = []
    for (const key of keys) {
      if (this.inFlight.has(key)) continue
      try {
        const entry = await this.store.get(LEASE_PREFIX + key)
        if (entry === undefined) {
          // Vault never received this mint's secret: whatever it made belongs to no lease.
          const recovered = await this.run(recover({ key, connection }, { createSettleMs: this.options.createSettleMs, graceMs: 0 }))
          if (recovered.openIntent) {
            unsettled++
            continue
          }
          await this.revokeKey(key, config, false)
          orphansRevoked++
        } else if (Date.now() > (json(entry.value) as LeaseMarker).maxEnd + LEASE_OVER_MS) {
          await this.revokeKey(key, config, false)
          expiredRevoked++
        }
      } catch (e) {
        errors.push(`${key}: ${e instanceof Error ? e.message : String(e)}`)
      }
    }
    return { orphansRevoked, expiredRevoked, unsettled, errors }
  }
}

const HELP = `The gldt secrets engine leases GitLab deploy tokens.

  config          url (https only), token (write-only), ca_pem, default_ttl, max_ttl
  roles/<name>    project_id or group_id, name, scopes (list or comma list), username, ttl, max_ttl
  creds/<name>    read: a fresh deploy token (username, token, token_id, expires_at) under a lease
  tidy            write: finish interrupted creates and revoke what they left
`
