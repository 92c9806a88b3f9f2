/** The `gldt` command: one subcommand per module in ./commands, over the core lifecycle, with file State and a file or stdout Sink. */
import { Effect } from "effect"
import { Command } from "effect/cli"
import { generate } from "./commands/generate.ts"
import { preflight } from "./commands/preflight.ts"
import { recover } from "./commands/recover.ts"
import { revoke } from "./commands/revoke.ts"
import { rotate } from "./commands/rotate.ts"
import { run as runCmd } from "./commands/run.ts"
import { status } from "./commands/status.ts"
import { suspects } from "./commands/suspects.ts"
import { validate } from "./commands/validate.ts"
import { reportingParseErrors } from "./errors.ts"
import { VERSION } from "./version.ts"

export { CreateUnsettled, PreflightFailed, RevokeFailed } from "./errors.ts"
export { VERSION } from "./version.ts"

export const gldt = Command.make("gldt").pipe(
  Command.withDescription(
    [
      "Mint, deliver, rotate and revoke GitLab deploy tokens from the GitlabDeployToken manifest of External Secrets Operator.",
      "",
      "Exit codes: 0 done; 1 failure (GitLab, state, sink or revocation failed; the lifecycle stays consistent); 2 bad input (nothing was minted).",
      "The access token is read from $GITLAB_TOKEN unless --token-env / --token-file say otherwise; it is never printed or stored.",
    ].join("\n"),
  ),
  Command.withSubcommands([validate, preflight, generate, rotate, revoke, status, recover, runCmd, suspects]),
)

/** Runs `gldt` on the process's arguments (effect/cli reads them from Stdio); failures are already reported when it fails. */
export const run = Command.run(gldt, { version: VERSION }).pipe(reportingParseErrors, Effect.asVoid)
