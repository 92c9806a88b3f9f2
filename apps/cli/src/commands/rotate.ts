/** `gldt rotate`: mints a successor, delivers it and retires the previous token. */
import { rotate as rotateJob } from "@gldt/core/Lifecycle"
import { Clock, Effect } from "effect"
import { Command } from "effect/cli"
import { reportingFailures } from "../errors.ts"
import { common } from "../options.ts"
import { progress } from "../output.ts"
import { prepare } from "../prepare.ts"
import { emit } from "../report.ts"

export const rotate = Command.make(
  "rotate",
  common,
  Effect.fn(function* (c) {
    // The request was made when the process started, not after its inputs were read: a concurrent
    // rotate that minted while this one was still loading then satisfies it (two requests mint once).
    const requestedAt = Math.min(Math.floor(performance.timeOrigin), yield* Clock.currentTimeMillis)
    const p = yield* prepare(c)
    progress(c.output, `rotating ${p.job.key}`)
    const report = yield* rotateJob(p.job, requestedAt).pipe(Effect.provide(p.layer))
    yield* emit(c, "rotate", report)
  }, reportingFailures),
).pipe(
  Command.withDescription(
    "Mint a new token, deliver it, retire the previous one (revoked once the grace has passed; --grace 0 revokes at once), and revoke retired tokens that are due",
  ),
)
