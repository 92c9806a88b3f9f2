/**
 * Writes the CRDs built in src/Crds.ts (from @gldt/core's schemas) as YAML files.
 *   node scripts/gen-crds.ts            write them to apps/controller/crds/ (committed, applied by scripts)
 *   node scripts/gen-crds.ts --check    exit 1 if a committed file there differs (CI)
 *   node scripts/gen-crds.ts --package  write them to this package's crds/ (shipped in its tarball)
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { crdFiles } from "../src/Crds.ts"

export const CRD_DIR = fileURLToPath(new URL("../../../apps/controller/crds/", import.meta.url))
export const PACKAGE_CRD_DIR = fileURLToPath(new URL("../crds/", import.meta.url))

const check = process.argv.includes("--check")
const dir = process.argv.includes("--package") ? PACKAGE_CRD_DIR : CRD_DIR
let stale = 0
fs.mkdirSync(dir, { recursive: true })
for (const { file, content } of crdFiles()) {
  const target = path.join(dir, file)
  const current = fs.existsSync(target) ? fs.readFileSync(target, "utf8") : undefined
  if (current === content) continue
  if (check) {
    stale++
    console.error(`${path.relative(process.cwd(), target)} is out of date; run: pnpm --filter @gldt/adapter-kubernetes gen-crds`)
  } else {
    fs.writeFileSync(target, content)
    console.log(`wrote ${path.relative(process.cwd(), target)}`)
  }
}
if (stale > 0) process.exit(1)
