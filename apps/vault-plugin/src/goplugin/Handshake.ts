/**
 * The environment a go-plugin host sets before it starts a Vault backend plugin. Checked before
 * anything heavy is loaded, so a wrong start (by hand, or Vault's database-plugin probe) ends fast.
 */

/** Vault's handshake for backend plugins (`sdk/plugin/serve.go`). */
export const MAGIC_COOKIE_KEY = "VAULT_BACKEND_PLUGIN"
export const MAGIC_COOKIE_VALUE = "6669da05-b1c8-4f49-97d9-c8e5bed98e20"
export const CORE_PROTOCOL_VERSION = 1
export const APP_PROTOCOL_VERSION = 5

export class HandshakeRefused extends Error {}

/** Checks the environment the host set; throws `HandshakeRefused` with the reason otherwise. */
export const checkHandshakeEnv = (env: NodeJS.ProcessEnv): { readonly clientCertPem: string } => {
  if (env[MAGIC_COOKIE_KEY] !== MAGIC_COOKIE_VALUE) {
    throw new HandshakeRefused(
      "This binary is a Vault plugin. It is not meant to be run directly: register it in Vault's plugin catalog and enable it as a secrets engine.",
    )
  }
  const offered = (env.PLUGIN_PROTOCOL_VERSIONS ?? "").split(",").map((v) => v.trim())
  if (!offered.includes(String(APP_PROTOCOL_VERSION))) {
    throw new HandshakeRefused(`the host offers plugin protocol versions [${offered.join(",")}]; this plugin speaks only ${APP_PROTOCOL_VERSION}`)
  }
  const clientCertPem = env.PLUGIN_CLIENT_CERT ?? ""
  if (!clientCertPem.includes("BEGIN CERTIFICATE")) {
    throw new HandshakeRefused("PLUGIN_CLIENT_CERT is not set: this plugin requires go-plugin's automatic mutual TLS (Vault's plugin protocol v5)")
  }
  return { clientCertPem }
}
