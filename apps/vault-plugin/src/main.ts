/**
 * Entry point of the gldt Vault plugin process (started by Vault through the launcher).
 * The host's environment is checked before the heavy modules load, so a wrong start ends at once.
 * GLDT_VAULT_CREATE_SETTLE_MS shortens how long an interrupted create is waited for (tests only;
 * default 60 s, GitLab's request timeout).
 */
import { checkHandshakeEnv, HandshakeRefused } from "./goplugin/Handshake.ts"

try {
  checkHandshakeEnv(process.env)
} catch (e) {
  if (!(e instanceof HandshakeRefused)) throw e
  process.stderr.write(`${e.message}\n`)
  process.exit(1)
}

const [{ Engine }, { runPlugin }, { loadProtocol }, { backendService }] = await Promise.all([
  import("./engine/Engine.ts"),
  import("./goplugin/Serve.ts"),
  import("./protocol/Protocol.ts"),
  import("./vault/BackendServer.ts"),
])

const settle = Number(process.env.GLDT_VAULT_CREATE_SETTLE_MS)
const engine = new Engine({ createSettleMs: Number.isFinite(settle) && settle > 0 ? settle : undefined })
const protocol = loadProtocol()
await runPlugin(protocol, (broker) => ({ services: [[protocol.Backend, backendService(protocol, broker, engine)]] }))
