#!/usr/bin/env node
/** Entry point: runs the command and turns its outcome into the documented exit codes. */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as NodeServices from "@effect/platform-node/NodeServices"
import { Cause, Console, Effect, Exit, Layer, Logger, References } from "effect"
import { CliOutput } from "effect/cli"
import { run } from "./cli.ts"

const argv = process.argv.slice(2)
const jsonOutput = argv.some((a, i) => (a === "--output" || a === "-o") && argv[i + 1] === "json") || argv.includes("--output=json")
const isRun = argv[0] === "run"

// Logs go to stderr so stdout stays the command's answer; --log-level raises the detail.
const logging = Layer.mergeAll(
  Logger.layer([Logger.formatLogFmt.pipe(Logger.withConsoleError)]),
  Layer.succeed(References.MinimumLogLevel, "Warn"),
)

// A command line gldt cannot parse is bad input like any other: one line per problem on stderr and
// a pointer to the help, leaving stdout to the answer (or the JSON document).
const presenter = CliOutput.layerPresenter({
  present: (event) =>
    event._tag === "InvalidInvocation"
      ? Effect.gen(function* () {
          for (const e of event.errors) yield* Console.error(`gldt: error: ${e.message}`)
          yield* Console.error(`run \`${event.commandPath.join(" ")} --help\` for usage`)
        })
      : CliOutput.defaultPresenter.present(event),
})

const BAD_INPUT_TAGS = new Set([
  "BadInput",
  "UnrecognizedOption",
  "DuplicateOption",
  "MissingOption",
  "MissingArgument",
  "UnexpectedArgument",
  "InvalidValue",
  "UnknownSubcommand",
  "ValidationError",
  "UserError",
])

const exitCodeOf = (exit: Exit.Exit<unknown, unknown>): { code: number; lines: string[] } => {
  if (Exit.isSuccess(exit)) return { code: 0, lines: [] }
  const cause = exit.cause
  if (Cause.hasInterruptsOnly(cause)) return { code: isRun ? 0 : 130, lines: [] }
  const error = Cause.squash(cause) as { _tag?: string; message?: string; errors?: ReadonlyArray<unknown>; problems?: ReadonlyArray<string> }
  // effect/cli shows help both when asked and after a parse error (which it has already printed).
  if (error?._tag === "ShowHelp") {
    const problems = (error.errors ?? []).map((e) => String((e as { message?: unknown }).message ?? e))
    // The parse errors are already on stderr; scripts asking for JSON get them on stdout too.
    if (problems.length > 0 && jsonOutput) process.stdout.write(`${JSON.stringify({ ok: false, exitCode: 2, errors: problems })}\n`)
    return { code: problems.length > 0 ? 2 : 0, lines: [] }
  }
  // One line per problem: a problem's text from a lower layer (a JSON parse or schema error) may hold line breaks.
  const lines =
    error?._tag === "BadInput" && Array.isArray(error.problems)
      ? error.problems.map((p) => String(p).replace(/\s*\r?\n\s*/g, " ").trim())
      : String(error?.message ?? error).split("\n")
  // effect/cli already printed its own parse errors.
  if (error?._tag !== undefined && BAD_INPUT_TAGS.has(error._tag)) return { code: 2, lines: error._tag === "BadInput" ? lines : [] }
  return { code: 1, lines }
}

NodeRuntime.runMain(run(argv).pipe(Effect.provide(Layer.mergeAll(NodeServices.layer, logging, presenter))), {
  disableErrorReporting: true,
  teardown: (exit, onExit) => {
    const { code, lines } = exitCodeOf(exit)
    if (lines.length > 0) {
      if (jsonOutput) process.stdout.write(`${JSON.stringify({ ok: false, exitCode: code, errors: lines })}\n`)
      for (const line of lines) process.stderr.write(`gldt: error: ${line}\n`)
    }
    onExit(code)
  },
})
