/**
 * @gldt/gitlab-sim: an in-process (and standalone) simulator of GitLab's
 * deploy-token REST API v4 with fault injection. See README.md.
 */
export { type SimulatorOptions, Simulator, type RequestLogEntry, startSimulator } from "./server.ts"
export type { FaultAction, FaultInfo, FaultKind, FaultMatch, FaultMethod, FaultRule } from "./faults.ts"
export { FaultController, seededRandom } from "./faults.ts"
export type { RateLimitOptions } from "./throttle.ts"
export type { TlsMaterial } from "./tls.ts"
export { generateTlsMaterial } from "./tls.ts"
export {
  type DeployTokenScope,
  type DeployTokenType,
  DEPLOY_TOKEN_SCOPES,
  type Namespace,
  type PatScope,
  ROLE_LEVELS,
  type Role,
  type User,
  type Visibility,
} from "./model.ts"
export type { AddAccessTokenInput, AddNamespaceInput, AddUserInput, ForeignTokenInput, SimDeployToken, TimeInput, TokenTarget } from "./world.ts"
export { applySeed, type DefaultWorld, seedDefaultWorld, type SeedFile } from "./seed.ts"
