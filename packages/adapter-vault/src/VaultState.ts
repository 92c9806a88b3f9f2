/**
 * `State` in Vault's KV version 2: one secret per consumer key under `<mount>/<prefix>/`, written
 * with check-and-set.
 *
 *   <mount>/data/<prefix>/<escaped key>    {"gldt": "state", "key": "<key>", "record": {…}}
 *
 * - The version of a record is the KV version number. `save(key, record, null)` writes with
 *   `cas: 0` (or, after a `remove`, with the tombstone's version); `save(key, record, "N")` with
 *   `cas: N`. Vault refusing the check-and-set is a `StateConflict`.
 * - `remove` writes a tombstone version `{"gldt": "removed", "key": …}` with `cas`, so versions are
 *   never reused by a later record of the same key (a stale writer's `cas` can never match again).
 * - The record is core's `StateRecord` (token ids and metadata, never a token value), checked on
 *   save and on load; a secret at the path that is not the key's record is a `StateError` naming
 *   it, never overwritten.
 * - `withLock` takes no lock: compare-and-set guards every write (two writers: one wins, the other
 *   replays its decision on the new record).
 */
import { checkRecordToSave, withoutLock } from "@gldt/core/CompareAndSet"
import { StateConflict, StateError } from "@gldt/core/Errors"
import { State, StateRecord } from "@gldt/core/State"
import { Effect, Layer, Option, Schema } from "effect"
import { CAS_MISMATCH, kv } from "./Kv.ts"
import { missingCapabilities, VaultClient } from "./VaultClient.ts"
import type { VaultError } from "./VaultErrors.ts"

export interface VaultStateOptions {
  /** Mount path of a KV version 2 secrets engine, e.g. `secret`. */
  readonly mount: string
  /** Folder under the mount holding one secret per key, e.g. `gldt/state`. */
  readonly prefix: string
}

const LITERAL = /^[A-Za-z0-9_-]$/

/**
 * The secret name of a key: characters other than `[A-Za-z0-9_-]` become `%XX` (UTF-8 bytes,
 * upper-case hex), so any key is one path segment, never `.` or `..`, and reversible.
 */
export const secretName = (key: string): string => {
  let out = ""
  for (const byte of new TextEncoder().encode(key)) {
    const ch = String.fromCharCode(byte)
    out += byte < 0x80 && LITERAL.test(ch) ? ch : `%${byte.toString(16).toUpperCase().padStart(2, "0")}`
  }
  return out === "" ? "%" : out
}

const TAG_STATE = "state"
const TAG_REMOVED = "removed"

const decodeRecord = Schema.decodeUnknownEffect(StateRecord)

/** Capabilities a State needs on its data paths (`list` on the metadata folder for `list()` only). */
export const STATE_CAPABILITIES = ["create", "read", "update"] as const

export const make = (options: VaultStateOptions) =>
  Effect.gen(function* () {
    const client = yield* VaultClient
    const store = kv(client, options.mount)
    const prefix = options.prefix.replace(/^\/+|\/+$/g, "")
    const pathOf = (key: string) => (prefix === "" ? secretName(key) : `${prefix}/${secretName(key)}`)
    const where = (key: string) => store.dataPath(pathOf(key))
    const hint = "fix or delete it by hand (vault kv metadata delete) — gldt never overwrites a state secret it cannot read"
    /** Keys whose capabilities were checked in this process. */
    const checked = new Set<string>()

    const vaultError = (key: string) => (e: VaultError) => new StateError({ key, message: `Vault State: ${e.message}` })

    /** Before the first use of a key: a KV v2 mount and a policy that can read, create and update the record. */
    const preflight = (key: string) =>
      Effect.gen(function* () {
        if (checked.has(key)) return
        yield* client.requireKv2(store.mount)
        const path = where(key)
        const caps = yield* client.capabilities([path])
        const missing = missingCapabilities(caps[path] ?? [], STATE_CAPABILITIES)
        if (missing.length > 0) {
          return yield* Effect.fail(
            new StateError({
              key,
              message: `Vault State: permission denied on ${path}: the Vault token's policy needs ${STATE_CAPABILITIES.map((c) => `"${c}"`).join(", ")} there (missing ${missing.map((c) => `"${c}"`).join(", ")}); add: path "${store.dataPath(prefix === "" ? "*" : `${prefix}/*`)}" { capabilities = ["create", "read", "update"] }`,
            }),
          )
        }
        checked.add(key)
      }).pipe(Effect.mapError((e) => (e instanceof StateError ? e : vaultError(key)(e))))

    type Stored = { readonly kind: "none"; readonly base: number } | { readonly kind: "record"; readonly record: StateRecord; readonly version: number }

    /** What the path holds: nothing (with the version a new record must check-and-set against) or a record. */
    const read = (key: string) =>
      Effect.gen(function* () {
        yield* preflight(key)
        const secret = yield* store.read(pathOf(key)).pipe(Effect.mapError(vaultError(key)))
        if (secret === undefined) return { kind: "none", base: 0 } satisfies Stored
        const { data, info } = secret
        // Deleted or destroyed by hand, or removed by gldt: no record; a new one follows that version.
        if (data === null || data.gldt === TAG_REMOVED) {
          if (data !== null && data.key !== key) {
            return yield* Effect.fail(
              new StateError({ key, message: `${where(key)} holds a tombstone of key ${JSON.stringify(data.key)}, not ${JSON.stringify(key)}; ${hint}` }),
            )
          }
          return { kind: "none", base: info.version } satisfies Stored
        }
        if (data.gldt !== TAG_STATE || data.key !== key) {
          return yield* Effect.fail(
            new StateError({
              key,
              message: `${where(key)} (version ${info.version}) is not the gldt state record of key ${JSON.stringify(key)}; ${hint}`,
            }),
          )
        }
        const record = yield* decodeRecord(data.record).pipe(
          Effect.mapError((e) => new StateError({ key, message: `${where(key)} (version ${info.version}) is not a gldt state record: ${e.message}; ${hint}` })),
        )
        if (record.key !== key) {
          return yield* Effect.fail(new StateError({ key, message: `${where(key)} holds the record of key ${JSON.stringify(record.key)}; ${hint}` }))
        }
        return { kind: "record", record, version: info.version } satisfies Stored
      })

    const load = (key: string) =>
      Effect.map(read(key), (s) => (s.kind === "record" ? Option.some({ record: s.record, version: String(s.version) }) : Option.none()))

    const expectedVersion = (key: string, expected: string) => {
      const n = Number(expected)
      return Number.isSafeInteger(n) && n > 0 ? Effect.succeed(n) : Effect.fail(new StateConflict({ key }))
    }

    /** A check-and-set write; a mismatch is a StateConflict. */
    const casWrite = (key: string, value: Record<string, unknown>, cas: number) =>
      Effect.flatMap(store.write(pathOf(key), value, cas).pipe(Effect.mapError(vaultError(key))), (v) =>
        v === CAS_MISMATCH ? Effect.fail(new StateConflict({ key })) : Effect.succeed(String(v)),
      )

    const save = (key: string, record: StateRecord, expected: string | null) =>
      Effect.gen(function* () {
        const checkedRecord = yield* checkRecordToSave(key, record)
        const value = { gldt: TAG_STATE, key, record: JSON.parse(JSON.stringify(checkedRecord)) as unknown }
        if (expected === null) {
          const now = yield* read(key)
          if (now.kind === "record") return yield* Effect.fail(new StateConflict({ key }))
          return yield* casWrite(key, value, now.base)
        }
        yield* preflight(key)
        return yield* casWrite(key, value, yield* expectedVersion(key, expected))
      })

    const remove = (key: string, expected: string) =>
      Effect.gen(function* () {
        yield* preflight(key)
        yield* casWrite(key, { gldt: TAG_REMOVED, key }, yield* expectedVersion(key, expected))
      })

    const list = () =>
      Effect.gen(function* () {
        yield* client.requireKv2(store.mount).pipe(Effect.mapError(vaultError("*")))
        const names = yield* store.list(prefix).pipe(Effect.mapError(vaultError("*")))
        const keys: string[] = []
        for (const name of names) {
          if (name.endsWith("/")) continue
          const secret = yield* store.read(prefix === "" ? name : `${prefix}/${name}`).pipe(Effect.mapError(vaultError("*")))
          const data = secret?.data
          if (data?.gldt === TAG_STATE && typeof data.key === "string" && secretName(data.key) === name) keys.push(data.key)
        }
        return keys.sort()
      })

    // Compare-and-set on the KV version guards every write; there is no lock in Vault to hold.
    return withoutLock({ load, save, remove, list })
  })

/** `State` in KV v2 at `<mount>/<prefix>/<key>`, over the `VaultClient` in context. */
export const layer = (options: VaultStateOptions): Layer.Layer<State, never, VaultClient> => Layer.effect(State, make(options))
