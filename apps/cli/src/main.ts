#!/usr/bin/env node
/** Entry point: runs the command and turns its outcome into the documented exit codes. */
import * as NodeChildProcessSpawner from "@effect/platform-node-shared/NodeChildProcessSpawner"
import * as NodeFileSystem from "@effect/platform-node-shared/NodeFileSystem"
import * as NodePath from "@effect/platform-node-shared/NodePath"
import * as NodeRuntime from "@effect/platform-node-shared/NodeRuntime"
import * as NodeStdio from "@effect/platform-node-shared/NodeStdio"
import * as NodeTerminal from "@effect/platform-node-shared/NodeTerminal"
import { Effect, Layer, Logger, References } from "effect"
import { run } from "./cli.ts"
import { exitCodeOf, presenter } from "./errors.ts"

// Logs go to stderr so stdout stays the command's answer; --log-level raises the detail.
const logging = Layer.mergeAll(Logger.layer([Logger.formatLogFmt.pipe(Logger.withConsoleError)]), Layer.succeed(References.MinimumLogLevel, "Warn"))

// What @effect/platform-node's NodeServices.layer holds, taken from platform-node-shared: the
// platform-node package would install its non-optional `redis` peer into every user's tree.
const nodeServices = Layer.provideMerge(
  NodeChildProcessSpawner.layer,
  Layer.mergeAll(NodeFileSystem.layer, NodePath.layer, NodeStdio.layer, NodeTerminal.layer),
)

NodeRuntime.runMain(run.pipe(Effect.provide(Layer.mergeAll(nodeServices, logging, presenter))), {
  disableErrorReporting: true,
  teardown: (exit, onExit) => onExit(exitCodeOf(exit)),
})
