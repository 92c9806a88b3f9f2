/**
 * The State and Sink layers a command line asks for (`--state file:…|vault:…`, `--sink file:…|stdout|vault:…`),
 * and the Vault flags with their usual environment variables. One Vault client serves both when
 * both live in Vault.
 */
import { readFileSync } from "node:fs"
import { FileSink, FileState, StdoutSink } from "@gldt/adapter-file"
import { checkAddr, DEFAULT_K8S_JWT_FILE, type VaultAuth, VaultClient, type VaultClientOptions } from "@gldt/adapter-vault/VaultClient"
import * as VaultSink from "@gldt/adapter-vault/VaultSink"
import * as VaultState from "@gldt/adapter-vault/VaultState"
import type { Sink } from "@gldt/core/Sink"
import type { State } from "@gldt/core/State"
import { Effect, Layer, Option, Redacted, Scope } from "effect"
import { Flag } from "effect/cli"
import { BadInput, type SinkLocation, type StateLocation } from "./inputs.ts"

const optional = (name: string, description: string) => Flag.String(name).pipe(Flag.withDescription(description), Flag.optional)

export const vaultFlags = {
  vaultAddr: optional("vault-addr", "Vault address for vault: State or sinks (default $VAULT_ADDR), e.g. https://vault.example.com:8200"),
  vaultNamespace: optional("vault-namespace", "Vault namespace (Enterprise/HCP; default $VAULT_NAMESPACE)"),
  vaultCacert: optional("vault-cacert", "PEM CA bundle to trust for Vault (default $VAULT_CACERT)"),
  vaultTlsServerName: optional(
    "vault-tls-server-name",
    "Name Vault's certificate must carry when it differs from the address (default $VAULT_TLS_SERVER_NAME)",
  ),
  vaultAllowHttp: Flag.Boolean("vault-allow-http").pipe(
    Flag.withDescription("Allow plain http:// to a Vault that is not on loopback (the Vault token would cross the network in clear)"),
    Flag.withDefault(false),
  ),
  vaultAuth: Flag.Literals("vault-auth", ["token", "approle", "kubernetes"]).pipe(
    Flag.withDescription(
      "How to log in to Vault: token ($VAULT_TOKEN or --vault-token-file), approle (--vault-role-id + $VAULT_SECRET_ID or --vault-secret-id-file), kubernetes (--vault-k8s-role + a service-account JWT file). Default: approle when a role id is given, kubernetes when a role is given, else token",
    ),
    Flag.optional,
  ),
  vaultTokenFile: optional("vault-token-file", "File holding the Vault token (else $VAULT_TOKEN); never printed or stored"),
  vaultRoleId: optional("vault-role-id", "AppRole role id (default $VAULT_ROLE_ID)"),
  vaultSecretIdFile: optional("vault-secret-id-file", "File holding the AppRole secret id (else $VAULT_SECRET_ID)"),
  vaultK8sRole: optional("vault-k8s-role", "Vault role for Kubernetes auth"),
  vaultK8sJwtFile: optional("vault-k8s-jwt-file", `Service-account JWT for Kubernetes auth, read at every login (default ${DEFAULT_K8S_JWT_FILE})`),
  vaultAuthMount: optional("vault-auth-mount", "Mount path of the AppRole or Kubernetes auth method (default approle / kubernetes)"),
}

export type VaultFlags = {
  readonly [K in keyof typeof vaultFlags]: K extends "vaultAllowHttp"
    ? boolean
    : K extends "vaultAuth"
      ? Option.Option<"token" | "approle" | "kubernetes">
      : Option.Option<string>
}

const env = (name: string): string | undefined => {
  const v = process.env[name]?.trim()
  return v === undefined || v === "" ? undefined : v
}

const readSecretFile = (flag: string, path: string, what: string) =>
  Effect.gen(function* () {
    let text: string
    try {
      text = readFileSync(path, "utf8")
    } catch (e) {
      return yield* new BadInput({ problems: [`--${flag}: cannot read ${path} (${(e as NodeJS.ErrnoException).code ?? "error"})`] })
    }
    const value = text.trim()
    if (value === "") return yield* new BadInput({ problems: [`--${flag}: ${path} is empty; put the ${what} in it`] })
    return value
  })

/** The Vault client options from flags and environment; every problem is bad input naming the flag or variable. */
export const vaultOptions = (f: VaultFlags) =>
  Effect.gen(function* () {
    const addr = Option.getOrUndefined(f.vaultAddr) ?? env("VAULT_ADDR")
    if (addr === undefined) {
      return yield* new BadInput({
        problems: ["--vault-addr: a vault: location needs the Vault address; set VAULT_ADDR or pass --vault-addr https://vault.example.com:8200"],
      })
    }
    const url = checkAddr(addr, f.vaultAllowHttp)
    if (!(url instanceof URL)) return yield* new BadInput({ problems: [`--vault-addr: ${url.message}`] })
    const caFile = Option.getOrUndefined(f.vaultCacert) ?? env("VAULT_CACERT")
    let caPem: string | undefined
    if (caFile !== undefined) {
      try {
        caPem = readFileSync(caFile, "utf8")
      } catch (e) {
        return yield* new BadInput({ problems: [`--vault-cacert: cannot read ${caFile} (${(e as NodeJS.ErrnoException).code ?? "error"})`] })
      }
      if (!caPem.includes("-----BEGIN CERTIFICATE-----")) return yield* new BadInput({ problems: [`--vault-cacert: ${caFile} holds no PEM certificate`] })
    }
    const roleId = Option.getOrUndefined(f.vaultRoleId) ?? env("VAULT_ROLE_ID")
    const k8sRole = Option.getOrUndefined(f.vaultK8sRole)
    const method = Option.getOrUndefined(f.vaultAuth) ?? (roleId !== undefined ? "approle" : k8sRole !== undefined ? "kubernetes" : "token")
    const mount = Option.getOrUndefined(f.vaultAuthMount)
    let auth: VaultAuth
    if (method === "approle") {
      if (roleId === undefined)
        return yield* new BadInput({ problems: ["--vault-role-id: AppRole auth needs the role id; pass --vault-role-id or set VAULT_ROLE_ID"] })
      const file = Option.getOrUndefined(f.vaultSecretIdFile)
      const secretId = file !== undefined ? yield* readSecretFile("vault-secret-id-file", file, "AppRole secret id") : env("VAULT_SECRET_ID")
      if (secretId === undefined) {
        return yield* new BadInput({
          problems: ["--vault-secret-id-file: AppRole auth needs a secret id; pass --vault-secret-id-file PATH or set VAULT_SECRET_ID"],
        })
      }
      auth = { method: "approle", roleId, secretId: Redacted.make(secretId), mount }
    } else if (method === "kubernetes") {
      if (k8sRole === undefined) return yield* new BadInput({ problems: ["--vault-k8s-role: Kubernetes auth needs the Vault role to log in as"] })
      auth = { method: "kubernetes", role: k8sRole, jwtFile: Option.getOrUndefined(f.vaultK8sJwtFile), mount }
    } else {
      const file = Option.getOrUndefined(f.vaultTokenFile)
      const token = file !== undefined ? yield* readSecretFile("vault-token-file", file, "Vault token") : env("VAULT_TOKEN")
      if (token === undefined) {
        return yield* new BadInput({
          problems: [
            "--vault-token-file: no Vault token; set VAULT_TOKEN, pass --vault-token-file PATH, or log in with --vault-role-id (AppRole) or --vault-k8s-role (Kubernetes)",
          ],
        })
      }
      auth = { method: "token", token: Redacted.make(token) }
    }
    return {
      addr,
      auth,
      namespace: Option.getOrUndefined(f.vaultNamespace) ?? env("VAULT_NAMESPACE"),
      caPem,
      tlsServerName: Option.getOrUndefined(f.vaultTlsServerName) ?? env("VAULT_TLS_SERVER_NAME"),
      allowHttp: f.vaultAllowHttp,
    } satisfies VaultClientOptions
  })

/**
 * A Vault client layer, built only when some location is in Vault. A command provides its layer more
 * than once (checks, then the work), so the client is made once and kept for the process: one
 * login, one session. Its options were checked, so it cannot fail to build.
 */
const vaultClient = (f: VaultFlags) =>
  Effect.map(vaultOptions(f), (o) => {
    let made: VaultClient["Service"] | undefined
    const once = Effect.suspend(() =>
      made !== undefined
        ? Effect.succeed(made)
        : Effect.flatMap(Scope.make(), (processScope) =>
            VaultClient.make(o).pipe(
              Scope.provide(processScope),
              Effect.tap((client) =>
                Effect.sync(() => {
                  made = client
                }),
              ),
            ),
          ),
    )
    return Layer.orDie(Layer.effect(VaultClient, once))
  })

export const stateLayer = (loc: StateLocation, f: VaultFlags): Effect.Effect<Layer.Layer<State>, BadInput> =>
  loc.kind === "file"
    ? Effect.succeed(FileState.layer({ dir: loc.dir }))
    : Effect.map(vaultClient(f), (client) => VaultState.layer({ mount: loc.mount, prefix: loc.prefix }).pipe(Layer.provide(client)))

/** State and Sink, sharing one Vault client (one login) when both are in Vault. */
export const backendLayers = (state: StateLocation, sink: SinkLocation, f: VaultFlags): Effect.Effect<Layer.Layer<State | Sink>, BadInput> =>
  Effect.gen(function* () {
    const client = state.kind === "vault" || sink.kind === "vault" ? yield* vaultClient(f) : undefined
    const stateL = state.kind === "file" ? FileState.layer({ dir: state.dir }) : VaultState.layer({ mount: state.mount, prefix: state.prefix })
    const sinkL =
      sink.kind === "stdout"
        ? StdoutSink.layer({ format: sink.format })
        : sink.kind === "file"
          ? FileSink.layer({ path: sink.path, format: sink.format, registry: sink.registry })
          : VaultSink.layer({ mount: sink.mount, path: sink.path, removeMode: sink.removeMode, keepVersions: sink.keepVersions })
    const both = Layer.mergeAll(stateL, sinkL)
    return client === undefined ? (both as Layer.Layer<State | Sink>) : both.pipe(Layer.provide(client))
  })
