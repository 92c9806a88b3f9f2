export {
  ALL_TOOLS,
  KUBE_TOOLS,
  type BuildOptions,
  type BuildResult,
  cacheDir,
  ensureTool,
  ensureTools,
  type Log,
  type ToolInfo,
  type ToolName,
  toolInfo,
} from "./build.ts"
export { type Kube, type KubectlOptions, type KubectlResult, SERVICE_CLUSTER_IP_RANGE, type StartKubeOptions, startKube } from "./kube.ts"
export { type StartVaultOptions, startVault, type Vault, type VaultResponse } from "./vault.ts"
