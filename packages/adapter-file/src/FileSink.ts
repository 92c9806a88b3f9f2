/**
 * `Sink` on a file (one path per sink instance) and on stdout.
 *
 * Beside the credential file `<path>` lives a sidecar `<path>.gldt.json` (mode 0600, no secret):
 * the token id, the format and the SHA-256 of the content gldt wrote, so `inspect` can tell which
 * token the file holds and whether someone changed it, while the credential file stays exactly what
 * its consumer expects. Delivery writes the sidecar twice, around the credential:
 *   1. sidecar: the current entry plus `next` (id and digest of the content about to be written);
 *   2. the credential file, atomically;
 *   3. sidecar: `next` becomes the entry.
 * A crash anywhere leaves a file whose digest matches an entry of the sidecar, so `inspect` always
 * names the token the file really holds.
 */
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { SinkError } from "@gldt/core/Errors"
import { type Credential, type Held, Sink } from "@gldt/core/Sink"
import { Clock, Effect, Layer, Schema } from "effect"
import { defaultRegistry, type Format, FormatProblem, render } from "./Format.ts"
import { describeError, errnoOf, fsyncDir, randomSuffix, readIfExists, sha256, unlinkIfExists, writeAtomic } from "./internal/fs.ts"

export interface FileSinkOptions {
  /** The credential file. Its directory must exist. */
  readonly path: string
  readonly format: Format
  /** `dockerconfigjson`: registry host (default `registry.gitlab.com` for gitlab.com, else `registry.<gitlab host>`). */
  readonly registry?: string | undefined
  /** Mode of the credential file. Default 0o600. The sidecar is always 0o600. */
  readonly mode?: number | undefined
  /**
   * Replace a file at `path` that gldt did not write (no sidecar). Default false: `check` fails,
   * so a shared `~/.netrc` or `~/.docker/config.json` is never clobbered by mistake.
   */
  readonly adopt?: boolean | undefined
}

const Entry = Schema.Struct({ tokenId: Schema.Int, sha256: Schema.String })

/** The sidecar `<path>.gldt.json`. */
export const Sidecar = Schema.Struct({
  format: Schema.String,
  registry: Schema.optional(Schema.String),
  tokenId: Schema.optional(Schema.Int),
  sha256: Schema.optional(Schema.String),
  /** ms since epoch. */
  deliveredAt: Schema.optional(Schema.Number),
  /** Set only while a delivery is in flight (or was interrupted by a crash). */
  next: Schema.optional(Entry),
})
export type Sidecar = typeof Sidecar.Type

const decodeSidecar = Schema.decodeUnknownOption(Sidecar)

export const sidecarPathFor = (file: string): string => `${file}.gldt.json`

/** Kind of a path: missing, a regular file, a directory, or something else. */
const kindOf = async (p: string): Promise<"missing" | "file" | "dir" | "symlink" | "other"> => {
  try {
    const st = await fs.lstat(p)
    if (st.isFile()) return "file"
    if (st.isDirectory()) return "dir"
    if (st.isSymbolicLink()) return "symlink"
    return "other"
  } catch (e) {
    if (errnoOf(e) === "ENOENT") return "missing"
    throw e
  }
}

/** Reasons `check` fails, each naming the path and the fix. Throws SinkProblem. */
class SinkProblem extends Error {}

const probeDirectory = async (dir: string): Promise<void> => {
  let st: Awaited<ReturnType<typeof fs.stat>>
  try {
    st = await fs.stat(dir)
  } catch (e) {
    const code = errnoOf(e)
    if (code === "ENOENT") throw new SinkProblem(`the directory ${dir} does not exist; create it (gldt does not create directories for sinks)`)
    if (code === "ENOTDIR") throw new SinkProblem(`${dir} is not a directory (a component of the path is a file); choose another path`)
    throw new SinkProblem(`cannot reach the directory ${dir}: ${describeError(e)}`)
  }
  if (!st.isDirectory()) throw new SinkProblem(`${dir} is not a directory; choose another path`)
  // Really create a file: permission bits, read-only mounts and the like all show up here, even as root.
  const probe = path.join(dir, `.gldt-probe.${process.pid}.${randomSuffix()}.tmp`)
  try {
    const handle = await fs.open(probe, "wx", 0o600)
    await handle.close()
  } catch (e) {
    throw new SinkProblem(`cannot create files in ${dir} (${describeError(e)}); make it writable for this user`)
  }
  await unlinkIfExists(probe).catch(() => undefined)
}

const probeFile = async (file: string, what: string): Promise<"missing" | "file"> => {
  const kind = await kindOf(file)
  if (kind === "dir") throw new SinkProblem(`${what} ${file} is a directory; point the sink at a file path`)
  if (kind === "symlink")
    throw new SinkProblem(`${what} ${file} is a symbolic link; point the sink at the real file (gldt replaces files by rename, which would replace the link)`)
  if (kind === "other") throw new SinkProblem(`${what} ${file} is not a regular file; point the sink at a file path`)
  if (kind === "file") {
    // Opening for writing (without truncating) fails on immutable files and read-only mounts even for root.
    try {
      const handle = await fs.open(file, "r+")
      await handle.close()
    } catch (e) {
      throw new SinkProblem(`${what} ${file} is not writable (${describeError(e)}); make it writable or choose another path`)
    }
  }
  return kind
}

/** The sink service itself, for embedding without a Layer. */
export const make = (options: FileSinkOptions) =>
  Effect.sync(() => {
    const file = path.resolve(options.path)
    const sidecarFile = sidecarPathFor(file)
    const dir = path.dirname(file)
    const mode = options.mode ?? 0o600

    const fail = (key: string, message: string) => new SinkError({ key, message })
    const ioError = (key: string, what: string) => (e: unknown) =>
      fail(key, e instanceof SinkProblem || e instanceof FormatProblem ? `${what}: ${e.message}` : `${what}: ${describeError(e)}`)

    const readSidecar = async (): Promise<{ readonly present: boolean; readonly value: Sidecar | undefined }> => {
      const raw = await readIfExists(sidecarFile)
      if (raw === undefined) return { present: false, value: undefined }
      let json: unknown
      try {
        json = JSON.parse(raw.toString("utf8"))
      } catch {
        return { present: true, value: undefined }
      }
      const decoded = decodeSidecar(json)
      return { present: true, value: decoded._tag === "Some" ? decoded.value : undefined }
    }

    const writeSidecar = (value: Sidecar) => writeAtomic(sidecarFile, `${JSON.stringify(value, null, 2)}\n`, 0o600)

    const check = (key: string) =>
      Effect.tryPromise({
        try: async () => {
          await probeDirectory(dir)
          const existing = await probeFile(file, "the sink file")
          const sidecar = await probeFile(sidecarFile, "the sink's metadata file")
          if (existing === "file" && sidecar === "missing" && options.adopt !== true) {
            throw new SinkProblem(
              `${file} exists but was not written by gldt (no ${path.basename(sidecarFile)} beside it); gldt owns the whole file and would replace it: move it away, or set adopt to let gldt take it over`,
            )
          }
        },
        catch: ioError(key, `cannot deliver to ${file}`),
      })

    const deliver = (key: string, credential: Credential) =>
      Effect.gen(function* () {
        const content = yield* Effect.try({
          try: () => render(options.format, credential, { registry: options.registry }),
          catch: ioError(key, `cannot write the credential as ${options.format}`),
        })
        const digest = sha256(content)
        const now = yield* Clock.currentTimeMillis
        const registry = options.format === "dockerconfigjson" ? (options.registry ?? defaultRegistry(credential.gitlabUrl)) : undefined
        const variant = { format: options.format, ...(registry === undefined ? {} : { registry }) }
        yield* Effect.tryPromise({
          try: async () => {
            const previous = (await readSidecar()).value
            const carried =
              previous?.tokenId !== undefined && previous.sha256 !== undefined
                ? { tokenId: previous.tokenId, sha256: previous.sha256, ...(previous.deliveredAt === undefined ? {} : { deliveredAt: previous.deliveredAt }) }
                : {}
            await writeSidecar({ ...variant, ...carried, next: { tokenId: credential.tokenId, sha256: digest } })
            await writeAtomic(file, content, mode)
            await writeSidecar({ ...variant, tokenId: credential.tokenId, sha256: digest, deliveredAt: now })
          },
          catch: ioError(key, `cannot write ${file}`),
        }).pipe(Effect.uninterruptible)
      })

    const inspect = (key: string) =>
      Effect.tryPromise({
        try: async (): Promise<Held> => {
          const kind = await kindOf(file)
          if (kind === "missing") return { _tag: "Empty" }
          if (kind !== "file") throw new SinkProblem(`${file} is not a regular file`)
          const content = await fs.readFile(file)
          const sidecar = await readSidecar()
          // Not written by gldt, or its metadata is gone or damaged: holds no token gldt knows.
          if (sidecar.value === undefined) return { _tag: "Holds", tokenId: 0 }
          const s = sidecar.value
          // Written in another format (or for another configured registry): consumers expecting this one cannot use it.
          if (s.format !== options.format || (options.registry !== undefined && s.registry !== options.registry)) {
            return { _tag: "Holds", tokenId: 0 }
          }
          const digest = sha256(content)
          if (s.tokenId !== undefined && s.sha256 === digest) return { _tag: "Holds", tokenId: s.tokenId }
          if (s.next !== undefined && s.next.sha256 === digest) return { _tag: "Holds", tokenId: s.next.tokenId }
          // Changed by someone else: holds no token gldt knows.
          return { _tag: "Holds", tokenId: 0 }
        },
        catch: ioError(key, `cannot inspect ${file}`),
      })

    const remove = (key: string) =>
      Effect.tryPromise({
        try: async () => {
          const removed = await unlinkIfExists(file)
          const removedSidecar = await unlinkIfExists(sidecarFile)
          // Nothing there (the directory may be gone with a decommissioned consumer): nothing to sync.
          if (removed || removedSidecar) await fsyncDir(dir)
        },
        catch: ioError(key, `cannot remove ${file}`),
      }).pipe(Effect.uninterruptible)

    return Sink.of({ check, deliver, inspect, remove })
  })

/** `Sink` writing the credential to `options.path` in `options.format`, with a sidecar `<path>.gldt.json`. */
export const layer = (options: FileSinkOptions): Layer.Layer<Sink> => Layer.effect(Sink, make(options))
