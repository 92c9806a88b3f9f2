/** `gldt status`: what State holds, never values. */
import { State } from "@gldt/core/State"
import { Clock, Effect, Option } from "effect"
import { Command } from "effect/cli"
import { stateLayer, vaultFlags } from "../backends.ts"
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
    ...vaultFlags,
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
    }).pipe(Effect.provide(yield* stateLayer(loc, c)))
    if (c.output === "json") printJson({ command: "status", records })
    else if (records.length === 0) printText(`no state in ${loc.kind === "file" ? loc.dir : `vault:${loc.mount}/${loc.prefix}`}`)
    else for (const r of records) for (const line of describeRecord(r, now)) printText(line)
  }, reportingFailures),
).pipe(Command.withDescription("Show what State holds: token ids, usernames, ages, expiries, pending revocations, suspects (never values)"))
