/**
 * @gldt/adapter-vault: `@gldt/core`'s State and Sink services in HashiCorp Vault KV v2.
 * `VaultState` and `VaultSink` have `layer(options)` and `make(options)` over the `VaultClient` in context;
 * `VaultClient` has `layer(options)` and `make(options)`.
 */
export * as Kv from "./Kv.ts"
export * as VaultClient from "./VaultClient.ts"
export * as VaultErrors from "./VaultErrors.ts"
export * as VaultSink from "./VaultSink.ts"
export * as VaultState from "./VaultState.ts"
