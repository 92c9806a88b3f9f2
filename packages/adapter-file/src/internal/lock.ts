/**
 * Exclusive lock files that work across processes.
 *
 * A lock is a file created exclusively: its content (who holds it) is written and fsynced to a temp
 * file first, then hard-linked to the lock path, which fails with EEXIST if the lock exists. So the
 * lock file appears atomically with its full content (never empty or half-written), which is what an
 * `O_EXCL` create gives plus that guarantee.
 *
 * A lock whose holder is provably dead is stale and may be taken over: the holder ran on this host
 * and its pid no longer exists (or the pid was reused by a process that started later, or the
 * machine has rebooted since). A holder on another host, or in another pid namespace of this host
 * (another container sharing the directory), is never presumed dead.
 *
 * Taking over is itself exclusive, so two takers never both win: to remove a stale lock, a taker
 * must first create the lock `<lock>.takeover-<nonce>` named after that stale lock's unique nonce,
 * then re-read the lock path and unlink it only if it still carries that nonce. No one else may
 * remove a lock whose holder is dead except the single owner of its takeover lock, so the check and
 * the unlink cannot be separated by another taker's action. A taker that dies mid-takeover leaves a
 * takeover lock that is itself stale and is taken over the same way.
 */
import { randomBytes } from "node:crypto"
import * as fs from "node:fs/promises"
import * as os from "node:os"
import { errnoOf, readIfExists, unlinkIfExists, writeTemp } from "./fs.ts"

/** What a lock file holds. */
export interface LockInfo {
  readonly pid: number
  readonly hostname: string
  /** ISO 8601, for people. */
  readonly startedAt: string
  /** Unique per acquisition. */
  readonly nonce: string
  /** Linux: `/proc/sys/kernel/random/boot_id` of the holder's machine. */
  readonly bootId?: string
  /** Linux: start time of the holder process (clock ticks since boot), to detect pid reuse. */
  readonly procStart?: string
  /** Linux: the holder's pid namespace (`pid:[…]`); pids of another namespace cannot be checked. */
  readonly pidNs?: string
}

export interface HeldLock {
  readonly path: string
  readonly nonce: string
}

export type Attempt = { readonly _tag: "Acquired"; readonly lock: HeldLock } | { readonly _tag: "Busy"; readonly holder: string }

const NONCE = /^[0-9a-f]{16,64}$/
const MAX_TAKEOVER_DEPTH = 3

let bootIdCache: string | undefined | null = null
const bootId = async (): Promise<string | undefined> => {
  if (bootIdCache === null) {
    const raw = await readIfExists("/proc/sys/kernel/random/boot_id").catch(() => undefined)
    bootIdCache = raw?.toString("utf8").trim() || undefined
  }
  return bootIdCache
}

let pidNsCache: string | undefined | null = null
const pidNs = async (): Promise<string | undefined> => {
  if (pidNsCache === null) pidNsCache = await fs.readlink("/proc/self/ns/pid").catch(() => undefined)
  return pidNsCache
}

/** Field 22 (starttime) of `/proc/<pid>/stat`, or undefined where there is no procfs. */
const procStartOf = async (pid: number): Promise<string | undefined> => {
  const raw = await readIfExists(`/proc/${pid}/stat`).catch(() => undefined)
  if (raw === undefined) return undefined
  const text = raw.toString("utf8")
  // The command name (field 2) is parenthesised and may contain spaces or parentheses.
  const fields = text.slice(text.lastIndexOf(")") + 2).split(" ")
  return fields[19]
}

const currentInfo = async (): Promise<LockInfo> => {
  const boot = await bootId()
  const start = await procStartOf(process.pid)
  const ns = await pidNs()
  return {
    pid: process.pid,
    hostname: os.hostname(),
    startedAt: new Date().toISOString(),
    nonce: randomBytes(16).toString("hex"),
    ...(boot === undefined ? {} : { bootId: boot }),
    ...(start === undefined ? {} : { procStart: start }),
    ...(ns === undefined ? {} : { pidNs: ns }),
  }
}

const parseInfo = (raw: Buffer): LockInfo | undefined => {
  let value: unknown
  try {
    value = JSON.parse(raw.toString("utf8"))
  } catch {
    return undefined
  }
  if (typeof value !== "object" || value === null) return undefined
  const v = value as Record<string, unknown>
  const optionalString = (x: unknown) => x === undefined || typeof x === "string"
  if (
    typeof v.pid !== "number" ||
    !Number.isSafeInteger(v.pid) ||
    v.pid < 1 ||
    typeof v.hostname !== "string" ||
    typeof v.startedAt !== "string" ||
    typeof v.nonce !== "string" ||
    !NONCE.test(v.nonce) ||
    !optionalString(v.bootId) ||
    !optionalString(v.procStart) ||
    !optionalString(v.pidNs)
  ) {
    return undefined
  }
  return v as unknown as LockInfo
}

type Existing = { readonly raw: Buffer; readonly info: LockInfo | undefined }

const readLock = async (lockPath: string): Promise<Existing | undefined> => {
  const raw = await readIfExists(lockPath)
  return raw === undefined ? undefined : { raw, info: parseInfo(raw) }
}

/**
 * Whether the holder of a lock is alive: "unknown" when it runs on another host, or in another pid
 * namespace of this host (another container sharing the directory), where its pid means nothing here.
 */
export const liveness = async (info: LockInfo): Promise<"alive" | "dead" | "unknown"> => {
  if (info.hostname !== os.hostname()) return "unknown"
  const boot = await bootId()
  if (info.bootId !== undefined && boot !== undefined && info.bootId !== boot) return "dead"
  const ns = await pidNs()
  if (info.pidNs !== undefined && ns !== undefined && info.pidNs !== ns) return "unknown"
  try {
    process.kill(info.pid, 0)
  } catch (e) {
    // EPERM: the process exists but belongs to someone else.
    if (errnoOf(e) === "ESRCH") return "dead"
  }
  if (info.procStart !== undefined) {
    const start = await procStartOf(info.pid)
    // The pid now belongs to a process that started after the holder: the holder is gone.
    if (start !== undefined && start !== info.procStart) return "dead"
  }
  return "alive"
}

export const describeHolder = (info: LockInfo, lockPath: string): string =>
  `pid ${info.pid} on ${info.hostname} (since ${info.startedAt}; lock file ${lockPath})`

const tryAcquireAt = async (lockPath: string, depth: number): Promise<Attempt> => {
  // Fast path while waiting: a lock whose holder is alive needs no temp file written and synced.
  const held = await readLock(lockPath)
  if (held?.info !== undefined && (await liveness(held.info)) !== "dead") return { _tag: "Busy", holder: describeHolder(held.info, lockPath) }
  const info = await currentInfo()
  const tmp = await writeTemp(lockPath, `${JSON.stringify(info)}\n`, 0o600)
  try {
    // Bounded: each round either wins, reports a live holder, or removed a stale lock.
    for (let round = 0; round < 8; round++) {
      try {
        await fs.link(tmp, lockPath)
        return { _tag: "Acquired", lock: { path: lockPath, nonce: info.nonce } }
      } catch (e) {
        if (errnoOf(e) !== "EEXIST") throw e
      }
      const existing = await readLock(lockPath)
      if (existing === undefined) continue // released meanwhile: try again at once
      if (existing.info === undefined) {
        return {
          _tag: "Busy",
          holder: `an unreadable lock file ${lockPath} (not written by gldt, or damaged: remove it once no gldt process uses this directory)`,
        }
      }
      const holder = describeHolder(existing.info, lockPath)
      const verdict = await liveness(existing.info)
      if (verdict !== "dead") return { _tag: "Busy", holder }
      if (depth >= MAX_TAKEOVER_DEPTH) return { _tag: "Busy", holder: `${holder}, stale` }
      const takeover = await tryAcquireAt(`${lockPath}.takeover-${existing.info.nonce}`, depth + 1)
      if (takeover._tag === "Busy") return { _tag: "Busy", holder: `${holder}, stale and being taken over` }
      try {
        const again = await readLock(lockPath)
        if (again?.info?.nonce === existing.info.nonce) await unlinkIfExists(lockPath)
      } finally {
        await release(takeover.lock)
      }
    }
    const last = await readLock(lockPath)
    return { _tag: "Busy", holder: last?.info ? describeHolder(last.info, lockPath) : `another process (lock file ${lockPath})` }
  } finally {
    await unlinkIfExists(tmp).catch(() => undefined)
  }
}

/** One attempt to take the lock at `lockPath`, taking over a stale one. Never waits. */
export const tryAcquire = (lockPath: string): Promise<Attempt> => tryAcquireAt(lockPath, 0)

/**
 * Releases a held lock. Returns false if the lock file no longer carries our nonce (someone removed
 * or took it over), in which case nothing is removed.
 */
export const release = async (lock: HeldLock): Promise<boolean> => {
  const existing = await readLock(lock.path)
  if (existing?.info?.nonce !== lock.nonce) return false
  await unlinkIfExists(lock.path)
  return true
}
