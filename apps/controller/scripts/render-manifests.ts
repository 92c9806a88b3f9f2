/**
 * Renders the plain manifests in apps/controller/deploy/ from the Helm chart with the real `helm`
 * (built from its Go module by @gldt/testenv; helm is not needed on the machine).
 *   node apps/controller/scripts/render-manifests.ts          write the files
 *   node apps/controller/scripts/render-manifests.ts --check  exit 1 if a committed file differs
 */
import { execFileSync } from "node:child_process"
import { existsSync, readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { ensureTool } from "@gldt/testenv"

export const APP_DIR = fileURLToPath(new URL("../", import.meta.url))
export const CHART_DIR = join(APP_DIR, "chart")

/** The committed renderings: file → extra `helm template` arguments. */
export const RENDERINGS: ReadonlyArray<{ readonly file: string; readonly args: ReadonlyArray<string>; readonly doc: string }> = [
  { file: "gldt-controller.yaml", args: [], doc: "one replica, no leader election" },
  {
    file: "gldt-controller-ha.yaml",
    args: ["--set", "replicaCount=2", "--set", "leaderElection.enabled=true"],
    doc: "two replicas with leader election",
  },
]

export const render = (helm: string, args: ReadonlyArray<string>): string => {
  const out = execFileSync(helm, ["template", "gldt", CHART_DIR, "--namespace", "gldt-system", ...args], { encoding: "utf8" })
  return `# Rendered from apps/controller/chart by apps/controller/scripts/render-manifests.ts (helm template gldt --namespace gldt-system${args.length > 0 ? ` ${args.join(" ")}` : ""}).\n# Do not edit: change the chart and re-render. Install the CRDs first: kubectl apply --server-side -f apps/controller/crds/\n${out}`
}

const main = async () => {
  const check = process.argv.includes("--check")
  const {
    info: { path: helm },
  } = await ensureTool("helm")
  let stale = 0
  for (const r of RENDERINGS) {
    const target = join(APP_DIR, "deploy", r.file)
    const content = render(helm, r.args)
    const current = existsSync(target) ? readFileSync(target, "utf8") : undefined
    if (current === content) continue
    if (check) {
      stale++
      console.error(`apps/controller/deploy/${r.file} is out of date; run: node apps/controller/scripts/render-manifests.ts`)
    } else {
      writeFileSync(target, content)
      console.log(`wrote apps/controller/deploy/${r.file}`)
    }
  }
  if (stale > 0) process.exit(1)
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main()
