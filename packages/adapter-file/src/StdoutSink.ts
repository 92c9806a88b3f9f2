/** The `Sink` service printing the credential once, for `gldt generate --sink stdout`. */
import { SinkError } from "@gldt/core/Errors"
import { type Held, Sink } from "@gldt/core/Sink"
import { Effect, Layer } from "effect"
import { type Format, render } from "./Format.ts"
import { describeError } from "./internal/fs.ts"

export interface StdoutSinkOptions {
  readonly format: Format
  readonly registry?: string | undefined
  /** Where the text goes; default process.stdout (waits until it is flushed). */
  readonly write?: ((text: string) => void | Promise<void>) | undefined
}

const stdoutWrite = (text: string): Promise<void> =>
  new Promise((resolve, reject) => {
    process.stdout.write(text, (e) => (e ? reject(e) : resolve()))
  })

/** The sink service itself, for embedding without a Layer. */
export const make = (options: StdoutSinkOptions) =>
  Effect.sync(() => {
    const write = options.write ?? stdoutWrite
    return Sink.of({
      check: () => Effect.void,
      deliver: (key, credential) =>
        Effect.try({
          try: () => render(options.format, credential, { registry: options.registry }),
          catch: (e) => new SinkError({ key, message: `cannot write the credential as ${options.format}: ${describeError(e)}` }),
        }).pipe(
          Effect.flatMap((text) =>
            Effect.tryPromise({
              try: async () => {
                await write(text)
              },
              catch: (e) => new SinkError({ key, message: `cannot write to stdout: ${describeError(e)}` }),
            }),
          ),
        ),
      inspect: () => Effect.succeed<Held>({ _tag: "Unknown" }),
      remove: () => Effect.void,
    })
  })

/** `Sink` printing the credential; `check` always succeeds and `inspect` is `Unknown`. */
export const layer = (options: StdoutSinkOptions): Layer.Layer<Sink> => Layer.effect(Sink, make(options))
