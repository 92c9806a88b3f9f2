/** A real Vault dev server per test file, policies and tokens made through its API, and client layers. */
import { startVault, type Vault } from "@gldt/testenv"
import { Effect, Layer, Logger, Redacted, References } from "effect"
import { afterAll, beforeAll } from "vitest"
import { type VaultAuth, VaultClient, type VaultClientOptions } from "../src/VaultClient.ts"

/** Starts a dev server once for the test file (stopped after it) and returns an accessor. */
export const useVault = (): (() => Vault) => {
  let vault: Vault | undefined
  beforeAll(async () => {
    vault = await startVault({ log: () => undefined })
  }, 40 * 60_000)
  afterAll(async () => {
    await vault?.stop()
  })
  return () => {
    if (!vault) throw new Error("vault not started")
    return vault
  }
}

/** Fails the test with Vault's answer unless the call succeeded. */
export const api = async (vault: Vault, method: string, path: string, body?: unknown, token?: string): Promise<unknown> => {
  const r = await vault.request(method, path, body, token)
  if (r.status >= 300) throw new Error(`vault ${method} ${path}: ${r.status} ${JSON.stringify(r.body)}`)
  return r.body
}

let counter = 0
export const unique = (prefix: string) => `${prefix}-${process.pid}-${++counter}`

/** Writes a policy and returns a token holding only it (plus `default`). */
export const tokenWithPolicy = async (
  vault: Vault,
  hcl: string,
  options: { ttl?: string; renewable?: boolean; explicitMaxTtl?: string } = {},
): Promise<string> => {
  const name = unique("policy")
  await api(vault, "PUT", `sys/policies/acl/${name}`, { policy: hcl })
  const body = (await api(vault, "POST", "auth/token/create", {
    policies: [name],
    ...(options.ttl ? { ttl: options.ttl } : {}),
    ...(options.explicitMaxTtl ? { explicit_max_ttl: options.explicitMaxTtl } : {}),
    renewable: options.renewable ?? true,
  })) as { auth: { client_token: string } }
  return body.auth.client_token
}

export const setPolicy = (vault: Vault, name: string, hcl: string) => api(vault, "PUT", `sys/policies/acl/${name}`, { policy: hcl })

/** A token with a named policy, so the test can rewrite the policy later. */
export const tokenWithNamedPolicy = async (vault: Vault, name: string, hcl: string): Promise<string> => {
  await setPolicy(vault, name, hcl)
  const body = (await api(vault, "POST", "auth/token/create", { policies: [name] })) as { auth: { client_token: string } }
  return body.auth.client_token
}

export const tokenAuth = (token: string): VaultAuth => ({ method: "token", token: Redacted.make(token) })

export const clientLayer = (vault: Vault, options: Partial<VaultClientOptions> = {}) =>
  VaultClient.layer({ addr: vault.addr, auth: tokenAuth(vault.token), ...options })

/** Runs an effect over `layer` with logs silenced (or collected by `logger`). */
export const run = <A, E, R>(layer: Layer.Layer<R, unknown>, effect: Effect.Effect<A, E, R>, logger: Layer.Layer<never> = Logger.layer([])): Promise<A> =>
  Effect.runPromise(Effect.provide(effect, Layer.merge(layer, logger)) as Effect.Effect<A, unknown>)

/** The failure of `effect` (the test fails if it succeeds). */
export const failure = <A, E, R>(layer: Layer.Layer<R, unknown>, effect: Effect.Effect<A, E, R>, logger?: Layer.Layer<never>): Promise<E> =>
  run(layer, Effect.flip(effect), logger)

/** Collects every log message (level and text) in `lines`. */
export const collectingLogger = (lines: string[]) =>
  Layer.mergeAll(
    Logger.layer([Logger.make(({ logLevel, message }) => lines.push(`${logLevel} ${Array.isArray(message) ? message.join(" ") : String(message)}`))]),
    Layer.succeed(References.MinimumLogLevel, "All"),
  )

/** The KV v2 secret engine mounted at `path` (version 2 unless `version` says 1). */
export const mountKv = (vault: Vault, path: string, version: 1 | 2 = 2) =>
  api(vault, "POST", `sys/mounts/${path}`, { type: "kv", options: { version: String(version) } })

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))
