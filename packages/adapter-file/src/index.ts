export * from "./FileSink.ts"
export * from "./FileState.ts"
export * from "./Format.ts"
