/**
 * `State` on the file system: one JSON document per consumer key in a directory, replaced
 * atomically, compare-and-set on an integer version, and cross-process locks held in lock files.
 *
 * Layout of `dir` for the key `default/gitlab-deploy-token`:
 *   default%2Fgitlab-deploy-token.json        {"version": 7, "record": {…}}   (mode 0600)
 *   default%2Fgitlab-deploy-token.lock        while a lifecycle run holds the key (withLock)
 *   default%2Fgitlab-deploy-token.cas.lock    for the instant of a save or remove
 */
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { checkRecordToSave } from "@gldt/core/CompareAndSet"
import { StateBusy, StateConflict, StateError } from "@gldt/core/Errors"
import { State, StateRecord } from "@gldt/core/State"
import { Effect, Layer, Option, Schema } from "effect"
import { withLockFile, type LockTiming } from "./internal/effectLock.ts"
import { fileStem, keyOfStem } from "./internal/stem.ts"
import { describeError, ensureDir, errnoOf, fsyncDir, readIfExists, unlinkIfExists, writeAtomic } from "./internal/fs.ts"

export interface FileStateOptions {
  /** Directory holding one document per key; created with mode 0700 if missing. */
  readonly dir: string
  /** How long `withLock` (and a save or remove) waits for a lock held by a live process. Default 30 s. */
  readonly lockTimeoutMs?: number
  /** How often a waiting process looks at the lock. Default 100 ms. */
  readonly lockPollMs?: number
}

/** The document stored per key. */
export const StateDocument = Schema.Struct({ version: Schema.Int, record: StateRecord })
export type StateDocument = typeof StateDocument.Type

const STATE_FILE = /^((?:[a-z0-9_-]|%[0-9A-F]{2})*(?:~[0-9a-f]{16})?)\.json$/

const UNREADABLE_HINT = "fix or move it away — gldt never overwrites a state file it cannot read"

/** The state service itself, for embedding without a Layer. */
export const make = (options: FileStateOptions) =>
  Effect.sync(() => {
    const dir = path.resolve(options.dir)
    const timing: LockTiming = { timeoutMs: options.lockTimeoutMs ?? 30_000, pollMs: options.lockPollMs ?? 100 }
    const fileFor = (key: string) => path.join(dir, `${fileStem(key)}.json`)
    const lockFor = (key: string) => path.join(dir, `${fileStem(key)}.lock`)
    const casLockFor = (key: string) => path.join(dir, `${fileStem(key)}.cas.lock`)

    const fsError = (key: string, what: string) => (e: unknown) => new StateError({ key, message: `${what}: ${describeError(e)}` })

    const prepareDir = (key: string) => Effect.tryPromise({ try: () => ensureDir(dir), catch: fsError(key, `cannot create the state directory ${dir}`) })

    /** Decodes a state file; any problem is a StateError naming the file and what is wrong. */
    const parse = (key: string, file: string, raw: Buffer) =>
      Effect.gen(function* () {
        let json: unknown
        try {
          json = JSON.parse(raw.toString("utf8"))
        } catch (e) {
          return yield* Effect.fail(new StateError({ key, message: `state file ${file} is not valid JSON (${describeError(e)}); ${UNREADABLE_HINT}` }))
        }
        const doc = yield* Schema.decodeUnknownEffect(StateDocument)(json).pipe(
          Effect.mapError(
            (e) =>
              new StateError({
                key,
                message: `state file ${file} is not a gldt state document ({"version": <int>, "record": {…}}): ${e.message}; ${UNREADABLE_HINT}`,
              }),
          ),
        )
        if (doc.record.key !== key) {
          return yield* Effect.fail(
            new StateError({
              key,
              message: `state file ${file} holds the state of key ${JSON.stringify(doc.record.key)}, not ${JSON.stringify(key)}; ${UNREADABLE_HINT}`,
            }),
          )
        }
        return doc
      })

    const read = (key: string) =>
      Effect.gen(function* () {
        const file = fileFor(key)
        const raw = yield* Effect.tryPromise({ try: () => readIfExists(file), catch: fsError(key, `cannot read state file ${file}`) })
        if (raw === undefined) return Option.none<StateDocument>()
        return Option.some(yield* parse(key, file, raw))
      })

    /** Runs a load-compare-write under the key's short CAS lock, not interruptible once the lock is held. */
    const underCasLock = <A, E>(key: string, effect: Effect.Effect<A, E>) =>
      withLockFile(key, casLockFor(key), timing, prepareDir(key), Effect.uninterruptible(effect)).pipe(
        // Waiting for the CAS lock timed out: another writer is (or was) mid-write; report a StateError,
        // since the State contract has no StateBusy for save/remove.
        Effect.catchIf(
          (e): e is StateBusy => e instanceof StateBusy,
          (e) => Effect.fail(new StateError({ key, message: `the state is being written by ${e.holder} and did not become free` })),
        ),
      )

    const save = (key: string, record: StateRecord, expected: string | null) =>
      Effect.gen(function* () {
        const file = fileFor(key)
        const checked = yield* checkRecordToSave(key, record)
        return yield* underCasLock(
          key,
          Effect.gen(function* () {
            const current = yield* read(key)
            const currentVersion = Option.match(current, { onNone: () => null, onSome: (d) => String(d.version) })
            if (currentVersion !== expected) return yield* Effect.fail(new StateConflict({ key }))
            // A new document starts at the wall clock in ms, so a key that is removed and re-created never
            // reuses a version an old reader may still hold.
            const version = Option.match(current, { onNone: () => Math.max(1, Date.now()), onSome: (d) => d.version + 1 })
            const text = `${JSON.stringify({ version, record: checked }, null, 2)}\n`
            yield* Effect.tryPromise({ try: () => writeAtomic(file, text, 0o600), catch: fsError(key, `cannot write state file ${file}`) })
            return String(version)
          }),
        )
      })

    const remove = (key: string, expected: string) =>
      underCasLock(
        key,
        Effect.gen(function* () {
          const file = fileFor(key)
          const current = yield* read(key)
          if (Option.isNone(current) || String(current.value.version) !== expected) return yield* Effect.fail(new StateConflict({ key }))
          yield* Effect.tryPromise({
            try: async () => {
              await unlinkIfExists(file)
              await fsyncDir(dir)
            },
            catch: fsError(key, `cannot remove state file ${file}`),
          })
        }),
      )

    const list = () =>
      Effect.gen(function* () {
        const names = yield* Effect.tryPromise({
          try: async () => {
            try {
              return await fs.readdir(dir)
            } catch (e) {
              if (errnoOf(e) === "ENOENT") return []
              throw e
            }
          },
          catch: fsError("*", `cannot list the state directory ${dir}`),
        })
        const keys: string[] = []
        for (const name of names) {
          const stem = STATE_FILE.exec(name)?.[1]
          if (stem === undefined || stem === "") continue
          const key = keyOfStem(stem)
          if (key !== undefined) {
            keys.push(key)
            continue
          }
          // A shortened name: the key is inside the document.
          const file = path.join(dir, name)
          const raw = yield* Effect.tryPromise({ try: () => readIfExists(file), catch: fsError("*", `cannot read state file ${file}`) })
          if (raw === undefined) continue
          const json = yield* Effect.try({
            try: () => JSON.parse(raw.toString("utf8")) as unknown,
            catch: (e) => new StateError({ key: "*", message: `state file ${file} is not valid JSON (${describeError(e)}); ${UNREADABLE_HINT}` }),
          })
          const doc = yield* Schema.decodeUnknownEffect(StateDocument)(json).pipe(
            Effect.mapError((e) => new StateError({ key: "*", message: `state file ${file} is not a gldt state document: ${e.message}; ${UNREADABLE_HINT}` })),
          )
          keys.push(doc.record.key)
        }
        return keys.sort()
      })

    return State.of({
      load: (key) => read(key).pipe(Effect.map(Option.map((d) => ({ record: d.record, version: String(d.version) })))),
      save,
      remove,
      list,
      withLock: (key, effect) => withLockFile(key, lockFor(key), timing, prepareDir(key), effect),
    })
  })

/** `State` backed by one JSON document per key in `options.dir`. */
export const layer = (options: FileStateOptions): Layer.Layer<State> => Layer.effect(State, make(options))
