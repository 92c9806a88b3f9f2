#!/usr/bin/env node
/** Entry point of gldt-controller: flags, logging, then the controller until SIGTERM/SIGINT. */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Cause, Effect, Exit, Layer, Logger, References } from "effect"
import { run } from "./Controller.ts"
import { FlagError, helpText, parseFlags } from "./Flags.ts"
import { version } from "./version.ts"

let flags: ReturnType<typeof parseFlags>
try {
  flags = parseFlags(process.argv.slice(2))
} catch (e) {
  if (!(e instanceof FlagError)) throw e
  process.stderr.write(`gldt-controller: error: ${e.message}\n`)
  process.exit(2)
}
if (flags.help) {
  process.stdout.write(helpText())
  process.exit(0)
}
if (flags.version) {
  process.stdout.write(`gldt-controller ${version}\n`)
  process.exit(0)
}

const level = flags.logLevel === "debug" ? "Debug" : flags.logLevel === "warn" ? "Warn" : flags.logLevel === "error" ? "Error" : "Info"
const logging = Layer.mergeAll(
  Logger.layer([(flags.logFormat === "json" ? Logger.formatJson : Logger.formatLogFmt).pipe(Logger.withConsoleError)]),
  Layer.succeed(References.MinimumLogLevel, level),
)

NodeRuntime.runMain(run(flags).pipe(Effect.provide(logging)), {
  disableErrorReporting: true,
  teardown: (exit, onExit) => {
    if (Exit.isSuccess(exit) || Cause.hasInterruptsOnly(exit.cause)) return onExit(0)
    const error = Cause.squash(exit.cause) as { message?: unknown }
    process.stderr.write(`${JSON.stringify({ level: "FATAL", message: String(error?.message ?? error), timestamp: new Date().toISOString() })}\n`)
    onExit(1)
  },
})
