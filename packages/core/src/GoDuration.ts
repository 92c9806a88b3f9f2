/**
 * Go-style durations ("1h", "90m", "1h30m", "250ms", "0s") as Kubernetes and ESO write them.
 * Effect's Duration parser reads "1 hour" style input, so manifests need this one.
 */
const UNITS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
}

const PART = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/y

/** Milliseconds for a Go duration string, or undefined when it is not one. */
export const parseGoDuration = (input: string): number | undefined => {
  const text = input.trim()
  if (text === "0") return 0
  if (text.length === 0 || text.startsWith("-")) return undefined
  let total = 0
  PART.lastIndex = 0
  let consumed = 0
  while (consumed < text.length) {
    PART.lastIndex = consumed
    const match = PART.exec(text)
    if (match === null) return undefined
    total += Number(match[1]) * UNITS[match[2]!]!
    consumed = PART.lastIndex
  }
  return Math.round(total)
}

/** Formats milliseconds the way Go prints a Duration ("1h0m0s", "2m30s", "500ms"). */
export const formatGoDuration = (ms: number): string => {
  if (ms === 0) return "0s"
  if (ms < 1000) return `${ms}ms`
  const h = Math.floor(ms / 3_600_000)
  const m = Math.floor((ms % 3_600_000) / 60_000)
  const s = (ms % 60_000) / 1000
  if (h > 0) return `${h}h${m}m${s}s`
  if (m > 0) return `${m}m${s}s`
  return `${s}s`
}
