/**
 * `pnpm vault-plugin:launcher DIR [NAME]`: writes the executable launcher into DIR (Vault's plugin
 * directory) and prints `sha256=<hex>` on stdout, the value to register in Vault's catalog.
 */
import { LAUNCHER_NAME, writeLauncher } from "./Launcher.ts"

const usage = `usage: pnpm vault-plugin:launcher DIR [NAME]

Writes DIR/${LAUNCHER_NAME} (or DIR/NAME), an executable that runs the gldt Vault secrets engine
under this repository's pinned Node, and prints on stdout:

  sha256=<hex>     the value for sys/plugins/catalog/secret/gldt
  command=<name>   the catalog command (the file name inside DIR)
  path=<file>      where it was written

Then:
  vault plugin register -sha256=<hex> -command=${LAUNCHER_NAME} secret gldt
  vault secrets enable -path=gldt gldt
`

const args = process.argv.slice(2)
if (args.length === 0 || args.includes("--help") || args.includes("-h")) {
  process.stdout.write(usage)
  process.exit(args.length === 0 ? 2 : 0)
}
if (args.length > 2) {
  process.stderr.write(`vault-plugin:launcher: expected DIR [NAME], got ${args.length} arguments\n\n${usage}`)
  process.exit(2)
}
try {
  const launcher = writeLauncher({ dir: args[0]!, ...(args[1] ? { name: args[1] } : {}) })
  process.stdout.write(`sha256=${launcher.sha256}\ncommand=${launcher.command}\npath=${launcher.path}\n`)
} catch (e) {
  process.stderr.write(`vault-plugin:launcher: ${e instanceof Error ? e.message : String(e)}\n`)
  process.exit(1)
}
