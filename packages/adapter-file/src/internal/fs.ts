/**
 * Small promise-based file helpers shared by the state and sink backends: atomic replacement
 * (temp file in the same directory, fsync, rename, directory fsync) and errno plumbing.
 */
import { createHash, randomBytes } from "node:crypto"
import * as fs from "node:fs/promises"
import * as path from "node:path"

/** The `code` of a Node system error, if any. */
export const errnoOf = (e: unknown): string | undefined =>
  typeof e === "object" && e !== null && "code" in e && typeof e.code === "string" ? e.code : undefined

/** A one-line description of a thrown value, without stack. */
export const describeError = (e: unknown): string => {
  if (e instanceof Error) return e.message
  return String(e)
}

export const sha256 = (data: string | Uint8Array): string => createHash("sha256").update(data).digest("hex")

export const randomSuffix = (): string => randomBytes(6).toString("hex")

/** The name of a temporary sibling of `file`: hidden, unique, ending in `.tmp`. */
export const tempPathFor = (file: string): string => path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.${randomSuffix()}.tmp`)

/** Reads a file, or undefined when it does not exist. */
export const readIfExists = async (file: string): Promise<Buffer | undefined> => {
  try {
    return await fs.readFile(file)
  } catch (e) {
    if (errnoOf(e) === "ENOENT") return undefined
    throw e
  }
}

/** Removes a file; a missing file is fine. Returns whether something was removed. */
export const unlinkIfExists = async (file: string): Promise<boolean> => {
  try {
    await fs.unlink(file)
    return true
  } catch (e) {
    if (errnoOf(e) === "ENOENT") return false
    throw e
  }
}

/**
 * Flushes a directory's entries (a rename or unlink in it) to disk. Platforms that cannot open a
 * directory for fsync (EISDIR, EINVAL, EPERM on some file systems) are tolerated.
 */
export const fsyncDir = async (dir: string): Promise<void> => {
  let handle: fs.FileHandle | undefined
  try {
    handle = await fs.open(dir, "r")
    await handle.sync()
  } catch (e) {
    const code = errnoOf(e)
    if (code !== "EISDIR" && code !== "EINVAL" && code !== "EPERM" && code !== "ENOTSUP") throw e
  } finally {
    await handle?.close()
  }
}

/** Creates a temp file next to `target` holding `data` with `mode`, fsynced. Returns its path. */
export const writeTemp = async (target: string, data: string | Uint8Array, mode: number): Promise<string> => {
  const tmp = tempPathFor(target)
  const handle = await fs.open(tmp, "wx", mode)
  try {
    // The creation mode is filtered by the umask; set it exactly.
    await handle.chmod(mode)
    await handle.writeFile(data)
    await handle.sync()
  } catch (e) {
    await handle.close().catch(() => undefined)
    await unlinkIfExists(tmp).catch(() => undefined)
    throw e
  }
  await handle.close()
  return tmp
}

/**
 * Replaces `target` with `data` atomically: readers see the old content or the new one, never a
 * mix, and after a crash the file is one or the other. No temp file is left behind on failure.
 */
export const writeAtomic = async (target: string, data: string | Uint8Array, mode: number): Promise<void> => {
  const tmp = await writeTemp(target, data, mode)
  try {
    await fs.rename(tmp, target)
  } catch (e) {
    await unlinkIfExists(tmp).catch(() => undefined)
    throw e
  }
  await fsyncDir(path.dirname(target))
}

/** Creates `dir` (and missing parents) with mode 0700; an existing directory is left as it is. */
export const ensureDir = async (dir: string): Promise<void> => {
  const created = await fs.mkdir(dir, { recursive: true, mode: 0o700 })
  // `mkdir` applies the umask; make every directory it created exactly 0700.
  if (created !== undefined) {
    let current = dir
    for (;;) {
      await fs.chmod(current, 0o700)
      if (current === created) break
      const parent = path.dirname(current)
      if (parent === current) break
      current = parent
    }
  }
}
