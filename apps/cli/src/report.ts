/** Prints a lifecycle Report and turns what it left undone into the command's failure. */
import type { Report } from "@gldt/core/Lifecycle"
import { Clock, Effect } from "effect"
import { CreateUnsettled, RevokeFailed } from "./errors.ts"
import type { Common } from "./options.ts"
import { describeReport, printJson, printText, reportJson } from "./output.ts"

export const emit = (c: Pick<Common, "output">, command: string, report: Report) =>
  Effect.gen(function* () {
    const now = yield* Clock.currentTimeMillis
    if (c.output === "json") printJson(reportJson(command, report))
    else for (const line of describeReport(command, report, now)) printText(line)
    if (report.revokeErrors.length > 0) {
      return yield* Effect.fail(new RevokeFailed({ count: report.revokeErrors.length }))
    }
    // A mint was wanted (any rotate; a generate with no token yet) but an unresolved create blocks it.
    if (report.openIntent && (command === "rotate" || report.currentTokenId === undefined)) {
      return yield* Effect.fail(new CreateUnsettled({}))
    }
  })
