/**
 * How a failure reaches the user: the command errors, their exit codes (0 done, 1 failure, 2 bad
 * input, 130 interrupted), one `gldt: error:` line per problem on stderr and, with `-o json`, one
 * `{"ok":false,…}` document on stdout.
 */
import { Cause, Console, Effect, Exit, Schema, Stdio } from "effect"
import { CliOutput } from "effect/cli"
import type { OutputMode } from "./output.ts"

export { BadInput } from "./inputs.ts"

/** An earlier create's outcome is unknown; nothing was minted. Exit code 1. */
export class CreateUnsettled extends Schema.TaggedError<CreateUnsettled>()("CreateUnsettled", {}) {
  override get message() {
    return "not rotated: an earlier create's outcome is still unknown; run `gldt recover` (it waits for GitLab to settle) and retry"
  }
}

/** Some revocation failed; the tokens stay tracked. Exit code 1. */
export class RevokeFailed extends Schema.TaggedError<RevokeFailed>()("RevokeFailed", { count: Schema.Number }) {
  override get message() {
    return `${this.count} revocation(s) failed; the tokens stay tracked and will be retried`
  }
}

/** The access token may not manage deploy tokens on the target. Exit code 1. */
export class PreflightFailed extends Schema.TaggedError<PreflightFailed>()("PreflightFailed", { reason: Schema.String }) {
  override get message() {
    return `preflight failed: ${this.reason}`
  }
}

// Our bad input, and every effect/cli parse error: nothing was minted. Exit code 2.
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

type Squashed = { _tag?: string; message?: string; errors?: ReadonlyArray<unknown>; problems?: ReadonlyArray<string> }

/** The exit code of a failed command and the lines that say why. */
export const describeFailure = (error: unknown): { readonly code: number; readonly lines: ReadonlyArray<string> } => {
  const e = error as Squashed | undefined
  // One line per problem: a problem's text from a lower layer (a JSON parse or schema error) may hold line breaks.
  const lines =
    e?._tag === "BadInput" && Array.isArray(e.problems)
      ? e.problems.map((p) =>
          String(p)
            .replace(/\s*\r?\n\s*/g, " ")
            .trim(),
        )
      : String(e?.message ?? e).split("\n")
  if (e?._tag === undefined || !BAD_INPUT_TAGS.has(e._tag)) return { code: 1, lines }
  // effect/cli has already printed its own errors.
  return { code: 2, lines: e._tag === "BadInput" ? lines : [] }
}

const printFailure = (mode: OutputMode, code: number, lines: ReadonlyArray<string>) => {
  if (lines.length === 0) return
  if (mode === "json") process.stdout.write(`${JSON.stringify({ ok: false, exitCode: code, errors: lines })}\n`)
  for (const line of lines) process.stderr.write(`gldt: error: ${line}\n`)
}

/**
 * The last step of every command's handler (`Effect.fn(body, reportingFailures)`): whatever makes it
 * fail is reported in the output mode its flags asked for.
 */
export const reportingFailures = <A, E, R>(self: Effect.Effect<A, E, R>, flags: { readonly output: OutputMode }): Effect.Effect<A, E, R> =>
  Effect.tapCause(self, (cause) =>
    Effect.sync(() => {
      if (Cause.hasInterruptsOnly(cause)) return
      const { code, lines } = describeFailure(Cause.squash(cause))
      printFailure(flags.output, code, lines)
    }),
  )

// The one question parsing cannot answer when it failed: did the command line ask for JSON?
// effect/cli hands over no flag values then, so the raw arguments are looked at for `-o json`.
const asksForJson = (args: ReadonlyArray<string>) =>
  args.some((a, i) => (a === "--output" || a === "-o") && args[i + 1] === "json") || args.includes("--output=json")

/**
 * A command line effect/cli could not parse: it has printed each problem (see `presenter`); scripts
 * that asked for JSON get them as one document on stdout too.
 */
export const reportingParseErrors = <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R | Stdio.Stdio> =>
  Effect.tapError(self, (error) =>
    Effect.gen(function* () {
      const e = error as Squashed
      if (e?._tag !== "ShowHelp" || (e.errors ?? []).length === 0) return
      const args = yield* Stdio.Stdio.use(({ args }) => args)
      if (!asksForJson(args)) return
      const problems = (e.errors ?? []).map((p) => String((p as { message?: unknown }).message ?? p))
      process.stdout.write(`${JSON.stringify({ ok: false, exitCode: 2, errors: problems })}\n`)
    }),
  )

// A command line gldt cannot parse is bad input like any other: one line per problem on stderr and
// a pointer to the help, leaving stdout to the answer (or the JSON document).
export const presenter = CliOutput.layerPresenter({
  present: (event) =>
    event._tag === "InvalidInvocation"
      ? Effect.gen(function* () {
          for (const e of event.errors) yield* Console.error(`gldt: error: ${e.message}`)
          yield* Console.error(`run \`${event.commandPath.join(" ")} --help\` for usage`)
        })
      : CliOutput.defaultPresenter.present(event),
})

let interruptedExitCode = 130

/** `gldt run` is meant to be stopped by SIGTERM or Ctrl-C: for it an interrupt is a clean end, exit 0. */
export const interruptMeansDone = Effect.sync(() => {
  interruptedExitCode = 0
})

/**
 * The process's exit code. Failures were already reported where they happened (by the command's
 * `reportingFailures`, or by effect/cli and `reportingParseErrors` for a command line it could not parse).
 */
export const exitCodeOf = (exit: Exit.Exit<unknown, unknown>): number => {
  if (Exit.isSuccess(exit)) return 0
  if (Cause.hasInterruptsOnly(exit.cause)) return interruptedExitCode
  const error = Cause.squash(exit.cause) as Squashed | undefined
  // effect/cli shows help both when asked (exit 0) and after a parse error (exit 2).
  if (error?._tag === "ShowHelp") return (error.errors ?? []).length > 0 ? 2 : 0
  return describeFailure(error).code
}
