/** `gldt revoke`: revokes every token of the key and removes what was delivered. */
import { DEFAULT_SUSPECT_WAIT_MS, revokeAll } from "@gldt/core/Lifecycle"
import { Effect } from "effect"
import { Command } from "effect/cli"
import { reportingFailures } from "../errors.ts"
import { common, durationFlag, suspectWait } from "../options.ts"
import { progress } from "../output.ts"
import { prepare } from "../prepare.ts"
import { emit } from "../report.ts"

export const revoke = Command.make(
  "revoke",
  { ...common, suspectWait },
  Effect.fn(function* (c) {
    const p = yield* prepare(c, { writableSink: false })
    const suspectWaitMs = yield* durationFlag("suspect-wait", c.suspectWait, DEFAULT_SUSPECT_WAIT_MS)
    progress(c.output, `revoking every token of ${p.job.key}`)
    const report = yield* revokeAll(p.job, {
      removeFromSink: true,
      createSettleMs: p.job.policy.createSettleMs,
      suspectWaitMs,
      // A person asked: failed revocations are tried again now, not after their back-off.
      retryNow: true,
    }).pipe(Effect.provide(p.layer))
    yield* emit(c, "revoke", report)
  }, reportingFailures),
).pipe(
  Command.withDescription(
    "Revoke every token of the key, remove the delivered credential and the record (needs no writable sink). Suspects are kept until --suspect-wait has passed",
  ),
)
