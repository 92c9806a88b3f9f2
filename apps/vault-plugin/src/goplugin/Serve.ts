/**
 * The go-plugin server, as a Vault backend plugin (protocol version 5) must run it:
 * 1. refuse to run unless the host set Vault's magic cookie and offered protocol version 5;
 * 2. make a throw-away certificate and serve gRPC over TLS on a unix socket, requiring the client
 *    certificate the host passed in PLUGIN_CLIENT_CERT (automatic mutual TLS);
 * 3. serve health (`plugin` SERVING), the broker, the controller and the plugin's own services;
 * 4. print the handshake line `1|5|unix|<socket>|grpc|<certificate DER, base64 without padding>`.
 * stdio forwarding is not served: go-plugin tolerates its absence, and logs go to stderr instead.
 */
import { mkdtempSync, readdirSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as grpc from "@grpc/grpc-js"
import { HealthImplementation } from "grpc-health-check"
import type { ProtocolServices } from "../protocol/Protocol.ts"
import { Broker } from "./Broker.ts"
import { makeCertificate } from "./Certificate.ts"
import { APP_PROTOCOL_VERSION, CORE_PROTOCOL_VERSION, checkHandshakeEnv, HandshakeRefused } from "./Handshake.ts"
import { log } from "./Log.ts"

export { checkHandshakeEnv, HandshakeRefused, MAGIC_COOKIE_KEY, MAGIC_COOKIE_VALUE } from "./Handshake.ts"

export interface PluginServices {
  readonly services: ReadonlyArray<readonly [grpc.ServiceDefinition, grpc.UntypedServiceImplementation]>
}

export interface Running {
  readonly server: grpc.Server
  readonly broker: Broker
  readonly handshakeLine: string
  /** Stops serving, closes the broker, removes the socket. */
  stop(): Promise<void>
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM"
  }
}

/** A killed plugin cannot remove its socket directory; the next one does (the pid names the owner). */
const removeStaleSocketDirs = (base: string): void => {
  let names: string[]
  try {
    names = readdirSync(base)
  } catch {
    return
  }
  for (const name of names) {
    const owner = /^gldt-plugin-(\d+)-/.exec(name)
    if (owner && Number(owner[1]) !== process.pid && !alive(Number(owner[1]))) rmSync(join(base, name), { recursive: true, force: true })
  }
}

export const serve = async (protocol: ProtocolServices, build: (broker: Broker) => PluginServices, env: NodeJS.ProcessEnv = process.env): Promise<Running> => {
  const { clientCertPem } = checkHandshakeEnv(env)
  const cert = await makeCertificate()
  const broker = new Broker({ hostCertPem: clientCertPem, certPem: cert.certPem, keyPem: cert.keyPem })
  const server = new grpc.Server({ "grpc.max_receive_message_length": 2 ** 31 - 1, "grpc.max_send_message_length": 2 ** 31 - 1 })
  const health = new HealthImplementation({ plugin: "SERVING" })
  health.addToServer(server)
  server.addService(protocol.GRPCBroker, broker.service)
  const base = env.PLUGIN_UNIX_SOCKET_DIR || tmpdir()
  removeStaleSocketDirs(base)
  const socketDir = mkdtempSync(join(base, `gldt-plugin-${process.pid}-`))
  const socket = join(socketDir, "plugin.sock")
  let stopped = false
  const stop = async () => {
    if (stopped) return
    stopped = true
    broker.close()
    await new Promise<void>((done) => server.tryShutdown(() => done()))
    rmSync(socketDir, { recursive: true, force: true })
  }
  server.addService(protocol.GRPCController, {
    Shutdown: (_call: unknown, callback: grpc.sendUnaryData<object>) => {
      log("debug", "shutdown requested by the host")
      callback(null, {})
      // Answer first, then go: the host waits up to 2 s for the process to exit.
      setImmediate(() => {
        void stop().finally(() => process.exit(0))
      })
    },
  })
  for (const [definition, implementation] of build(broker).services) server.addService(definition, implementation)
  const credentials = grpc.ServerCredentials.createSsl(
    Buffer.from(clientCertPem),
    [{ cert_chain: Buffer.from(cert.certPem), private_key: Buffer.from(cert.keyPem) }],
    true,
  )
  await new Promise<number>((resolve, reject) => server.bindAsync(`unix:${socket}`, credentials, (err, port) => (err ? reject(err) : resolve(port))))
  const handshakeLine = `${CORE_PROTOCOL_VERSION}|${APP_PROTOCOL_VERSION}|unix|${socket}|grpc|${cert.derBase64}`
  return { server, broker, handshakeLine, stop }
}

/**
 * Runs a plugin process: serves, prints the handshake line, ignores SIGINT like go-plugin servers
 * (the host stops plugins through the controller), and exits when the host is gone.
 */
export const runPlugin = async (protocol: ProtocolServices, build: (broker: Broker) => PluginServices): Promise<Running> => {
  let running: Running
  try {
    running = await serve(protocol, build)
  } catch (e) {
    if (e instanceof HandshakeRefused) {
      process.stderr.write(`${e.message}\n`)
      process.exit(1)
    }
    throw e
  }
  process.on("SIGINT", () => log("trace", "interrupt ignored; the host stops plugins through the controller"))
  process.on("SIGTERM", () => void running.stop().finally(() => process.exit(0)))
  // An orphaned plugin (its host was killed) would serve nobody: leave when the parent changes.
  const parent = process.ppid
  setInterval(() => {
    if (process.ppid !== parent) void running.stop().finally(() => process.exit(0))
  }, 1_000).unref()
  process.stdout.write(`${running.handshakeLine}\n`)
  return running
}
