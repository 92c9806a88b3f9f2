/** `gldt status`: what State holds, never values. */
import { FileState } from "@gldt/adapter-file"
import { State } from "@gldt/core"
import { Clock, Effect, Option } from "effect"
import { Command } from "effect/cli"
import { reportingFailures } from "../errors.ts"
import { parseStateFlag } from "../inputs.ts"
import { key, output, stateFlag } from "../options.ts"
import { describeRecord, printJson, printText } from "../output.ts"

export const status = Command.make(
  "status",
  {
    state: stateFlag,
    key,
    output,
  },
  Effect.fn(function* (c) {
    const loc = yield* parseStateFlag(c.state)
    const now = yield* Clock.currentTimeMillis
    const records = yield* Effect.gen(function* () {
      const state = yield* State
      const keys = Option.isSome(c.key) ? [c.key.value] : yield* state.list()
      const out = []
      for (const k of keys) {
        const v = yield* state.load(k)
        if (Option.isSome(v)) out.push(v.value.record)
      }
      return out
    }).pipe(Effect.provide(FileState.layer({ dir: loc.dir })))
    if (c.output === "json") printJson({ command: "status", records })
    else if (records.length === 0) printText(`no state in ${loc.dir}`)
    else for (const r of records) for (const line of describeRecord(r, now)) printText(line)
  }, reportingFailures),
).pipe(Command.withDescription("Show what State holds: token ids, usernames, ages, expiries, pending revocations, suspects (never values)"))
