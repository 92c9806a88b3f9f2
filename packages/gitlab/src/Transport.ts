/**
 * Where HTTP requests go. The GitLab layer asks the transport for one `HttpClient` per connection's
 * CA bundle; the default transport runs on `node:http`/`node:https`, so tests can point it at an
 * in-process server (plain http with `allowHttp`, or https with the server's CA).
 */
import * as http from "node:http"
import * as https from "node:https"
import type * as net from "node:net"
import type * as stream from "node:stream"
import * as tls from "node:tls"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import { Context, Effect, Layer } from "effect"
import { HttpClient } from "effect/http"

export interface GitLabTransportShape {
  /**
   * The client for a connection. `caPem` holds extra PEM CAs to trust besides the default store;
   * `undefined` means the default store only.
   */
  readonly client: (caPem: string | undefined) => Effect.Effect<HttpClient.HttpClient>
}

export class GitLabTransport extends Context.Service<GitLabTransport, GitLabTransportShape>()("@gldt/gitlab/GitLabTransport") {}

/**
 * Set on every error a socket of `layerNode` emits: whether the request could already have been
 * written, i.e. the connection was established (TCP connected; for https, the TLS handshake done).
 * Before that no byte of the request can have reached the server. Only `false` lets a failed
 * create count as "not sent".
 */
export const REQUEST_WRITABLE = "gldtRequestWritable"

const marking = <S extends stream.Duplex | null | undefined>(socket: S, readyEvent: "connect" | "secureConnect"): S => {
  if (socket === null || socket === undefined) return socket
  const s = socket as unknown as net.Socket
  let ready = false
  s.once(readyEvent, () => {
    ready = true
  })
  // Registered first, so the mark is on the error before the request sees it.
  s.prependListener("error", (e: unknown) => {
    // Not `bytesWritten`: it counts bytes still queued on a socket that never connected.
    if (typeof e === "object" && e !== null) Object.assign(e, { [REQUEST_WRITABLE]: ready })
  })
  return socket
}

class MarkingHttpAgent extends http.Agent {
  override createConnection(options: http.ClientRequestArgs, callback?: (err: Error | null, stream: stream.Duplex) => void) {
    return marking(super.createConnection(options, callback), "connect")
  }
}

class MarkingHttpsAgent extends https.Agent {
  override createConnection(options: http.ClientRequestArgs, callback?: (err: Error | null, stream: stream.Duplex) => void) {
    return marking(super.createConnection(options, callback), "secureConnect")
  }
}

/** The CAs Node trusts by default (bundled, plus NODE_EXTRA_CA_CERTS and the system store when enabled). */
const defaultCas = (): ReadonlyArray<string> =>
  typeof tls.getCACertificates === "function" ? tls.getCACertificates("default") : tls.rootCertificates

/**
 * `node:http`/`node:https` with one agent pair per distinct CA bundle, created on first use and
 * destroyed when the layer closes. Redirects are never followed here. Socket errors are marked with
 * whether the request could already have been written (`REQUEST_WRITABLE`). Connections are not kept
 * alive: a POST therefore never rides on an idle socket the server may already have closed, which
 * would turn into a reset that looks like a lost answer.
 */
export const layerNode: Layer.Layer<GitLabTransport> = Layer.effect(
  GitLabTransport,
  Effect.gen(function* () {
    const clients = new Map<string, HttpClient.HttpClient>()
    const agents: Array<http.Agent> = []
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        for (const agent of agents) agent.destroy()
        agents.length = 0
        clients.clear()
      }),
    )
    return GitLabTransport.of({
      client: (caPem) =>
        Effect.suspend(() => {
          const key = caPem ?? ""
          const cached = clients.get(key)
          if (cached !== undefined) return Effect.succeed(cached)
          const pair = {
            http: new MarkingHttpAgent({ keepAlive: false }),
            https: new MarkingHttpsAgent(caPem === undefined ? { keepAlive: false } : { keepAlive: false, ca: [...defaultCas(), caPem] }),
          }
          agents.push(pair.http, pair.https)
          return NodeHttpClient.makeNodeHttp.pipe(
            Effect.provideService(NodeHttpClient.HttpAgent, pair),
            Effect.tap((client) => Effect.sync(() => clients.set(key, client))),
          )
        }),
    })
  }),
)

/**
 * Every connection uses the `HttpClient` from the context, whatever its `caPem`: that client must
 * already trust the server, and must not follow redirects (FetchHttpClient is told
 * `redirect: "manual"` by the GitLab layer).
 */
export const layerHttpClient: Layer.Layer<GitLabTransport, never, HttpClient.HttpClient> = Layer.effect(
  GitLabTransport,
  Effect.gen(function* () {
    const client = yield* HttpClient.HttpClient
    return GitLabTransport.of({ client: () => Effect.succeed(client) })
  }),
)
