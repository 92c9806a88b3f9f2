/**
 * @gldt/gitlab: `@gldt/core`'s `GitLab` service over GitLab's REST API (v4).
 *
 * - `GitLabClient` — the service's layers (`layer`, `layerNoTransport`) and `make`;
 * - `Transport` — where requests go (`layer`: undici's fetch, `layerHttpClient`: an `HttpClient`);
 * - `Options` — retry, timeout and User-Agent settings.
 */
export * as GitLabClient from "./GitLabClient.ts"
export * as Options from "./Options.ts"
export * as Transport from "./Transport.ts"
