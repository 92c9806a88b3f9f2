/**
 * What can go wrong talking to Vault, as tagged errors whose message says what to fix. None carries
 * a Vault token, a secret id, a JWT or a deploy-token value: messages are built from the address,
 * the API path, the status and Vault's own error text (which never echoes request bodies).
 */
import { Schema } from "effect"

/** No answer: connection refused, DNS, TLS handshake, timeout. */
export class VaultUnreachable extends Schema.TaggedError<VaultUnreachable>()("VaultUnreachable", {
  addr: Schema.String,
  message: Schema.String,
}) {}

/** 503 "Vault is sealed": an operator must unseal it. */
export class VaultSealed extends Schema.TaggedError<VaultSealed>()("VaultSealed", {
  addr: Schema.String,
}) {
  override get message() {
    return `Vault at ${this.addr} is sealed; unseal it (vault operator unseal) and retry — nothing was written`
  }
}

/** 403 on a path while the token itself is valid: the token's policies lack a capability. */
export class VaultPermissionDenied extends Schema.TaggedError<VaultPermissionDenied>()("VaultPermissionDenied", {
  /** The API path, e.g. `secret/data/gldt/state/e2e`. */
  path: Schema.String,
  /** Capabilities the operation needs on `path`, e.g. `["create", "update"]`. */
  capabilities: Schema.Array(Schema.String),
  namespace: Schema.optional(Schema.String),
}) {
  override get message() {
    const ns = this.namespace ? ` in namespace ${this.namespace}` : ""
    return `permission denied on ${this.path}${ns}: the Vault token's policy needs ${this.capabilities.map((c) => `"${c}"`).join(" and ")} on path "${this.path}" (add: path "${this.path}" { capabilities = [${this.capabilities.map((c) => `"${c}"`).join(", ")}] })`
  }
}

/** The token is expired, revoked or unknown, and no auth method is configured to log in again. */
export class VaultTokenExpired extends Schema.TaggedError<VaultTokenExpired>()("VaultTokenExpired", {
  message: Schema.String,
}) {}

/** Logging in (AppRole, Kubernetes) failed. */
export class VaultAuthFailed extends Schema.TaggedError<VaultAuthFailed>()("VaultAuthFailed", {
  method: Schema.String,
  message: Schema.String,
}) {}

/** The mount is not a KV version 2 secrets engine (KV v1, another engine, or no mount at all). */
export class VaultNotKv2 extends Schema.TaggedError<VaultNotKv2>()("VaultNotKv2", {
  mount: Schema.String,
  message: Schema.String,
}) {}

/** Options that cannot work (no address, plain http to a remote host, an unreadable CA file…). */
export class VaultConfigError extends Schema.TaggedError<VaultConfigError>()("VaultConfigError", {
  message: Schema.String,
}) {}

/** Any other refusal (400, 5xx after retries, a redirect, an unreadable answer). */
export class VaultRequestFailed extends Schema.TaggedError<VaultRequestFailed>()("VaultRequestFailed", {
  status: Schema.Number,
  path: Schema.String,
  message: Schema.String,
}) {}

export type VaultError =
  | VaultUnreachable
  | VaultSealed
  | VaultPermissionDenied
  | VaultTokenExpired
  | VaultAuthFailed
  | VaultNotKv2
  | VaultConfigError
  | VaultRequestFailed
