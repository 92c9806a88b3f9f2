/**
 * @gldt/adapter-kubernetes: `@gldt/core`'s State and Sink services on Kubernetes, and the CRDs.
 * `KubeState` and `KubeSink` each have `layer(options)` and `make(options)`.
 */
export * as Connections from "./Connections.ts"
export * as Crds from "./Crds.ts"
export * as KubeSink from "./KubeSink.ts"
export * as KubeState from "./KubeState.ts"
export * as OpenApi from "./OpenApi.ts"
export * as Target from "./Target.ts"
export * as Template from "./Template.ts"
