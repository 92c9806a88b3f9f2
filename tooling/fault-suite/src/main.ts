#!/usr/bin/env node
/** Runs the fault suite from the shell: `gldt-fault-suite [--runs N] [--seed S] [--trace]`. */
import { parseArgs } from "node:util"
import { runMany, summarize } from "./suite.ts"

const { values } = parseArgs({
  options: { runs: { type: "string", default: "1000" }, seed: { type: "string" }, trace: { type: "boolean", default: false } },
})
const seeds = values.seed !== undefined ? [Number(values.seed)] : Array.from({ length: Number(values.runs) }, (_, i) => i + 1)
let failed = 0
const results = await runMany(seeds)
for (const r of results) {
  if (values.trace || r.violations.length > 0) console.log(r.trace.join("\n"))
  for (const v of r.violations) console.log(`VIOLATION ${v}`)
  if (r.violations.length > 0) failed++
}
console.log(`${summarize(results)}; failing runs ${failed}`)
process.exitCode = failed > 0 ? 1 : 0
