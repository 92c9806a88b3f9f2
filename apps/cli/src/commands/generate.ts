/** `gldt generate`: mints and delivers a token only if the key has none. */
import { reconcile } from "@gldt/core/Lifecycle"
import { Effect } from "effect"
import { Command } from "effect/cli"
import { reportingFailures } from "../errors.ts"
import { common } from "../options.ts"
import { progress } from "../output.ts"
import { prepare } from "../prepare.ts"
import { emit } from "../report.ts"

export const generate = Command.make(
  "generate",
  common,
  Effect.fn(function* (c) {
    const p = yield* prepare(c)
    progress(c.output, `ensuring ${p.job.key} has a token`)
    // Only "no token yet" (or a sink that lost it) mints: no schedule, no spec-change rotation, and
    // no renewal near expiry either (that is rotate's and run's job).
    const report = yield* reconcile({
      ...p.job,
      policy: { ...p.job.policy, refreshIntervalMs: 0, refreshPolicy: "CreatedOnce", renewBeforeExpiry: false },
    }).pipe(Effect.provide(p.layer))
    yield* emit(c, "generate", report)
  }, reportingFailures),
).pipe(Command.withDescription("Mint and deliver one token if the key has none"))
