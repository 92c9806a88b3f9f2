/**
 * The plugin protocol's gRPC service definitions, loaded at run time from the descriptor the build
 * step wrote (no generated code). Field names keep their `.proto` spelling; 64-bit integers (TTLs
 * in nanoseconds) arrive as decimal strings so no precision is lost.
 */
import { existsSync, readFileSync } from "node:fs"
import * as grpc from "@grpc/grpc-js"
import * as protoLoader from "@grpc/proto-loader"
import { DESCRIPTOR_PATH } from "./ProtoSource.ts"

export interface ProtocolServices {
  readonly Backend: grpc.ServiceDefinition
  readonly PluginVersion: grpc.ServiceDefinition
  readonly GRPCBroker: grpc.ServiceDefinition
  readonly GRPCController: grpc.ServiceDefinition
  /** Client constructors for the services the host serves back through the broker. */
  readonly StorageClient: grpc.ServiceClientConstructor
  readonly SystemViewClient: grpc.ServiceClientConstructor
}

type Tree = { [k: string]: Tree & grpc.ServiceClientConstructor }

export const loadProtocol = (path = process.env.GLDT_VAULT_PROTOCOL ?? DESCRIPTOR_PATH): ProtocolServices => {
  if (!existsSync(path)) {
    throw new Error(`protocol descriptor ${path} is missing; build it with 'pnpm vault-plugin:launcher DIR' (it runs the build step)`)
  }
  const json = JSON.parse(readFileSync(path, "utf8"))
  const def = protoLoader.fromJSON(json, { keepCase: true, longs: String, enums: Number, defaults: true, oneofs: true })
  const tree = grpc.loadPackageDefinition(def) as unknown as Tree
  const pb = tree.pb!
  const plugin = tree.plugin!
  return {
    Backend: pb.Backend!.service,
    PluginVersion: tree.logical!.PluginVersion!.service,
    GRPCBroker: plugin.GRPCBroker!.service,
    GRPCController: plugin.GRPCController!.service,
    StorageClient: pb.Storage!,
    SystemViewClient: pb.SystemView!,
  }
}
