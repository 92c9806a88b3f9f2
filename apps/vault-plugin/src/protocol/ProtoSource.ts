/**
 * Build step: reads the plugin protocol's `.proto` files from the Go modules that define it (the
 * Vault sdk and go-plugin, at the versions Vault v1.21.1 is built with) and writes them as one
 * protobufjs JSON descriptor. The descriptor is a build output (`dist/protocol.json`), never
 * committed; `go mod download` fetches the modules on a machine that has not got them yet.
 */
import { execFileSync } from "node:child_process"
import { existsSync, mkdirSync, renameSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import protobuf from "protobufjs"

/** The modules (and versions) whose `.proto` files define the protocol Vault v1.21.1 speaks. */
export const PROTO_MODULES = {
  sdk: { path: "github.com/hashicorp/vault/sdk", version: "v0.20.0" },
  goPlugin: { path: "github.com/hashicorp/go-plugin", version: "v1.6.3" },
} as const

/** Where the descriptor is written and read. */
export const DESCRIPTOR_PATH: string = fileURLToPath(new URL("../../dist/protocol.json", import.meta.url))

/** The module's directory in the Go module cache, downloading it first if needed. */
export const moduleDir = (mod: { readonly path: string; readonly version: string }, go = process.env.GLDT_GO ?? "go"): string => {
  let out: string
  try {
    out = execFileSync(go, ["mod", "download", "-json", `${mod.path}@${mod.version}`], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
      // Outside any module: a plain module download needs no go.mod.
      cwd: tmpdir(),
      env: { ...process.env, GO111MODULE: "on", GOFLAGS: "-mod=mod" },
    })
  } catch (e) {
    const err = e as { stderr?: string; message: string }
    throw new Error(`cannot get ${mod.path}@${mod.version} with '${go} mod download': ${err.stderr || err.message}; install Go or set GLDT_GO`)
  }
  const info = JSON.parse(out) as { Dir?: string; Error?: string }
  if (!info.Dir || !existsSync(info.Dir)) throw new Error(`go mod download ${mod.path}@${mod.version}: ${info.Error ?? "no directory"}`)
  return info.Dir
}

/** Loads every service the plugin serves or calls into one protobufjs root. */
export const loadProtocolRoot = (dirs: { readonly sdk: string; readonly goPlugin: string }): protobuf.Root => {
  const root = new protobuf.Root()
  // backend.proto imports `sdk/logical/….proto` (paths relative to the Vault repository root).
  root.resolvePath = (origin, target) => {
    if (target.startsWith("sdk/")) return join(dirs.sdk, target.slice("sdk/".length))
    if (target.startsWith("google/protobuf/")) return target
    return protobuf.util.path.resolve(origin, target)
  }
  root.loadSync(
    [
      join(dirs.sdk, "plugin/pb/backend.proto"),
      join(dirs.sdk, "logical/version.proto"),
      join(dirs.goPlugin, "internal/plugin/grpc_broker.proto"),
      join(dirs.goPlugin, "internal/plugin/grpc_controller.proto"),
    ],
    { keepCase: true },
  )
  root.resolveAll()
  return root
}

/** Writes `dist/protocol.json` and returns its path. */
export const buildDescriptor = (out = DESCRIPTOR_PATH): string => {
  const root = loadProtocolRoot({ sdk: moduleDir(PROTO_MODULES.sdk), goPlugin: moduleDir(PROTO_MODULES.goPlugin) })
  mkdirSync(dirname(out), { recursive: true })
  // Write then rename: a plugin (or a parallel test) may be reading the previous descriptor.
  const tmp = `${out}.tmp-${process.pid}`
  writeFileSync(tmp, `${JSON.stringify(root.toJSON())}\n`)
  renameSync(tmp, out)
  return out
}
