export {
  type ErrorBody,
  type Failure,
  gitlabText,
  parseErrorBody,
  type RequestInfo,
  retryAfterMs,
  statusLine,
} from "./Answer.ts"
export { baseUrl, decodeEntity, escapeId, layer, layerNoTransport, nextPage, PER_PAGE, targetPath } from "./GitLabClient.ts"
export { defaults, defaultUserAgent, type GitLabClientOptions, type ResolvedOptions, resolveOptions } from "./Options.ts"
export { GitLabTransport, type GitLabTransportShape, layerHttpClient, layerNode } from "./Transport.ts"
export { version } from "./version.ts"
