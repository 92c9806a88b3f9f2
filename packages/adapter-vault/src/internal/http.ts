/** One HTTP exchange with Vault on `node:http`/`node:https`: no redirects followed, a time limit, the whole answer read. */
import * as http from "node:http"
import * as https from "node:https"
import * as tls from "node:tls"
import { Effect } from "effect"

export interface Exchange {
  readonly status: number
  readonly location: string | undefined
  readonly text: string
}

/** A failure before an answer: `sent` is false when the request certainly did not reach Vault. */
export interface NetworkFailure {
  readonly _tag: "NetworkFailure"
  readonly code: string
  readonly detail: string
  readonly sent: boolean
}

export interface Transport {
  readonly send: (request: {
    readonly method: string
    readonly url: URL
    readonly headers: Record<string, string>
    readonly body: string | undefined
  }) => Effect.Effect<Exchange, NetworkFailure>
  readonly close: () => void
}

export interface TransportOptions {
  /** Extra PEM CAs trusted besides Node's default store. */
  readonly caPem?: string | undefined
  /** SNI and the name the certificate must carry, when it differs from the address's host. */
  readonly tlsServerName?: string | undefined
  readonly timeoutMs: number
}

/** Codes meaning the connection was never established: nothing was sent. */
const NOT_SENT = new Set(["ECONNREFUSED", "ENOTFOUND", "EAI_AGAIN", "EHOSTUNREACH", "ENETUNREACH", "EADDRNOTAVAIL"])

const defaultCas = (): ReadonlyArray<string> => (typeof tls.getCACertificates === "function" ? tls.getCACertificates("default") : tls.rootCertificates)

export const makeTransport = (options: TransportOptions): Transport => {
  // Connections are not kept alive: a write never rides on a socket Vault already closed.
  const httpAgent = new http.Agent({ keepAlive: false })
  const httpsAgent = new https.Agent({
    keepAlive: false,
    ...(options.caPem ? { ca: [...defaultCas(), options.caPem] } : {}),
    ...(options.tlsServerName ? { servername: options.tlsServerName } : {}),
  })
  const send: Transport["send"] = (request) =>
    Effect.callback<Exchange, NetworkFailure>((resume) => {
      let connected = false
      let settled = false
      const done = (e: Effect.Effect<Exchange, NetworkFailure>) => {
        if (settled) return
        settled = true
        resume(e)
      }
      const fail = (error: unknown) => {
        const code = (error as { code?: unknown })?.code
        const codeText = typeof code === "string" ? code : "ERROR"
        const detail = error instanceof Error ? error.message : String(error)
        done(Effect.fail({ _tag: "NetworkFailure", code: codeText, detail, sent: connected || !NOT_SENT.has(codeText) }))
      }
      const isHttps = request.url.protocol === "https:"
      const headers: Record<string, string | number> = { ...request.headers }
      if (request.body !== undefined) {
        headers["content-type"] = "application/json"
        headers["content-length"] = Buffer.byteLength(request.body)
      }
      const req = (isHttps ? https : http).request(
        request.url,
        {
          method: request.method,
          headers,
          agent: isHttps ? httpsAgent : httpAgent,
          ...(isHttps && options.tlsServerName ? { servername: options.tlsServerName } : {}),
        },
        (res) => {
          const chunks: Buffer[] = []
          res.on("data", (c: Buffer) => chunks.push(c))
          res.on("error", fail)
          res.on("end", () =>
            done(
              Effect.succeed({
                status: res.statusCode ?? 0,
                location: typeof res.headers.location === "string" ? res.headers.location : undefined,
                text: Buffer.concat(chunks).toString("utf8"),
              }),
            ),
          )
        },
      )
      req.on("socket", (socket) => {
        socket.once(isHttps ? "secureConnect" : "connect", () => {
          connected = true
        })
      })
      req.setTimeout(options.timeoutMs, () => {
        req.destroy(Object.assign(new Error(`no answer within ${options.timeoutMs} ms`), { code: "ETIMEDOUT" }))
      })
      req.on("error", fail)
      req.end(request.body)
      return Effect.sync(() => {
        settled = true
        req.destroy()
      })
    })
  return {
    send,
    close: () => {
      httpAgent.destroy()
      httpsAgent.destroy()
    },
  }
}
