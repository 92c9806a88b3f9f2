/**
 * How a credential is written: the exact bytes of each format. Pure functions; no I/O.
 */
import { type Credential, revealToken } from "@gldt/core/Sink"

export const FORMATS = ["env", "json", "dockerconfigjson", "netrc", "raw"] as const
export type Format = (typeof FORMATS)[number]

/** A credential cannot be written in a format without changing its meaning (e.g. a newline in a token). */
export class FormatProblem extends Error {}

/** The host name of the GitLab URL (no port), e.g. `gitlab.example.com`. */
export const gitlabHost = (gitlabUrl: string): string => {
  let url: URL
  try {
    url = new URL(gitlabUrl)
  } catch {
    throw new FormatProblem(`the GitLab URL ${JSON.stringify(gitlabUrl)} is not a URL`)
  }
  return url.hostname
}

/**
 * The container registry host used by `dockerconfigjson` when none is configured:
 * `registry.gitlab.com` for gitlab.com, and `registry.<host>` for a self-managed GitLab, which is
 * GitLab's own suggestion but only a guess: set `registry` when the registry lives elsewhere
 * (e.g. `gitlab.example.com:5050`).
 */
export const defaultRegistry = (gitlabUrl: string): string => {
  const host = gitlabHost(gitlabUrl)
  return host === "gitlab.com" ? "registry.gitlab.com" : `registry.${host}`
}

// Characters that mean the same thing unquoted to POSIX sh, docker --env-file, systemd and dotenv.
const ENV_BARE = /^[A-Za-z0-9._+:@/%=,-]*$/
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it finds
const CONTROL = /[\u0000-\u001f\u007f]/

/**
 * A value for a `NAME=value` line: bare when it needs no quoting (GitLab usernames and tokens
 * always do), otherwise single-quoted. A value that single quotes cannot carry unambiguously (a
 * quote or a control character) is refused rather than written in a way some parser misreads.
 */
export const envValue = (name: string, value: string): string => {
  if (ENV_BARE.test(value)) return value
  if (CONTROL.test(value) || value.includes("'")) {
    throw new FormatProblem(`${name} contains a quote or control character, which an env file cannot carry unambiguously`)
  }
  return `'${value}'`
}

const netrcWord = (name: string, value: string): string => {
  if (value === "" || /\s/.test(value) || CONTROL.test(value) || value.includes('"')) {
    throw new FormatProblem(`${name} is empty or contains whitespace or a quote, which a netrc file cannot carry`)
  }
  return value
}

export interface RenderOptions {
  /** `dockerconfigjson`: registry host; default `defaultRegistry(credential.gitlabUrl)`. */
  readonly registry?: string | undefined
}

/** The exact content written for `credential` in `format`. Throws `FormatProblem`. */
export const render = (format: Format, credential: Credential, options: RenderOptions = {}): string => {
  const token = revealToken(credential)
  const { username } = credential
  switch (format) {
    case "env":
      return (
        `GITLAB_DEPLOY_USERNAME=${envValue("the username", username)}\n` +
        `GITLAB_DEPLOY_TOKEN=${envValue("the token", token)}\n` +
        `GITLAB_DEPLOY_TOKEN_ID=${credential.tokenId}\n`
      )
    case "json":
      return `${JSON.stringify({ username, token, tokenId: credential.tokenId, gitlabUrl: credential.gitlabUrl })}\n`
    case "dockerconfigjson": {
      const registry = options.registry ?? defaultRegistry(credential.gitlabUrl)
      const auth = Buffer.from(`${username}:${token}`, "utf8").toString("base64")
      return `${JSON.stringify({ auths: { [registry]: { username, password: token, auth } } })}\n`
    }
    case "netrc":
      return `machine ${gitlabHost(credential.gitlabUrl)} login ${netrcWord("the username", username)} password ${netrcWord("the token", token)}\n`
    case "raw":
      // Exactly the token, no trailing newline: `$(cat file)`, `--password-stdin < file` and
      // programs that read the whole file as the secret all get the same bytes.
      return token
  }
}
