/**
 * Where HTTP requests go. The GitLab layer asks the transport for one `HttpClient` per connection's
 * CA bundle; the default transport is fetch from `undici` with one dispatcher per CA bundle, so
 * tests can point it at an in-process server (plain http with `allowHttp`, or https with the
 * server's CA).
 */
import type * as net from "node:net"
import * as tls from "node:tls"
import { Context, Effect, Layer, Option } from "effect"
import { FetchHttpClient, HttpClient } from "effect/http"
import { Agent, buildConnector, fetch as undiciFetch } from "undici"

export interface GitLabTransportShape {
  /**
   * The client for a connection. `caPem` holds extra PEM CAs to trust besides the default store;
   * `undefined` means the default store only.
   */
  readonly client: (caPem: string | undefined) => Effect.Effect<HttpClient.HttpClient>
}

export class GitLabTransport extends Context.Service<GitLabTransport, GitLabTransportShape>()("@gldt/gitlab/GitLabTransport") {}

/**
 * Set on every error the default transport's connections produce: whether the request could
 * already have been written, i.e. the connection was established (TCP connected; for https, the
 * TLS handshake done). Before that no byte of the request can have reached the server. Only `false`
 * lets a failed create count as "not sent".
 */
export const REQUEST_WRITABLE = "gldtRequestWritable"

const mark = (error: unknown, writable: boolean): void => {
  if (typeof error === "object" && error !== null) Object.assign(error, { [REQUEST_WRITABLE]: writable })
}

/**
 * undici's own connector, with errors marked: a failure to connect (resolve, refuse, TLS handshake)
 * is not writable; an error of an established socket is.
 */
const markingConnector = (options: buildConnector.BuildOptions): buildConnector.connector => {
  const connect = buildConnector(options)
  return (opts, callback) =>
    connect(opts, (error: Error | null, socket: net.Socket | tls.TLSSocket | null) => {
      if (error !== null || socket === null) {
        mark(error, false)
        return callback(error ?? new Error("connection failed"), null)
      }
      // Registered first, so the mark is on the error before undici sees it.
      socket.prependListener("error", (e: unknown) => mark(e, true))
      return callback(null, socket)
    })
}

/** How long an idle connection to GitLab may wait for its next request (far below any server's idle timeout). */
export const KEEP_ALIVE_MS = 1_000

/** The CAs Node trusts by default (bundled, plus NODE_EXTRA_CA_CERTS and the system store when enabled). */
const defaultCas = (): ReadonlyArray<string> => (typeof tls.getCACertificates === "function" ? tls.getCACertificates("default") : tls.rootCertificates)

/**
 * undici's fetch with one dispatcher per distinct CA bundle, created on first use and closed when
 * the layer closes. Redirects are never followed here (the GitLab layer asks for
 * `redirect: "manual"`). Connection errors are marked with whether the request could already have
 * been written (`REQUEST_WRITABLE`). A connection is reused only while it has been idle for less
 * than a second (`KEEP_ALIVE_MS`), or less than the server's own `Keep-Alive: timeout` minus two
 * seconds: a request then never rides on a socket the server is about to close, which would turn
 * into a reset that looks like a lost answer (and if one ever did, a POST is still treated as
 * possibly applied, never re-sent). A burst of calls (a controller minting for many consumers) pays
 * one TLS handshake per connection instead of one per call. undici is used rather than
 * `@effect/platform-node`, whose non-optional `redis` peer would be installed into every consumer.
 */
export const layer: Layer.Layer<GitLabTransport> = Layer.effect(
  GitLabTransport,
  Effect.gen(function* () {
    const base: HttpClient.HttpClient = yield* Effect.provide(HttpClient.HttpClient, FetchHttpClient.layer)
    const clients = new Map<string, HttpClient.HttpClient>()
    const dispatchers: Array<Agent> = []
    yield* Effect.addFinalizer(() =>
      Effect.promise(() => {
        clients.clear()
        return Promise.allSettled(dispatchers.splice(0).map((d) => d.destroy()))
      }),
    )
    return GitLabTransport.of({
      client: (caPem) =>
        Effect.sync((): HttpClient.HttpClient => {
          const key = caPem ?? ""
          const cached = clients.get(key)
          if (cached !== undefined) return cached
          // One TLS context per bundle, built once: with `ca` given per connection Node parsed the
          // whole default store plus the bundle for every request (about 20 ms of CPU each).
          const secureContext = caPem === undefined ? undefined : tls.createSecureContext({ ca: [...defaultCas(), caPem] })
          const dispatcher = new Agent({
            keepAliveTimeout: KEEP_ALIVE_MS,
            keepAliveMaxTimeout: KEEP_ALIVE_MS,
            connect: markingConnector(secureContext === undefined ? {} : { secureContext }),
          })
          dispatchers.push(dispatcher)
          const client = HttpClient.transform(base, (effect) =>
            Effect.flatMap(Effect.serviceOption(FetchHttpClient.RequestInit), (init) =>
              effect.pipe(
                Effect.provideService(FetchHttpClient.Fetch, undiciFetch as unknown as typeof globalThis.fetch),
                Effect.provideService(FetchHttpClient.RequestInit, {
                  ...Option.getOrElse(init, () => ({})),
                  dispatcher,
                  // undici 8's dispatcher type differs from the one @types/node's RequestInit names.
                } as unknown as globalThis.RequestInit),
              ),
            ),
          )
          clients.set(key, client)
          return client
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
