/**
 * The protocol spike, kept as a test: a Node process that a real Vault starts as an external plugin
 * (registered by sha256 from its plugin directory) completes go-plugin's handshake with automatic
 * mutual TLS, answers Setup, Type, SpecialPaths and HandleRequest, and round-trips one
 * Storage.Put + Storage.Get through the broker.
 */
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { startVault, type Vault } from "@gldt/testenv"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { writeLauncher } from "../src/launcher/Launcher.ts"
import { checkHandshakeEnv, HandshakeRefused, MAGIC_COOKIE_KEY, MAGIC_COOKIE_VALUE } from "../src/goplugin/Serve.ts"

const SPIKE = new URL("./fixtures/spike-plugin.ts", import.meta.url).pathname

describe("go-plugin handshake environment", () => {
  it("refuses to run without Vault's magic cookie, as a Go plugin does", () => {
    expect(() => checkHandshakeEnv({ PLUGIN_PROTOCOL_VERSIONS: "5" })).toThrow(/not meant to be run directly/)
  })
  it("refuses a host that does not offer protocol version 5", () => {
    expect(() => checkHandshakeEnv({ [MAGIC_COOKIE_KEY]: MAGIC_COOKIE_VALUE, PLUGIN_PROTOCOL_VERSIONS: "4" })).toThrow(HandshakeRefused)
  })
  it("refuses to run without automatic mutual TLS", () => {
    expect(() => checkHandshakeEnv({ [MAGIC_COOKIE_KEY]: MAGIC_COOKIE_VALUE, PLUGIN_PROTOCOL_VERSIONS: "4,5" })).toThrow(/PLUGIN_CLIENT_CERT/)
  })
})

describe("spike: a TypeScript plugin inside a real Vault", () => {
  let vault: Vault
  let pluginDir: string

  beforeAll(async () => {
    pluginDir = mkdtempSync(join(tmpdir(), "gldt-spike-plugins-"))
    // The directory is empty at start, so the dev server registers nothing by itself.
    vault = await startVault({ pluginDir })
  })
  afterAll(async () => {
    await vault?.stop()
    rmSync(pluginDir, { recursive: true, force: true })
  })

  it("registers by sha256, mounts, answers a request and round-trips storage through the broker", async () => {
    const launcher = writeLauncher({ dir: pluginDir, name: "gldt-spike", entry: SPIKE })
    const registered = await vault.request("POST", "sys/plugins/catalog/secret/gldt-spike", { sha256: launcher.sha256, command: launcher.command })
    expect(registered.status, JSON.stringify(registered.body)).toBe(204)
    // Mounting runs the plugin: handshake, Setup (dials Storage through the broker), Type, SpecialPaths, Initialize.
    const mounted = await vault.request("POST", "sys/mounts/spike", { type: "gldt-spike" })
    expect(mounted.status, JSON.stringify(mounted.body)).toBe(204)
    const mounts = (await vault.request("GET", "sys/mounts")).body as { data: Record<string, { type: string; running_plugin_version?: string }> }
    expect(mounts.data["spike/"]?.type).toBe("gldt-spike")

    const info = await vault.request("GET", "spike/info")
    expect(info.status).toBe(200)
    const data = (info.body as { data: { plugin: string; pid: number } }).data
    expect(data.plugin).toBe("spike")
    expect(data.pid).not.toBe(process.pid)

    const put = await vault.request("POST", "spike/kv/first", { answer: 42, words: ["a", "b"] })
    expect(put.status, JSON.stringify(put.body)).toBe(204)
    const got = await vault.request("GET", "spike/kv/first")
    expect(got.status, JSON.stringify(got.body)).toBe(200)
    expect((got.body as { data: { stored: unknown } }).data.stored).toEqual({ answer: 42, words: ["a", "b"] })

    // An unknown path is Vault's 404 "unsupported path", not a crash.
    const unknown = await vault.request("GET", "spike/nowhere")
    expect(unknown.status).toBe(404)
  })
})
