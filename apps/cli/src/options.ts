/** Flags shared by several commands, and the reading of their duration values. */
import { type VaultFlags, vaultFlags } from "./backends.ts"
import { formatGoDuration, parseGoDuration } from "@gldt/core/GoDuration"
import { DEFAULT_SUSPECT_WAIT_MS } from "@gldt/core/Lifecycle"
import { Effect, Option } from "effect"
import { Argument, Flag } from "effect/cli"
import { BadInput, SINK_FORMATS } from "./inputs.ts"
import type { OutputMode } from "./output.ts"

export const file = Flag.String("file").pipe(
  Flag.withAlias("f"),
  Flag.withDescription("YAML file with a GitlabDeployToken (or ClusterGenerator) and optionally its ExternalSecret"),
)
export const key = Flag.String("key").pipe(Flag.withDescription("State key of the consumer (default: the generator's metadata.name)"), Flag.optional)
export const stateFlag = Flag.String("state").pipe(
  Flag.withDescription("Where State lives: file:DIR, or vault:MOUNT/PREFIX (one KV v2 secret per key; see the --vault-* flags)"),
  Flag.withDefault("file:./.gldt/state"),
)
export const sinkFlag = Flag.String("sink").pipe(
  Flag.withDescription(
    `Where the credential goes: file:PATH[?format=${SINK_FORMATS.join("|")}][&registry=HOST], stdout[?format=…], or vault:MOUNT/PATH[?remove=delete|destroy|purge][&versions=N] (KV v2: each delivery a version with username and token, the token id in custom metadata; versions: how many the path keeps) (default file:./.gldt/<key>.env)`,
  ),
  Flag.optional,
)
export const grace = Flag.String("grace").pipe(
  Flag.withDescription(
    "How long a replaced token stays valid after its successor was delivered (Go duration; 0 revokes at once). Default: spec.revokeGracePeriod, else 15m",
  ),
  Flag.optional,
)
export const tokenEnv = Flag.String("token-env").pipe(
  Flag.withDescription("Environment variable holding the GitLab access token"),
  Flag.withDefault("GITLAB_TOKEN"),
)
export const tokenFile = Flag.String("token-file").pipe(Flag.withDescription("File holding the GitLab access token"), Flag.optional)
export const caFile = Flag.String("ca-file").pipe(Flag.withDescription("PEM bundle of CAs to trust for a self-managed GitLab"), Flag.optional)
export const allowHttp = Flag.Boolean("allow-http").pipe(
  Flag.withDescription("Allow a plain http:// GitLab URL (local tests only; the access token would cross the network in clear)"),
  Flag.withDefault(false),
)
export const createSettle = Flag.String("create-settle").pipe(
  Flag.withDescription(
    "How long GitLab may still apply a create after gldt lost its answer (Go duration). Recovery waits this long before it concludes a lost create made nothing. Default 60s, GitLab's request timeout",
  ),
  Flag.optional,
)
export const output = Flag.Literals("output", ["text", "json"]).pipe(
  Flag.withAlias("o"),
  Flag.withDescription("text for people, json (one document on stdout) for scripts"),
  Flag.withDefault("text"),
)
export const suspectWait = Flag.String("suspect-wait").pipe(
  Flag.withDescription(
    `How long a deleted consumer's suspects (look-alikes gldt cannot prove it made) are kept for a person to decide with \`gldt suspects\`, counted from the first revoke; a later revoke after that releases them (forgotten, never revoked) with a warning. Go duration; default ${formatGoDuration(DEFAULT_SUSPECT_WAIT_MS)}`,
  ),
  Flag.optional,
)
export const suspectId = Argument.Int("id").pipe(Argument.withDescription("GitLab id of the suspect token (see gldt suspects)"))

/** The flags of every command that acts on a manifest. */
export const common = { file, key, state: stateFlag, sink: sinkFlag, grace, tokenEnv, tokenFile, caFile, allowHttp, createSettle, output, ...vaultFlags }
export type Common = VaultFlags & {
  readonly file: string
  readonly key: Option.Option<string>
  readonly state: string
  readonly sink: Option.Option<string>
  readonly grace: Option.Option<string>
  readonly tokenEnv: string
  readonly tokenFile: Option.Option<string>
  readonly caFile: Option.Option<string>
  readonly allowHttp: boolean
  readonly createSettle: Option.Option<string>
  readonly output: OutputMode
}

/** A Go-duration flag in milliseconds, or `fallback` when it was not given; a bad value is bad input naming the flag. */
export const durationFlag = (name: string, value: Option.Option<string>, fallback: number | undefined) =>
  Effect.gen(function* () {
    if (Option.isNone(value)) return fallback
    const ms = parseGoDuration(value.value)
    if (ms === undefined) return yield* new BadInput({ problems: [`--${name}: "${value.value}" is not a duration; write it like 0, 30s, 15m`] })
    return ms
  })
