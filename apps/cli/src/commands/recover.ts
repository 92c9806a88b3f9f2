/** `gldt recover`: finishes or undoes interrupted work and revokes this key's orphans. */
import { formatGoDuration } from "@gldt/core/GoDuration"
import { DEFAULT_CREATE_SETTLE_MS, recover as recoverJob, sweep } from "@gldt/core/Lifecycle"
import { State } from "@gldt/core/State"
import { Clock, Effect, Option } from "effect"
import { Command } from "effect/cli"
import { RevokeFailed, reportingFailures } from "../errors.ts"
import { common } from "../options.ts"
import { describeReport, printJson, printText, progress, reportJson } from "../output.ts"
import { prepare } from "../prepare.ts"

export const recover = Command.make(
  "recover",
  common,
  Effect.fn(function* (c) {
    const p = yield* prepare(c, { writableSink: false })
    progress(c.output, `recovering ${p.job.key}`)
    const [report, findings] = yield* Effect.gen(function* () {
      const open = Option.getOrUndefined(yield* (yield* State).load(p.job.key))?.record.intent
      if (open !== undefined) {
        const settleMs = p.job.policy.createSettleMs ?? DEFAULT_CREATE_SETTLE_MS
        const left = Math.max(0, open.createdAt + settleMs - (yield* Clock.currentTimeMillis))
        progress(c.output, `an interrupted create may still land; waiting up to ${formatGoDuration(Math.ceil(left / 1000) * 1000)} for it to settle`)
      }
      return yield* Effect.all([
        recoverJob(p.job, { graceMs: p.job.policy.graceMs, createSettleMs: p.job.policy.createSettleMs, waitForSettle: true }),
        sweep(p.job),
      ])
    }).pipe(Effect.provide(p.layer))
    const lookalikes = findings.filter((f) => f.verdict === "lookalike")
    if (c.output === "json") {
      printJson({ ...reportJson("recover", report), lookalikes: lookalikes.map((f) => ({ id: f.token.id, name: f.token.name, username: f.token.username })) })
    } else {
      for (const line of describeReport("recover", report, yield* Clock.currentTimeMillis)) printText(line)
      for (const f of lookalikes) {
        printText(
          `untracked look-alike token ${f.token.id} (${f.token.name}/${f.token.username}): not made by this key as far as gldt can prove; left untouched`,
        )
      }
    }
    if (report.revokeErrors.length > 0) return yield* Effect.fail(new RevokeFailed({ count: report.revokeErrors.length }))
  }, reportingFailures),
).pipe(Command.withDescription("Finish or undo interrupted work and revoke orphans this key created (lists untracked look-alikes, never touches them)"))
