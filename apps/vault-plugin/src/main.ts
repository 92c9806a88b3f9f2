/**
 * Entry point of the gldt Vault plugin process (started by Vault through the launcher).
 * GLDT_VAULT_CREATE_SETTLE_MS shortens how long an interrupted create is waited for (tests only;
 * default 60 s, GitLab's request timeout).
 */
import { Engine } from "./engine/Engine.ts"
import { runPlugin } from "./goplugin/Serve.ts"
import { loadProtocol } from "./protocol/Protocol.ts"
import { backendService } from "./vault/BackendServer.ts"

const settle = Number(process.env.GLDT_VAULT_CREATE_SETTLE_MS)
const engine = new Engine({ createSettleMs: Number.isFinite(settle) && settle > 0 ? settle : undefined })
const protocol = loadProtocol()
await runPlugin(protocol, (broker) => ({ services: [[protocol.Backend, backendService(protocol, broker, engine)]] }))
