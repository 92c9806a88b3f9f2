/** The probe and metrics endpoints: plain node:http servers, scoped (closed on shutdown). */
import { createServer, type Server } from "node:http"
import type { AddressInfo } from "node:net"
import { Effect } from "effect"
import type { Registry } from "prom-client"

export type Route = (path: string) => Promise<{ status: number; body: string; contentType: string }> | undefined

/** `:8080` → all interfaces, `127.0.0.1:8080` → that host. */
const splitAddress = (addr: string): { host: string | undefined; port: number } => {
  const i = addr.lastIndexOf(":")
  const host = addr.slice(0, i).replace(/^\[|\]$/g, "")
  return { host: host === "" ? undefined : host, port: Number(addr.slice(i + 1)) }
}

/** Serves `route` on `addr` until the scope closes; returns the bound port. */
export const serve = (name: string, addr: string, route: Route) =>
  Effect.acquireRelease(
    Effect.callback<Server, Error>((resume) => {
      const server = createServer((req, res) => {
        const path = (req.url ?? "/").split("?")[0]!
        const answer = req.method === "GET" || req.method === "HEAD" ? route(path) : undefined
        if (answer === undefined) {
          res.writeHead(404, { "content-type": "text/plain" }).end("not found\n")
          return
        }
        answer.then(
          (a) => res.writeHead(a.status, { "content-type": a.contentType }).end(req.method === "HEAD" ? undefined : a.body),
          (e: unknown) => res.writeHead(500, { "content-type": "text/plain" }).end(`${String(e)}\n`),
        )
      })
      const { host, port } = splitAddress(addr)
      server.once("error", (e) => resume(Effect.fail(new Error(`cannot serve ${name} on ${addr}: ${e.message}`))))
      server.listen(port, host, () => resume(Effect.succeed(server)))
    }),
    (server) =>
      Effect.callback<void>((resume) => {
        server.closeAllConnections()
        server.close(() => resume(Effect.void))
      }),
  ).pipe(Effect.tap((server) => Effect.logInfo(`serving ${name}`).pipe(Effect.annotateLogs({ address: addr, port: (server.address() as AddressInfo).port }))))

export const healthRoute =
  (ready: () => { ok: boolean; why: string }): Route =>
  (path) => {
    if (path === "/healthz" || path === "/livez") return Promise.resolve({ status: 200, body: "ok\n", contentType: "text/plain" })
    if (path === "/readyz") {
      const r = ready()
      return Promise.resolve({ status: r.ok ? 200 : 503, body: `${r.ok ? "ok" : r.why}\n`, contentType: "text/plain" })
    }
    return undefined
  }

export const metricsRoute =
  (registry: Registry): Route =>
  (path) =>
    path === "/metrics" ? registry.metrics().then((body) => ({ status: 200, body, contentType: registry.contentType })) : undefined
