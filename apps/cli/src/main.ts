#!/usr/bin/env node
/** Entry point: runs the command and turns its outcome into the documented exit codes. */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as NodeServices from "@effect/platform-node/NodeServices"
import { Effect, Layer, Logger, References } from "effect"
import { run } from "./cli.ts"
import { exitCodeOf, presenter } from "./errors.ts"

// Logs go to stderr so stdout stays the command's answer; --log-level raises the detail.
const logging = Layer.mergeAll(
  Logger.layer([Logger.formatLogFmt.pipe(Logger.withConsoleError)]),
  Layer.succeed(References.MinimumLogLevel, "Warn"),
)

NodeRuntime.runMain(run.pipe(Effect.provide(Layer.mergeAll(NodeServices.layer, logging, presenter))), {
  disableErrorReporting: true,
  teardown: (exit, onExit) => onExit(exitCodeOf(exit)),
})
