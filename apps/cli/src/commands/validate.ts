/** `gldt validate`: checks manifests offline. */
import { formatGoDuration } from "@gldt/core/GoDuration"
import { Clock, Effect } from "effect"
import { Command } from "effect/cli"
import { reportingFailures } from "../errors.ts"
import { loadManifests } from "../inputs.ts"
import { allowHttp, file, output } from "../options.ts"
import { printJson, printText } from "../output.ts"

export const validate = Command.make(
  "validate",
  { file, allowHttp, output },
  Effect.fn(function* (c) {
    const now = yield* Clock.currentTimeMillis
    const m = yield* loadManifests(c.file, { allowHttp: c.allowHttp, now })
    const g = m.generator
    if (c.output === "json") {
      printJson({ command: "validate", ok: true, generator: { kind: g.kind, name: g.name, target: g.spec.target, scopes: g.spec.scopes } })
    } else {
      printText(
        `${c.file}: ok — ${g.kind}/${g.name}: ${g.spec.target.kind} ${g.spec.target.id} at ${g.spec.url}, scopes ${g.spec.scopes.join(",")}${m.consumer ? `; ExternalSecret/${m.consumer.name} refreshes ${m.consumer.refreshIntervalMs === 0 ? "never" : `every ${formatGoDuration(m.consumer.refreshIntervalMs)}`}` : ""}`,
      )
    }
  }, reportingFailures),
).pipe(Command.withDescription("Check manifests and print every problem; contacts nothing, mints nothing"))
