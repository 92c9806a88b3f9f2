/**
 * Logging for a go-plugin process: one hclog JSON line per entry on stderr, which the host
 * re-logs under the plugin's name. stdout carries the handshake line and nothing else.
 * Callers pass ids and messages only, never a token value.
 */
export type Level = "trace" | "debug" | "info" | "warn" | "error"

export type Fields = Record<string, string | number | boolean | undefined>

/** hclog's timestamp layout has exactly six fractional digits; go-plugin drops other lines to debug. */
export const hclogTime = (d: Date): string => d.toISOString().replace(/\.(\d{3})Z$/, ".$1000Z")

export const log = (level: Level, message: string, fields: Fields = {}, at: Date = new Date()): void => {
  const entry: Record<string, unknown> = { "@level": level, "@message": message, "@timestamp": hclogTime(at), "@module": "gldt" }
  for (const [k, v] of Object.entries(fields)) if (v !== undefined) entry[k] = v
  process.stderr.write(`${JSON.stringify(entry)}\n`)
}
