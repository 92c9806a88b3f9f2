/**
 * @gldt/adapter-file: `@gldt/core`'s State and Sink services on the local file system.
 * Each module has `layer(options)` and `make(options)`.
 */
export * as FileSink from "./FileSink.ts"
export * as FileState from "./FileState.ts"
export * as Format from "./Format.ts"
export * as StdoutSink from "./StdoutSink.ts"
