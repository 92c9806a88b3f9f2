/** Runs `./gldt-controller --version` once: it rebuilds the bundle if a source is newer, so no test pays for that. */
import { execFileSync } from "node:child_process"
import { CONTROLLER } from "./support.ts"

export default function setup() {
  execFileSync(CONTROLLER, ["--version"], { stdio: ["ignore", "ignore", "inherit"], timeout: 120_000 })
}
