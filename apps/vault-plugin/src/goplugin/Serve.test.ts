/**
 * The go-plugin server and the Backend service, with this test playing Vault's part in Node: it
 * pins the certificate from the handshake line, connects with its own client certificate, opens
 * the broker stream, serves Storage on a unix socket of its own and announces it with a ConnInfo,
 * then calls Setup and HandleRequest. (The same protocol against the real Vault is test/spike.test.ts.)
 */
import { spawnSync } from "node:child_process"
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as grpc from "@grpc/grpc-js"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { buildDescriptor } from "../protocol/ProtoSource.ts"
import { loadProtocol, type ProtocolServices } from "../protocol/Protocol.ts"
import { backendService } from "../vault/BackendServer.ts"
import type { LogicalBackend, Storage } from "../vault/Logical.ts"
import { makeCertificate, type PluginCertificate } from "./Certificate.ts"
import { MAGIC_COOKIE_KEY, MAGIC_COOKIE_VALUE, type Running, serve } from "./Serve.ts"

type Callback<T> = (e: grpc.ServiceError | null, r: T) => void
const call = <T>(client: grpc.Client, method: string, arg: unknown): Promise<T> =>
  new Promise((ok, ko) => (client as unknown as Record<string, (a: unknown, cb: Callback<T>) => void>)[method]!(arg, (e, r) => (e ? ko(e) : ok(r))))

let protocol: ProtocolServices
let host: PluginCertificate
let running: Running
let hostServer: grpc.Server
let dir: string
let pluginStorage: Storage | undefined
const hostStore = new Map<string, Buffer>()

const backend: LogicalBackend = {
  setup: async (ctx) => {
    pluginStorage = ctx.storage
  },
  initialize: async () => undefined,
  specialPaths: () => ({ sealWrapStorage: ["config"] }),
  cleanup: async () => undefined,
  handleRequest: async (req) => {
    await pluginStorage!.put(`seen/${req.path}`, Buffer.from(JSON.stringify(req.data)))
    const back = await pluginStorage!.get(`seen/${req.path}`)
    return { data: { echoed: JSON.parse(back!.value.toString()) }, secret: { ttlMs: 1500, maxTtlMs: 3000, renewable: true, internalData: { k: 1 } } }
  },
}

beforeAll(async () => {
  buildDescriptor()
  protocol = loadProtocol()
  host = await makeCertificate()
  dir = mkdtempSync(join(tmpdir(), "gldt-goplugin-"))
  // The socket directory a killed plugin left behind (its pid no longer runs).
  const dead = spawnSync(process.execPath, ["-e", ""]).pid
  mkdirSync(join(dir, `gldt-plugin-${dead}-stale`))
  running = await serve(protocol, (broker) => ({ services: [[protocol.Backend, backendService(protocol, broker, backend)]] }), {
    [MAGIC_COOKIE_KEY]: MAGIC_COOKIE_VALUE,
    PLUGIN_PROTOCOL_VERSIONS: "4,5",
    PLUGIN_CLIENT_CERT: host.certPem,
    PLUGIN_UNIX_SOCKET_DIR: dir,
  })
})

afterAll(async () => {
  await running?.stop()
  hostServer?.forceShutdown()
  rmSync(dir, { recursive: true, force: true })
})

describe("go-plugin server", () => {
  it("speaks the handshake, health, broker and Backend protocol to a host that pins its certificate", async () => {
    const [core, app, network, address, proto, cert] = running.handshakeLine.split("|")
    expect(address!.startsWith(join(dir, `gldt-plugin-${process.pid}-`))).toBe(true)
    expect(
      readdirSync(dir).filter((n) => n.includes("stale")),
      "a dead plugin's socket directory is removed",
    ).toEqual([])
    expect([core, app, network, proto]).toEqual(["1", "5", "unix", "grpc"])
    expect(cert!.length).toBeGreaterThan(50)
    expect(cert).not.toMatch(/=$/)
    const pluginPem = `-----BEGIN CERTIFICATE-----\n${Buffer.from(cert!, "base64").toString("base64")}\n-----END CERTIFICATE-----\n`
    const creds = grpc.credentials.createSsl(Buffer.from(pluginPem), Buffer.from(host.keyPem), Buffer.from(host.certPem))
    const options = { "grpc.ssl_target_name_override": "localhost", "grpc.default_authority": "localhost" }
    const Generic = grpc.makeGenericClientConstructor({}, "x")
    const base = new Generic(`unix:${address}`, creds, options)
    const channel = base.getChannel()
    // A client without the host's certificate is refused.
    const stranger = await makeCertificate()
    const refused = new Generic(
      `unix:${address}`,
      grpc.credentials.createSsl(Buffer.from(pluginPem), Buffer.from(stranger.keyPem), Buffer.from(stranger.certPem)),
      options,
    )
    const BackendClient = grpc.makeGenericClientConstructor(protocol.Backend, "Backend")
    await expect(call(new BackendClient("unused", creds, { ...options, channelOverride: refused.getChannel() }), "Type", {})).rejects.toThrow()

    const backendClient = new BackendClient("unused", creds, { ...options, channelOverride: channel })
    expect(await call(backendClient, "Type", {})).toEqual({ type: 1 })
    const paths = await call<{ paths: { seal_wrap_storage: string[] } }>(backendClient, "SpecialPaths", {})
    expect(paths.paths.seal_wrap_storage).toEqual(["config"])

    // The host serves Storage on its own socket, with mutual TLS, and announces it on the broker stream.
    hostServer = new grpc.Server()
    hostServer.addService(protocol.StorageClient.service, {
      Get: (c: grpc.ServerUnaryCall<{ key: string }, unknown>, cb: grpc.sendUnaryData<unknown>) =>
        cb(null, { entry: hostStore.has(c.request.key) ? { key: c.request.key, value: hostStore.get(c.request.key) } : null, err: "" }),
      Put: (c: grpc.ServerUnaryCall<{ entry: { key: string; value: Buffer } }, unknown>, cb: grpc.sendUnaryData<unknown>) => {
        hostStore.set(c.request.entry.key, c.request.entry.value)
        cb(null, { err: "" })
      },
      List: (_c: unknown, cb: grpc.sendUnaryData<unknown>) => cb(null, { keys: [...hostStore.keys()], err: "" }),
      Delete: (_c: unknown, cb: grpc.sendUnaryData<unknown>) => cb(null, { err: "" }),
    })
    const hostSocket = join(dir, "host.sock")
    await new Promise<void>((ok, ko) =>
      hostServer.bindAsync(
        `unix:${hostSocket}`,
        grpc.ServerCredentials.createSsl(Buffer.from(pluginPem), [{ cert_chain: Buffer.from(host.certPem), private_key: Buffer.from(host.keyPem) }], true),
        (e) => (e ? ko(e) : ok()),
      ),
    )
    const BrokerClient = grpc.makeGenericClientConstructor(protocol.GRPCBroker, "GRPCBroker")
    const brokerClient = new BrokerClient("unused", creds, { ...options, channelOverride: channel })
    const stream = (brokerClient as unknown as { StartStream: () => grpc.ClientDuplexStream<unknown, unknown> }).StartStream()
    stream.write({ service_id: 7, network: "unix", address: hostSocket })

    expect(await call(backendClient, "Setup", { broker_id: 7, Config: {}, backendUUID: "u" })).toEqual({ err: "" })
    const reply = await call<{ response: { data: string; secret: { lease_options: { TTL: string; MaxTTL: string } } }; err: unknown }>(
      backendClient,
      "HandleRequest",
      {
        storage_id: 7,
        request: { operation: "update", path: "kv/a", data: JSON.stringify({ x: 1 }) },
      },
    )
    expect(reply.err).toBeNull()
    expect(JSON.parse(reply.response.data)).toEqual({ echoed: { x: 1 } })
    // TTLs travel as int64 nanoseconds.
    expect(reply.response.secret.lease_options.TTL).toBe("1500000000")
    expect(reply.response.secret.lease_options.MaxTTL).toBe("3000000000")
    // The write went through the broker into the host's storage.
    expect(JSON.parse(hostStore.get("seen/kv/a")!.toString())).toEqual({ x: 1 })
    stream.end()
  })
})
