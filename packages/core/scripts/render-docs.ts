/**
 * Rewrites the field tables in this package's README from the spec Schema (see fieldTables.ts).
 *   node scripts/render-docs.ts            rewrite README.md
 *   node scripts/render-docs.ts --check    exit 1 if README.md differs (CI)
 */
import * as fs from "node:fs"
import { fileURLToPath } from "node:url"
import { rewriteBlocks } from "./fieldTables.ts"

const README = fileURLToPath(new URL("../README.md", import.meta.url))

const current = fs.readFileSync(README, "utf8")
const next = rewriteBlocks(current)
if (current === next) {
  console.log("packages/core/README.md is up to date")
} else if (process.argv.includes("--check")) {
  console.error("packages/core/README.md is out of date; run: pnpm --filter @gldt/core render-docs")
  process.exit(1)
} else {
  fs.writeFileSync(README, next)
  console.log("wrote packages/core/README.md")
}
