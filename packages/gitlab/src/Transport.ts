/**
 * Where HTTP requests go. The GitLab layer asks the transport for one `HttpClient` per connection's
 * CA bundle; the default transport runs on `node:http`/`node:https`, so tests can point it at an
 * in-process server (plain http with `allowHttp`, or https with the server's CA).
 */
import * as http from "node:http"
import * as https from "node:https"
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

/** The CAs Node trusts by default (bundled, plus NODE_EXTRA_CA_CERTS and the system store when enabled). */
const defaultCas = (): ReadonlyArray<string> =>
  typeof tls.getCACertificates === "function" ? tls.getCACertificates("default") : tls.rootCertificates

/**
 * `node:http`/`node:https` with one agent pair per distinct CA bundle, created on first use and
 * destroyed when the layer closes. Redirects are never followed here. Connections are not kept
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
            http: new http.Agent({ keepAlive: false }),
            https: new https.Agent(caPem === undefined ? { keepAlive: false } : { keepAlive: false, ca: [...defaultCas(), caPem] }),
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
