/** `gldt run`: reconciles on schedule until stopped. */
import { formatGoDuration, parseGoDuration } from "@gldt/core/GoDuration"
import type { Job } from "@gldt/core/Lifecycle"
import { runForever } from "@gldt/core/Runner"
import { Clock, Effect, Option } from "effect"
import { Command, Flag } from "effect/cli"
import { interruptMeansDone, reportingFailures } from "../errors.ts"
import { BadInput } from "../inputs.ts"
import { common } from "../options.ts"
import { describeReport, printJson, printText, progress, reportJson } from "../output.ts"
import { prepare } from "../prepare.ts"

export const run = Command.make(
  "run",
  {
    ...common,
    refresh: Flag.String("refresh").pipe(
      Flag.withDescription("Refresh interval when the file has no ExternalSecret (Go duration; 0 = never). Default 1h"),
      Flag.optional,
    ),
    maxRotations: Flag.Int("max-rotations").pipe(Flag.withDescription("Exit 0 after this many rotations (for tests and benchmarks)"), Flag.optional),
  },
  Effect.fn(function* (c) {
    yield* interruptMeansDone
    const p = yield* prepare(c)
    let refreshIntervalMs = p.job.policy.refreshIntervalMs
    if (p.manifests.consumer === undefined) {
      const text = Option.getOrElse(c.refresh, () => "1h")
      const ms = parseGoDuration(text)
      if (ms === undefined) return yield* new BadInput({ problems: [`--refresh: "${text}" is not a duration; write it like 1h or 30m`] })
      refreshIntervalMs = ms
    }
    const job: Job = { ...p.job, policy: { ...p.job.policy, refreshIntervalMs } }
    let rotations = 0
    const limit = Option.getOrUndefined(c.maxRotations)
    progress(c.output, `running ${job.key}; stop with SIGTERM or Ctrl-C`)
    // Waits until each report's nextAt; failures back off exponentially and honour GitLab's Retry-After.
    yield* runForever(job, {
      onReport: (report) =>
        Effect.gen(function* () {
          const now = yield* Clock.currentTimeMillis
          if (report.actions.length > 0 || report.revokeErrors.length > 0) {
            if (c.output === "json") printJson(reportJson("run", report))
            else for (const line of describeReport("run", report, now)) printText(line)
          }
          rotations += report.actions.filter((a) => a.action === "rotated").length
        }),
      onError: (e, retryInMs) =>
        Effect.sync(() =>
          c.output === "json"
            ? printJson({ command: "run", ok: false, error: e.message, retryInMs })
            : process.stderr.write(`gldt: ${e.message} (retrying in ${formatGoDuration(Math.max(1000, Math.round(retryInMs / 1000) * 1000))})\n`),
        ),
      until: () => limit !== undefined && rotations >= limit,
    }).pipe(Effect.provide(p.layer))
  }, reportingFailures),
).pipe(Command.withDescription("Reconcile on schedule until SIGTERM (or --max-rotations), then exit cleanly"))
