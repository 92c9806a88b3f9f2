/** A tiny programmable HTTP(S) server for the client's edge cases (redirects, odd bodies, resets). */
import * as http from "node:http"
import * as https from "node:https"
import type { AddressInfo } from "node:net"
import { Effect, Logger, References } from "effect"

export interface Recorded {
  readonly method: string
  readonly url: string
  readonly headers: http.IncomingHttpHeaders
  readonly body: string
}

export type Handler = (req: Recorded, res: http.ServerResponse, n: number) => void

export interface TestServer {
  readonly url: string
  readonly requests: Array<Recorded>
  /** Replace the handler. */
  handle(handler: Handler): void
}

export const json = (res: http.ServerResponse, status: number, body: unknown, headers: http.OutgoingHttpHeaders = {}) => {
  res.writeHead(status, { "content-type": "application/json", ...headers })
  res.end(body === undefined ? undefined : JSON.stringify(body))
}

export const text = (res: http.ServerResponse, status: number, body: string, headers: http.OutgoingHttpHeaders = {}) => {
  res.writeHead(status, { "content-type": "text/plain", ...headers })
  res.end(body)
}

/** Starts a server on 127.0.0.1 for the test's scope. */
export const startServer = (handler: Handler, tls?: { readonly key: string; readonly cert: string }) =>
  Effect.acquireRelease(
    Effect.callback<TestServer>((resume) => {
      let current = handler
      const requests: Array<Recorded> = []
      const listener = (req: http.IncomingMessage, res: http.ServerResponse) => {
        const chunks: Array<Buffer> = []
        req.on("data", (c: Buffer) => chunks.push(c))
        req.on("end", () => {
          const rec = { method: req.method ?? "", url: req.url ?? "", headers: req.headers, body: Buffer.concat(chunks).toString("utf8") }
          requests.push(rec)
          current(rec, res, requests.length)
        })
      }
      const server = tls ? https.createServer({ key: tls.key, cert: tls.cert }, listener) : http.createServer(listener)
      server.listen(0, "127.0.0.1", () => {
        const port = (server.address() as AddressInfo).port
        resume(
          Effect.succeed(
            Object.assign(
              {
                url: `${tls ? "https" : "http"}://127.0.0.1:${port}`,
                requests,
                handle: (h: Handler) => {
                  current = h
                },
              },
              { server },
            ),
          ),
        )
      })
    }),
    (s) =>
      Effect.callback<void>((resume) => {
        const server = (s as unknown as { server: http.Server }).server
        server.closeAllConnections()
        server.close(() => resume(Effect.void))
      }),
  )

/** Collects every log line (logfmt, annotations included) at Debug and above. */
export const captureLogs = () => {
  const lines: Array<string> = []
  const logger = Logger.map(Logger.formatLogFmt, (line) => {
    lines.push(line)
  })
  return {
    lines,
    provide: <A, E, R>(effect: Effect.Effect<A, E, R>) =>
      effect.pipe(Effect.provide(Logger.layer([logger])), Effect.provideService(References.MinimumLogLevel, "Debug")),
  }
}
