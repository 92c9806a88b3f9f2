/**
 * KV version 2 operations on one mount, as gldt uses them: read (a version), write with
 * check-and-set, metadata with custom fields, soft delete, destroy, list. Paths are relative to the
 * mount; each names the capabilities its API path needs, so a 403 says which policy line is missing.
 */
import { Effect } from "effect"
import type { VaultClient, VaultAnswer } from "./VaultClient.ts"
import type { VaultError } from "./VaultErrors.ts"

export interface KvVersionInfo {
  readonly version: number
  readonly deleted: boolean
  readonly destroyed: boolean
}

export interface KvSecret {
  /** null when the version was deleted or destroyed. */
  readonly data: Record<string, unknown> | null
  readonly info: KvVersionInfo
}

export interface KvMetadata {
  readonly currentVersion: number
  readonly versions: Readonly<Record<string, { readonly deleted: boolean; readonly destroyed: boolean }>>
  readonly customMetadata: Readonly<Record<string, string>>
}

/** The outcome of a check-and-set write Vault refused because the current version differs. */
export const CAS_MISMATCH = "cas-mismatch" as const

const isDeleted = (t: unknown) => typeof t === "string" && t !== ""

export const kv = (client: VaultClient["Service"], mount: string) => {
  const m = mount.replace(/^\/+|\/+$/g, "")
  const data = (path: string) => `${m}/data/${path}`
  const metadata = (path: string) => `${m}/metadata/${path}`

  const infoOf = (u: unknown): KvVersionInfo | undefined => {
    const md = u as { version?: unknown; deletion_time?: unknown; destroyed?: unknown } | null | undefined
    if (typeof md?.version !== "number") return undefined
    return { version: md.version, deleted: isDeleted(md.deletion_time), destroyed: md.destroyed === true }
  }

  /** The latest (or a given) version; undefined when the path never held one. */
  const read = (path: string, version?: number): Effect.Effect<KvSecret | undefined, VaultError> =>
    Effect.map(
      client.request({
        method: "GET",
        path: data(path),
        query: version === undefined ? undefined : { version: String(version) },
        capabilities: ["read"],
      }),
      (a: VaultAnswer) => {
        const body = (a.body as { data?: { data?: unknown; metadata?: unknown } } | undefined)?.data
        const info = infoOf(body?.metadata)
        if (info === undefined) return undefined
        const d = body?.data
        return { data: a.status === 200 && typeof d === "object" && d !== null ? (d as Record<string, unknown>) : null, info }
      },
    )

  /** Writes a new version if the current one is `cas` (0: the path has none). Returns the new version. */
  const write = (path: string, value: Record<string, unknown>, cas: number | undefined): Effect.Effect<number | typeof CAS_MISMATCH, VaultError> =>
    client
      .request({
        method: "POST",
        path: data(path),
        body: { ...(cas === undefined ? {} : { options: { cas } }), data: value },
        capabilities: cas === 0 ? ["create"] : ["create", "update"],
      })
      .pipe(
        Effect.map((a) => {
          const v = (a.body as { data?: { version?: unknown } } | undefined)?.data?.version
          return typeof v === "number" ? v : 0
        }),
        Effect.catchIf(
          (e): e is Extract<VaultError, { _tag: "VaultRequestFailed" }> =>
            e._tag === "VaultRequestFailed" && e.status === 400 && /check-and-set/i.test(e.message),
          () => Effect.succeed(CAS_MISMATCH),
        ),
      )

  const readMetadata = (path: string): Effect.Effect<KvMetadata | undefined, VaultError> =>
    Effect.map(client.request({ method: "GET", path: metadata(path), capabilities: ["read"] }), (a) => {
      if (a.status === 404) return undefined
      const d = (a.body as { data?: { current_version?: unknown; versions?: unknown; custom_metadata?: unknown } } | undefined)?.data
      const versions: Record<string, { deleted: boolean; destroyed: boolean }> = {}
      for (const [k, v] of Object.entries((d?.versions ?? {}) as Record<string, { deletion_time?: unknown; destroyed?: unknown }>)) {
        versions[k] = { deleted: isDeleted(v.deletion_time), destroyed: v.destroyed === true }
      }
      const custom: Record<string, string> = {}
      for (const [k, v] of Object.entries((d?.custom_metadata ?? {}) as Record<string, unknown>)) custom[k] = String(v)
      return { currentVersion: typeof d?.current_version === "number" ? d.current_version : 0, versions, customMetadata: custom }
    })

  /** Replaces the path's custom metadata (and sets how many versions it keeps, if given); other settings stay. */
  const writeMetadata = (path: string, customMetadata: Readonly<Record<string, string>>, maxVersions?: number): Effect.Effect<void, VaultError> =>
    Effect.asVoid(
      client.request({
        method: "POST",
        path: metadata(path),
        body: { custom_metadata: customMetadata, ...(maxVersions === undefined ? {} : { max_versions: maxVersions }) },
        capabilities: ["create", "update"],
      }),
    )

  /** Soft-deletes the latest version (`vault kv undelete` brings it back). */
  const softDelete = (path: string) => Effect.asVoid(client.request({ method: "DELETE", path: data(path), capabilities: ["delete"] }))

  /** Destroys the data of the given versions for good; the metadata and version list stay. */
  const destroy = (path: string, versions: ReadonlyArray<number>) =>
    Effect.asVoid(client.request({ method: "POST", path: `${m}/destroy/${path}`, body: { versions }, capabilities: ["update"] }))

  /** Deletes the metadata and every version (no history is left). */
  const purge = (path: string) => Effect.asVoid(client.request({ method: "DELETE", path: metadata(path), capabilities: ["delete"] }))

  /** Names directly under `prefix` (folders end with `/`); empty when there are none. */
  const list = (prefix: string): Effect.Effect<ReadonlyArray<string>, VaultError> =>
    // With the trailing slash, as Vault checks list permissions on the folder path.
    Effect.map(client.request({ method: "LIST", path: `${metadata(prefix).replace(/\/+$/, "")}/`, capabilities: ["list"] }), (a) => {
      const keys = (a.body as { data?: { keys?: unknown } } | undefined)?.data?.keys
      return a.status === 404 || !Array.isArray(keys) ? [] : keys.map(String)
    })

  return { mount: m, dataPath: data, metadataPath: metadata, read, write, readMetadata, writeMetadata, softDelete, destroy, purge, list }
}

export type Kv = ReturnType<typeof kv>
