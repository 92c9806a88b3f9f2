export { BACKSTOP_MS, Engine, type EngineOptions, SECRET_TYPE, type TidyReport } from "./engine/Engine.ts"
export { type EngineConfig, parseConfig, parseRole, type Role } from "./engine/Fields.ts"
export { makePluginState, pluginStateLayer } from "./engine/PluginState.ts"
export { LAUNCHER_NAME, type Launcher, type LauncherOptions, writeLauncher } from "./launcher/Launcher.ts"
