/**
 * `Sink` to one KV version 2 path: each delivery is a new version whose data is
 * `{"username": …, "token": …}`, and the path's custom metadata says which token it holds without
 * anyone reading a value:
 *
 *   gldt-token-id      GitLab id of the token in version gldt-version
 *   gldt-version       the KV version written by the last completed delivery
 *   gldt-expires-at    the token's expiry (ISO 8601) or "never"
 *   gldt-gitlab-url    the GitLab instance
 *   gldt-username      the deploy token's username
 *   gldt-key           the consumer key
 *   gldt-delivered-at  ISO 8601
 *   gldt-next-token-id / gldt-next-version   only while a delivery is in flight (or was interrupted)
 *
 * Delivery writes the metadata twice around the data (next, then data with check-and-set, then the
 * final entry), so after a crash at any point `inspect` still names the token the latest version
 * really holds. A version written by someone else is reported as an unknown token (`Holds{0}`), and
 * the lifecycle replaces it. Metadata keys not starting with `gldt-` are kept as they are.
 */
import { SinkError } from "@gldt/core/Errors"
import { type Credential, type Held, revealToken, Sink } from "@gldt/core/Sink"
import { Clock, Effect, Layer } from "effect"
import { CAS_MISMATCH, kv } from "./Kv.ts"
import { missingCapabilities, VaultClient } from "./VaultClient.ts"
import type { VaultError } from "./VaultErrors.ts"

/**
 * What `remove` does when the consumer is gone (its token is revoked either way):
 * - `delete` (default): soft-deletes the latest version; the version history (older, revoked
 *   credentials) and the metadata stay, and `vault kv undelete` could bring the latest back.
 * - `destroy`: destroys the data of every version for good; the metadata and the list of versions stay.
 * - `purge`: deletes the metadata and every version; nothing is left at the path.
 */
export type RemoveMode = "delete" | "destroy" | "purge"
export const REMOVE_MODES: ReadonlyArray<RemoveMode> = ["delete", "destroy", "purge"]

export interface VaultSinkOptions {
  /** Mount path of a KV version 2 secrets engine, e.g. `secret`. */
  readonly mount: string
  /** Secret path under the mount, e.g. `ci/gitlab-deploy-token`. */
  readonly path: string
  /** Default `delete`. */
  readonly removeMode?: RemoveMode | undefined
  /**
   * How many versions (deliveries) the path keeps, set as its `max_versions`. Default: leave the
   * path's setting alone, i.e. the mount's (KV's own default keeps 10).
   */
  readonly keepVersions?: number | undefined
}

export const META = {
  tokenId: "gldt-token-id",
  version: "gldt-version",
  nextTokenId: "gldt-next-token-id",
  nextVersion: "gldt-next-version",
  expiresAt: "gldt-expires-at",
  gitlabUrl: "gldt-gitlab-url",
  username: "gldt-username",
  key: "gldt-key",
  deliveredAt: "gldt-delivered-at",
} as const

const ownKey = (k: string) => k.startsWith("gldt-")

/** Capabilities a sink needs, per API path kind. */
export const SINK_CAPABILITIES = { data: ["create", "update"], metadata: ["create", "read", "update"] } as const

const ATTEMPTS = 4

export const make = (options: VaultSinkOptions) =>
  Effect.gen(function* () {
    const client = yield* VaultClient
    const store = kv(client, options.mount)
    const path = options.path.replace(/^\/+|\/+$/g, "")
    const removeMode = options.removeMode ?? "delete"
    const keep = options.keepVersions
    const dataPath = store.dataPath(path)
    const metadataPath = store.metadataPath(path)
    const fail = (key: string) => (e: VaultError) => new SinkError({ key, message: `Vault sink ${dataPath}: ${e.message}` })

    const check = (key: string) =>
      Effect.gen(function* () {
        if (keep !== undefined && (!Number.isSafeInteger(keep) || keep < 1)) {
          return yield* Effect.fail(new SinkError({ key, message: `keepVersions must be a positive integer (got ${keep})` }))
        }
        if (path === "")
          return yield* Effect.fail(new SinkError({ key, message: `the Vault sink needs a secret path under the mount (vault:${store.mount}/PATH)` }))
        yield* client.requireKv2(store.mount).pipe(Effect.mapError(fail(key)))
        const caps = yield* client.capabilities([dataPath, metadataPath]).pipe(Effect.mapError(fail(key)))
        const problems: string[] = []
        const missingData = missingCapabilities(caps[dataPath] ?? [], SINK_CAPABILITIES.data)
        const missingMeta = missingCapabilities(caps[metadataPath] ?? [], SINK_CAPABILITIES.metadata)
        if (missingData.length > 0) problems.push(`"${missingData.join('", "')}" on ${dataPath}`)
        if (missingMeta.length > 0) problems.push(`"${missingMeta.join('", "')}" on ${metadataPath}`)
        if (problems.length > 0) {
          return yield* Effect.fail(
            new SinkError({
              key,
              message: `Vault sink: permission denied: the Vault token's policy lacks ${problems.join(" and ")}; add: path "${dataPath}" { capabilities = ["create", "update"] } and path "${metadataPath}" { capabilities = ["create", "read", "update"] }`,
            }),
          )
        }
      })

    const deliver = (key: string, credential: Credential) =>
      Effect.gen(function* () {
        const now = yield* Clock.currentTimeMillis
        for (let attempt = 1; ; attempt++) {
          const meta = yield* store.readMetadata(path).pipe(Effect.mapError(fail(key)))
          const current = meta?.currentVersion ?? 0
          const others = Object.fromEntries(Object.entries(meta?.customMetadata ?? {}).filter(([k]) => !ownKey(k)))
          const previous = Object.fromEntries(Object.entries(meta?.customMetadata ?? {}).filter(([k]) => ownKey(k) && !k.startsWith("gldt-next-")))
          yield* store
            .writeMetadata(path, { ...others, ...previous, [META.nextTokenId]: String(credential.tokenId), [META.nextVersion]: String(current + 1) }, keep)
            .pipe(Effect.mapError(fail(key)))
          const written = yield* store.write(path, { username: credential.username, token: revealToken(credential) }, current).pipe(Effect.mapError(fail(key)))
          if (written === CAS_MISMATCH) {
            // Someone wrote the path meanwhile: plan again from its new version (bounded).
            if (attempt < ATTEMPTS) continue
            return yield* Effect.fail(
              new SinkError({
                key,
                message: `Vault sink ${dataPath}: the path kept changing under gldt's writes (${ATTEMPTS} attempts); is another writer using it?`,
              }),
            )
          }
          yield* store
            .writeMetadata(
              path,
              {
                ...others,
                [META.tokenId]: String(credential.tokenId),
                [META.version]: String(written),
                [META.expiresAt]: credential.expiresAt ?? "never",
                [META.gitlabUrl]: credential.gitlabUrl,
                [META.username]: credential.username,
                [META.key]: key,
                [META.deliveredAt]: new Date(now).toISOString(),
              },
              keep,
            )
            .pipe(Effect.mapError(fail(key)))
          return
        }
      }).pipe(Effect.uninterruptible)

    const inspect = (key: string) =>
      Effect.gen(function* () {
        const meta = yield* store.readMetadata(path).pipe(Effect.mapError(fail(key)))
        if (meta === undefined || meta.currentVersion === 0) return { _tag: "Empty" } satisfies Held
        const latest = meta.versions[String(meta.currentVersion)]
        if (latest === undefined || latest.deleted || latest.destroyed) return { _tag: "Empty" } satisfies Held
        const c = meta.customMetadata
        const version = String(meta.currentVersion)
        if (c[META.version] === version && Number.isSafeInteger(Number(c[META.tokenId])))
          return { _tag: "Holds", tokenId: Number(c[META.tokenId]) } satisfies Held
        if (c[META.nextVersion] === version && Number.isSafeInteger(Number(c[META.nextTokenId])))
          return { _tag: "Holds", tokenId: Number(c[META.nextTokenId]) } satisfies Held
        // A version gldt did not write: holds no token gldt knows.
        return { _tag: "Holds", tokenId: 0 } satisfies Held
      })

    const remove = (key: string) =>
      Effect.gen(function* () {
        const meta = yield* store.readMetadata(path).pipe(Effect.mapError(fail(key)))
        if (meta === undefined) return
        if (removeMode === "purge") return yield* store.purge(path).pipe(Effect.mapError(fail(key)))
        if (removeMode === "destroy") {
          const versions = Object.entries(meta.versions)
            .filter(([, v]) => !v.destroyed)
            .map(([k]) => Number(k))
          if (versions.length > 0) yield* store.destroy(path, versions).pipe(Effect.mapError(fail(key)))
          return
        }
        const latest = meta.versions[String(meta.currentVersion)]
        if (latest !== undefined && !latest.deleted && !latest.destroyed) yield* store.softDelete(path).pipe(Effect.mapError(fail(key)))
      }).pipe(Effect.uninterruptible)

    return Sink.of({ check, deliver, inspect, remove })
  })

/** `Sink` writing `{username, token}` versions to `<mount>/<path>`, over the `VaultClient` in context. */
export const layer = (options: VaultSinkOptions): Layer.Layer<Sink, never, VaultClient> => Layer.effect(Sink, make(options))
