/** `gldt preflight`: checks the access token's reach and rights; mints nothing. */
import { GitLab } from "@gldt/core/GitLab"
import { Effect } from "effect"
import { Command } from "effect/cli"
import { PreflightFailed, reportingFailures } from "../errors.ts"
import { common } from "../options.ts"
import { printJson, printText, progress } from "../output.ts"
import { prepare } from "../prepare.ts"

export const preflight = Command.make(
  "preflight",
  common,
  Effect.fn(function* (c) {
    const p = yield* prepare(c)
    progress(c.output, `checking access to ${p.job.spec.target.kind} ${p.job.spec.target.id} at ${p.job.spec.url}`)
    const report = yield* Effect.gen(function* () {
      const gitlab = yield* GitLab
      return yield* gitlab.preflight(p.job.connection, p.job.spec.target)
    }).pipe(Effect.provide(p.layer))
    if (c.output === "json") printJson({ command: "preflight", ok: report.canManage, ...report })
    else {
      printText(`${p.job.spec.target.kind} ${p.job.spec.target.id}: reachable, ${report.tokenCount} deploy token(s)`)
      printText(report.canManage ? "the access token may create and revoke deploy tokens" : `cannot create deploy tokens: ${report.reason}`)
    }
    if (!report.canManage) return yield* Effect.fail(new PreflightFailed({ reason: report.reason ?? "not allowed" }))
  }, reportingFailures),
).pipe(Command.withDescription("Check that the access token reaches the target with the right role and scope (mints nothing)"))
