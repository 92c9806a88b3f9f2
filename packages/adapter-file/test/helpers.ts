import { type ChildProcess, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { Effect } from "effect"

/** A fresh temp directory, removed when the surrounding scope closes. */
export const tempDir = Effect.acquireRelease(
  Effect.sync(() => fs.mkdtempSync(path.join(os.tmpdir(), "gldt-adapter-file-"))),
  (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true })),
)

/** Every file under `dir`, recursively, as paths relative to it. */
export const filesUnder = (dir: string): string[] =>
  fs.readdirSync(dir, { recursive: true, encoding: "utf8" }).filter((f) => fs.statSync(path.join(dir, f)).isFile())

export const modeOf = (p: string): number => fs.statSync(p).mode & 0o777

const WORKER = fileURLToPath(new URL("./fixtures/worker.ts", import.meta.url))

export interface Worker {
  readonly child: ChildProcess
  /** Resolves with the first stdout line starting with `prefix`. */
  readonly line: (prefix: string) => Promise<string>
  /** Resolves with the exit code (or the signal name). */
  readonly exited: Promise<number | string>
  readonly stderr: () => string
}

export const startWorker = (args: ReadonlyArray<string>): Worker => {
  const child = spawn(process.execPath, [WORKER, ...args], { stdio: ["ignore", "pipe", "pipe"] })
  let out = ""
  let err = ""
  const waiters: Array<{ prefix: string; resolve: (l: string) => void }> = []
  const scan = () => {
    for (const l of out.split("\n")) {
      for (const w of [...waiters]) {
        if (l.startsWith(w.prefix)) {
          waiters.splice(waiters.indexOf(w), 1)
          w.resolve(l)
        }
      }
    }
  }
  child.stdout!.on("data", (d: Buffer) => {
    out += d.toString("utf8")
    scan()
  })
  child.stderr!.on("data", (d: Buffer) => {
    err += d.toString("utf8")
  })
  const exited = new Promise<number | string>((resolve) => child.on("exit", (code, signal) => resolve(code ?? signal ?? -1)))
  return {
    child,
    exited,
    stderr: () => err,
    line: (prefix) =>
      new Promise((resolve, reject) => {
        waiters.push({ prefix, resolve })
        scan()
        void exited.then((code) => reject(new Error(`worker exited (${code}) before printing ${prefix}: ${err}`)))
      }),
  }
}

/** Runs a worker to completion; fails with its stderr unless it exits 0. */
export const runWorker = (args: ReadonlyArray<string>) =>
  Effect.promise(async () => {
    const w = startWorker(args)
    const code = await w.exited
    if (code !== 0) throw new Error(`worker ${args.join(" ")} exited ${code}: ${w.stderr()}`)
  })
