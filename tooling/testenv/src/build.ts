/**
 * Builds the test-environment binaries (etcd, kube-apiserver, kube-controller-manager, kubectl,
 * vault) from the Go tools modules under tooling/testenv/go/<module>/ with the ordinary `go build`,
 * and caches them by version + content hash under `${GLDT_CACHE:-$HOME/.cache/gldt}/bin/`.
 */
import { spawn } from "node:child_process"
import { createHash } from "node:crypto"
import { existsSync, readFileSync } from "node:fs"
import { chmod, copyFile, mkdir, rename, rm, stat, writeFile } from "node:fs/promises"
import { homedir } from "node:os"
import { delimiter, dirname, join, resolve } from "node:path"
import { fileURLToPath } from "node:url"
import { track } from "./proc.ts"

/** Names of the binaries this package can build. */
export type ToolName = "etcd" | "kube-apiserver" | "kube-controller-manager" | "kubectl" | "vault" | "helm"

export const ALL_TOOLS: ReadonlyArray<ToolName> = ["etcd", "kube-apiserver", "kube-controller-manager", "kubectl", "vault", "helm"]

/** The binaries `startKube` needs. */
export const KUBE_TOOLS: ReadonlyArray<ToolName> = ["etcd", "kube-apiserver", "kube-controller-manager", "kubectl"]

interface ToolSpec {
  /** Directory under go/ holding the tools module. */
  readonly module: string
  /** Go package (a `tool` line in that go.mod) to build. */
  readonly pkg: string
  /** The module whose required version names the binary's version. */
  readonly versionModule: string
  readonly ldflags: (version: string) => ReadonlyArray<string>
  /**
   * A file of the version module copied next to the binary (`<binary>.<file>`). Vault is
   * BUSL-1.1: it is a test-only tool, built into the cache and never shipped; its licence
   * travels with the binary.
   */
  readonly licenseFile?: string
}

const kubeLdflags = (version: string): ReadonlyArray<string> => {
  const [major, minor] = version.replace(/^v/, "").split(".")
  // Without these, /version reports v0.0.0-master+$Format:%H$ (the values a release build stamps).
  return [
    `-X k8s.io/component-base/version.gitVersion=${version}`,
    `-X k8s.io/component-base/version.gitMajor=${major}`,
    `-X k8s.io/component-base/version.gitMinor=${minor}`,
    "-X k8s.io/component-base/version.gitTreeState=clean",
  ]
}

const SPECS: Record<ToolName, ToolSpec> = {
  etcd: { module: "etcd", pkg: "go.etcd.io/etcd/server/v3", versionModule: "go.etcd.io/etcd/server/v3", ldflags: () => [] },
  "kube-apiserver": {
    module: "kube",
    pkg: "k8s.io/kubernetes/cmd/kube-apiserver",
    versionModule: "k8s.io/kubernetes",
    ldflags: kubeLdflags,
  },
  "kube-controller-manager": {
    module: "kube",
    pkg: "k8s.io/kubernetes/cmd/kube-controller-manager",
    versionModule: "k8s.io/kubernetes",
    ldflags: kubeLdflags,
  },
  kubectl: { module: "kube", pkg: "k8s.io/kubernetes/cmd/kubectl", versionModule: "k8s.io/kubernetes", ldflags: kubeLdflags },
  // The main package is the module root; see go/vault/go.mod for why the api/sdk versions are pinned.
  vault: {
    module: "vault",
    pkg: "github.com/hashicorp/vault",
    versionModule: "github.com/hashicorp/vault",
    ldflags: () => [],
    licenseFile: "LICENSE",
  },
  // Only to render and lint the controller's chart in tests.
  helm: {
    module: "helm",
    pkg: "helm.sh/helm/v4/cmd/helm",
    versionModule: "helm.sh/helm/v4",
    ldflags: (v) => [`-X helm.sh/helm/v4/internal/version.version=${v}`],
  },
}

/** tooling/testenv/ (this file lives in tooling/testenv/src/). */
export const packageDir: string = resolve(dirname(fileURLToPath(import.meta.url)), "..")

/** Root of the binary cache: `$GLDT_CACHE` or `$HOME/.cache/gldt`. */
export const cacheDir = (): string => process.env.GLDT_CACHE || join(homedir(), ".cache", "gldt")

export type Log = (line: string) => void

/** Progress goes to stderr so stdout stays machine-readable (`KUBECONFIG=...`). */
export const stderrLog: Log = (line) => {
  process.stderr.write(`[testenv] ${line}\n`)
}

/** Locate the Go toolchain: `$GLDT_GO`, then `go` on PATH, then /usr/local/go/bin/go. */
export const findGo = (): string => {
  if (process.env.GLDT_GO) return process.env.GLDT_GO
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    if (dir && existsSync(join(dir, "go"))) return join(dir, "go")
  }
  if (existsSync("/usr/local/go/bin/go")) return "/usr/local/go/bin/go"
  throw new Error("testenv: no Go toolchain found (set GLDT_GO or put go on PATH); it is needed to build etcd and Kubernetes")
}

/** Version of `mod` required by a tools module's go.mod. */
export const requiredVersion = (goMod: string, mod: string): string => {
  const escaped = mod.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")
  const m = new RegExp(`^[ \\t]*(?:require[ \\t]+)?${escaped}[ \\t]+(v\\S+)`, "m").exec(goMod)
  if (!m?.[1]) throw new Error(`testenv: ${mod} is not required by the tools module`)
  return m[1]
}

export interface ToolInfo {
  readonly name: ToolName
  readonly version: string
  /** Absolute path of the cached binary (it may not exist yet). */
  readonly path: string
  readonly moduleDir: string
  readonly pkg: string
  readonly ldflags: string
}

let goVersionMemo: string | undefined
const goVersion = async (go: string): Promise<string> => {
  if (goVersionMemo === undefined) {
    const { stdout } = await run(go, ["env", "GOVERSION", "GOOS", "GOARCH"], { cwd: packageDir })
    goVersionMemo = stdout.trim().split(/\s+/).join("-")
  }
  return goVersionMemo
}

/**
 * Where `name` is (or will be) cached. The file name carries the version and a hash of
 * go.mod, go.sum, the Go version/platform and the link flags, so any change rebuilds.
 */
export const toolInfo = async (name: ToolName): Promise<ToolInfo> => {
  const spec = SPECS[name]
  const moduleDir = join(packageDir, "go", spec.module)
  const goMod = readFileSync(join(moduleDir, "go.mod"), "utf8")
  const goSum = readFileSync(join(moduleDir, "go.sum"), "utf8")
  const version = requiredVersion(goMod, spec.versionModule)
  const ldflags = ["-s", "-w", ...spec.ldflags(version)].join(" ")
  const key = createHash("sha256")
    .update(goMod)
    .update("\0")
    .update(goSum)
    .update("\0")
    .update(await goVersion(findGo()))
    .update("\0")
    .update(spec.pkg)
    .update("\0")
    .update(ldflags)
    .digest("hex")
    .slice(0, 12)
  return { name, version, moduleDir, pkg: spec.pkg, ldflags, path: join(cacheDir(), "bin", `${name}-${version}-${key}`) }
}

const isFile = async (p: string): Promise<boolean> => {
  try {
    return (await stat(p)).isFile()
  } catch {
    return false
  }
}

const pidAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

/** A directory lock so two processes (CLI, vitest workers) never build the same binary at once. */
const withLock = async <A>(lockDir: string, log: Log, body: () => Promise<A>): Promise<A> => {
  let announced = false
  for (;;) {
    try {
      await mkdir(lockDir)
      break
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e
      let holder = 0
      try {
        holder = Number(readFileSync(join(lockDir, "pid"), "utf8"))
      } catch {
        // the holder has not written its pid yet
      }
      if (holder > 0 && !pidAlive(holder)) {
        await rm(lockDir, { recursive: true, force: true })
        continue
      }
      if (!announced) log(`waiting for another build (pid ${holder || "?"}) holding ${lockDir}`)
      announced = true
      await new Promise((r) => setTimeout(r, 1000))
    }
  }
  await writeFile(join(lockDir, "pid"), String(process.pid))
  try {
    return await body()
  } finally {
    await rm(lockDir, { recursive: true, force: true })
  }
}

const fmtSecs = (ms: number): string => {
  const s = Math.round(ms / 1000)
  return s >= 60 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s` : `${s}s`
}

export interface BuildResult {
  readonly info: ToolInfo
  /** true when the binary was already cached. */
  readonly cached: boolean
  readonly millis: number
}

export interface BuildOptions {
  readonly log?: Log
  /** Seconds between "still building" lines (default 20). */
  readonly heartbeatSeconds?: number
}

/** Build `name` unless a binary for the same inputs is cached; returns its path and timing. */
export const ensureTool = async (name: ToolName, opts: BuildOptions = {}): Promise<BuildResult> => {
  const log = opts.log ?? stderrLog
  const started = Date.now()
  const info = await toolInfo(name)
  if (await isFile(info.path)) return { info, cached: true, millis: Date.now() - started }
  await mkdir(dirname(info.path), { recursive: true })
  return withLock(`${info.path}.lock`, log, async () => {
    if (await isFile(info.path)) return { info, cached: true, millis: Date.now() - started }
    const go = findGo()
    log(`building ${name} ${info.version} (${info.pkg}); a cold build takes minutes`)
    const tmp = `${info.path}.tmp-${process.pid}`
    const goflags = ["-trimpath", "-mod=readonly", "-modcacherw", process.env.GOFLAGS ?? ""].join(" ").trim()
    let compiled = 0
    let downloaded = 0
    let last = ""
    const heartbeat = setInterval(
      () => {
        const dl = downloaded > 0 ? `${downloaded} modules downloaded, ` : ""
        log(`  ${name}: still building, ${fmtSecs(Date.now() - started)}, ${dl}${compiled} packages compiled (last: ${last || "-"})`)
      },
      (opts.heartbeatSeconds ?? 20) * 1000,
    )
    try {
      // -v names each package as it is compiled (cached ones are skipped): the heartbeat counts them.
      await run(go, ["build", "-v", "-ldflags", info.ldflags, "-o", tmp, info.pkg], {
        cwd: info.moduleDir,
        env: { ...process.env, GOFLAGS: goflags, CGO_ENABLED: "0", GOTOOLCHAIN: "local" },
        onStderrLine: (line) => {
          if (/^[\w.-]+(\/[\w.~-]+)*$/.test(line)) {
            compiled++
            last = line
          } else if (line.startsWith("go: downloading ")) {
            if (downloaded++ === 0) log(`  ${name}: downloading Go modules (once per machine)`)
            last = line.slice(4)
          } else if (line.trim()) {
            log(`  ${name}: ${line}`)
          }
        },
      })
    } catch (e) {
      await rm(tmp, { force: true })
      throw e
    } finally {
      clearInterval(heartbeat)
    }
    await chmod(tmp, 0o755)
    const licenseFile = SPECS[name].licenseFile
    if (licenseFile) {
      const { stdout } = await run(go, ["list", "-m", "-f", "{{.Dir}}", SPECS[name].versionModule], {
        cwd: info.moduleDir,
        env: { ...process.env, GOFLAGS: goflags, GOTOOLCHAIN: "local" },
      })
      await copyFile(join(stdout.trim(), licenseFile), `${info.path}.${licenseFile}`)
    }
    await rename(tmp, info.path)
    const millis = Date.now() - started
    log(`built ${name} in ${fmtSecs(millis)} (${compiled} packages compiled) -> ${info.path}`)
    return { info, cached: false, millis }
  })
}

/** Build the given tools one after the other (parallel Go builds only thrash a 2-core machine). */
export const ensureTools = async (names: ReadonlyArray<ToolName> = ALL_TOOLS, opts: BuildOptions = {}): Promise<Record<ToolName, string>> => {
  const out: Partial<Record<ToolName, string>> = {}
  for (const name of names) {
    const r = await ensureTool(name, opts)
    out[name] = r.info.path
  }
  return out as Record<ToolName, string>
}

interface RunOptions {
  readonly cwd: string
  readonly env?: NodeJS.ProcessEnv
  readonly onStderrLine?: (line: string) => void
}

/** Run a command to completion; rejects with the tail of its stderr on a non-zero exit. */
const run = (cmd: string, args: ReadonlyArray<string>, opts: RunOptions): Promise<{ stdout: string }> =>
  new Promise((ok, ko) => {
    const child = spawn(cmd, args, { cwd: opts.cwd, env: opts.env ?? process.env, stdio: ["ignore", "pipe", "pipe"] })
    track(child)
    let stdout = ""
    let tail: Array<string> = []
    let partial = ""
    child.stdout.setEncoding("utf8").on("data", (d: string) => {
      stdout += d
    })
    child.stderr.setEncoding("utf8").on("data", (d: string) => {
      const lines = (partial + d).split("\n")
      partial = lines.pop() ?? ""
      for (const line of lines) {
        tail.push(line)
        if (tail.length > 60) tail = tail.slice(-40)
        opts.onStderrLine?.(line)
      }
    })
    child.on("error", ko)
    child.on("close", (code, signal) => {
      if (partial) tail.push(partial)
      if (code === 0) ok({ stdout })
      else ko(new Error(`${cmd} ${args.join(" ")} failed (${signal ?? `exit ${code}`}):\n${tail.slice(-40).join("\n")}`))
    })
  })
