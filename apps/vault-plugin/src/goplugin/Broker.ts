/**
 * go-plugin's gRPC broker, plugin side. The host opens `GRPCBroker/StartStream` right after it
 * connects and, for every service it serves back to the plugin (Vault: Storage and SystemView),
 * listens on a fresh socket and sends its address as a `ConnInfo{service_id, network, address}`.
 * `dial(id)` waits for that ConnInfo and connects to it with mutual TLS: the plugin's own
 * certificate as the client certificate, the host's certificate as the only trusted root.
 */
import * as grpc from "@grpc/grpc-js"

export interface ConnInfo {
  readonly service_id: number
  readonly network: string
  readonly address: string
  readonly knock?: { readonly knock: boolean; readonly ack: boolean; readonly error: string } | null
}

export interface BrokerTls {
  /** PEM of the host's certificate (PLUGIN_CLIENT_CERT). */
  readonly hostCertPem: string
  readonly certPem: string
  readonly keyPem: string
}

/** go-plugin gives up on a connection id whose info has not arrived within 5 s; so do we. */
const DIAL_WAIT_MS = 5_000

export class Broker {
  private readonly infos = new Map<number, ConnInfo>()
  private readonly waiters = new Map<number, Array<(c: ConnInfo) => void>>()
  private readonly streams = new Set<grpc.ServerDuplexStream<ConnInfo, ConnInfo>>()

  private readonly tls: BrokerTls

  constructor(tls: BrokerTls) {
    this.tls = tls
  }

  /** The `GRPCBroker` service implementation. */
  readonly service: grpc.UntypedServiceImplementation = {
    StartStream: (stream: grpc.ServerDuplexStream<ConnInfo, ConnInfo>) => {
      this.streams.add(stream)
      stream.on("data", (info: ConnInfo) => this.receive(info))
      stream.on("end", () => {
        this.streams.delete(stream)
        stream.end()
      })
      stream.on("error", () => this.streams.delete(stream))
    },
  }

  private receive(info: ConnInfo): void {
    // Knocks belong to broker multiplexing, which this plugin does not announce.
    if (info.knock?.knock) return
    const waiting = this.waiters.get(info.service_id)
    if (waiting !== undefined) {
      this.waiters.delete(info.service_id)
      for (const w of waiting) w(info)
    } else {
      this.infos.set(info.service_id, info)
    }
  }

  private connInfo(id: number): Promise<ConnInfo> {
    const known = this.infos.get(id)
    if (known !== undefined) {
      this.infos.delete(id)
      return Promise.resolve(known)
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(id)
        reject(new Error(`broker: no connection info for service ${id} within ${DIAL_WAIT_MS} ms`))
      }, DIAL_WAIT_MS)
      const list = this.waiters.get(id) ?? []
      list.push((c) => {
        clearTimeout(timer)
        resolve(c)
      })
      this.waiters.set(id, list)
    })
  }

  /** Target and channel options to reach the host's service `id` with mutual TLS. */
  async dial(id: number): Promise<{ readonly target: string; readonly credentials: grpc.ChannelCredentials; readonly options: grpc.ChannelOptions }> {
    const info = await this.connInfo(id)
    let target: string
    if (info.network === "unix") target = `unix:${info.address}`
    else if (info.network === "tcp") target = info.address
    else throw new Error(`broker: unsupported network ${JSON.stringify(info.network)} for service ${id}`)
    const credentials = grpc.credentials.createSsl(Buffer.from(this.tls.hostCertPem), Buffer.from(this.tls.keyPem), Buffer.from(this.tls.certPem))
    return {
      target,
      credentials,
      options: {
        // The host's certificate names `localhost`, whatever the socket.
        "grpc.ssl_target_name_override": "localhost",
        "grpc.default_authority": "localhost",
        "grpc.max_receive_message_length": 2 ** 31 - 1,
        "grpc.max_send_message_length": 2 ** 31 - 1,
      },
    }
  }

  close(): void {
    for (const s of this.streams) s.end()
    this.streams.clear()
  }
}
