/**
 * Logging for a go-plugin process: one hclog JSON line per entry on stderr, which the host
 * re-logs under the plugin's name. stdout carries the handshake line and nothing else.
 * Callers pass ids and messages only, never a token value.
 */
export type Level = "trace" | "debug" | "info" | "warn" | "error"

export type Fields = Record<string, string | number | boolean | undefined>

export const log = (level: Level, message: string, fields: Fields = {}): void => {
  const entry: Record<string, unknown> = { "@level": level, "@message": message, "@timestamp": new Date().toISOString(), "@module": "gldt" }
  for (const [k, v] of Object.entries(fields)) if (v !== undefined) entry[k] = v
  process.stderr.write(`${JSON.stringify(entry)}\n`)
}
