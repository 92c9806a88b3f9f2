/**
 * @gldt/core: the GitLab deploy-token lifecycle as Effect programs, one module per concept.
 * `import { Lifecycle, State } from "@gldt/core"` or `import * as Lifecycle from "@gldt/core/Lifecycle"`.
 */
export * as Errors from "./Errors.ts"
export * as Fingerprint from "./Fingerprint.ts"
export * as GitLab from "./GitLab.ts"
export * as GoDuration from "./GoDuration.ts"
export * as Lifecycle from "./Lifecycle.ts"
export * as Manifest from "./Manifest.ts"
export * as Runner from "./Runner.ts"
export * as Sink from "./Sink.ts"
export * as Spec from "./Spec.ts"
export * as SpecSchema from "./SpecSchema.ts"
export * as State from "./State.ts"
