/** `gldt suspects [revoke ID | forget ID]`: look-alike tokens gldt cannot prove it made, for a person to decide. */
import { forgetSuspect, listSuspects, revokeSuspect } from "@gldt/core/Lifecycle"
import { Clock, Effect, Option } from "effect"
import { Command, Flag } from "effect/cli"
import { reportingFailures } from "../errors.ts"
import { stateLayer, vaultFlags } from "../backends.ts"
import { BadInput, parseStateFlag } from "../inputs.ts"
import { common, key, output, stateFlag, suspectId } from "../options.ts"
import { describeSuspects, printJson, printText, progress } from "../output.ts"
import { prepare } from "../prepare.ts"
import { emit } from "../report.ts"

const suspectsRevoke = Command.make(
  "revoke",
  { ...common, id: suspectId },
  Effect.fn(function* (c) {
    const p = yield* prepare(c, { writableSink: false })
    progress(c.output, `revoking suspect ${c.id} of ${p.job.key}`)
    const report = yield* revokeSuspect(p.job, c.id).pipe(
      Effect.mapError((e) => (e._tag === "LifecycleError" && e.message.includes("is not a suspect") ? new BadInput({ problems: [e.message] }) : e)),
      Effect.provide(p.layer),
    )
    yield* emit(c, "suspects revoke", report)
  }, reportingFailures),
).pipe(Command.withDescription("A suspect is ours after all: revoke it in GitLab (at its recorded target) and stop tracking it"))

const suspectsForget = Command.make(
  "forget",
  {
    state: stateFlag,
    key: Flag.String("key").pipe(Flag.withDescription("State key the suspect belongs to (gldt suspects shows it)")),
    id: suspectId,
    output,
    ...vaultFlags,
  },
  Effect.fn(function* (c) {
    const loc = yield* parseStateFlag(c.state)
    yield* forgetSuspect(c.key, c.id).pipe(
      Effect.mapError((e) => (e._tag === "LifecycleError" ? new BadInput({ problems: [e.message] }) : e)),
      Effect.provide(yield* stateLayer(loc, c)),
    )
    if (c.output === "json") printJson({ command: "suspects forget", key: c.key, ok: true, forgotten: c.id })
    else printText(`forgot suspect ${c.id} of ${c.key}; it is left as it is in GitLab`)
  }, reportingFailures),
).pipe(Command.withDescription("A suspect is not ours: stop tracking it; GitLab is not touched"))

export const suspects = Command.make(
  "suspects",
  { state: stateFlag, key, output, ...vaultFlags },
  Effect.fn(function* (c) {
    const loc = yield* parseStateFlag(c.state)
    const now = yield* Clock.currentTimeMillis
    const listing = yield* listSuspects(Option.getOrUndefined(c.key)).pipe(Effect.provide(yield* stateLayer(loc, c)))
    if (c.output === "json") {
      printJson({ command: "suspects", suspects: listing.map(({ key: k, suspect }) => ({ key: k, ...suspect })) })
    } else for (const line of describeSuspects(listing, now)) printText(line)
  }, reportingFailures),
).pipe(
  Command.withDescription(
    "List suspects: live tokens that look like ours after an interrupted create but that gldt cannot prove it made. Resolve each with `suspects revoke ID` or `suspects forget ID`",
  ),
  Command.withSubcommands([suspectsRevoke, suspectsForget]),
)
