#!/usr/bin/env node
/** Runs the fault suite from the shell: `gldt-fault-suite [--runs N] [--seed S] [--trace]`. */
import { parseArgs } from "node:util"
import { runMany } from "./suite.ts"

const { values } = parseArgs({
  options: { runs: { type: "string", default: "1000" }, seed: { type: "string" }, trace: { type: "boolean", default: false } },
})
const seeds = values.seed !== undefined ? [Number(values.seed)] : Array.from({ length: Number(values.runs) }, (_, i) => i + 1)
let failed = 0
const totals = { runs: 0, faults: 0, crashes: 0, leaked: 0, suspects: 0 }
for (const r of await runMany(seeds)) {
  totals.runs++
  totals.faults += r.faults
  totals.crashes += r.crashes
  totals.leaked += r.leaked
  totals.suspects += r.suspects
  if (values.trace || r.violations.length > 0) console.log(r.trace.join("\n"))
  for (const v of r.violations) console.log(`VIOLATION ${v}`)
  if (r.violations.length > 0) failed++
}
console.log(`runs ${totals.runs}, faults ${totals.faults}, crashes ${totals.crashes}, suspects ${totals.suspects}, leaked ${totals.leaked}, failing runs ${failed}`)
process.exitCode = failed > 0 ? 1 : 0
