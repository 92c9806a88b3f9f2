/** File names for State keys: readable, reversible, and safe on every file system. */
import { sha256 } from "./fs.ts"

/** Longest escaped key used verbatim as a file name; longer keys are shortened and hashed. */
const MAX_NAME = 200

const LITERAL = /^[a-z0-9_-]$/

/**
 * The file-name stem for a key: bytes other than `[a-z0-9_-]` become `%XX` (upper-case hex), so
 * names are readable for usual keys, reversible, free of `.` and `/`, and distinct even on
 * case-insensitive file systems. A stem over 200 characters (or an empty one) is cut and suffixed with
 * `~` and 16 hex digits of the key's SHA-256 (`~` never occurs in an escaped key).
 */
export const fileStem = (key: string): string => {
  let out = ""
  for (const byte of new TextEncoder().encode(key)) {
    const ch = String.fromCharCode(byte)
    out += byte < 0x80 && LITERAL.test(ch) ? ch : `%${byte.toString(16).toUpperCase().padStart(2, "0")}`
  }
  if (out.length > 0 && out.length <= MAX_NAME) return out
  // Do not cut an escape in half.
  const cut = out.slice(0, 180).replace(/%[0-9A-F]?$/, "")
  return `${cut}~${sha256(key).slice(0, 16)}`
}

/** The key of a verbatim stem, or undefined for a shortened (hashed) one. */
export const keyOfStem = (stem: string): string | undefined => {
  if (stem.includes("~")) return undefined
  const bytes: number[] = []
  for (let i = 0; i < stem.length; i++) {
    if (stem[i] === "%") {
      bytes.push(Number.parseInt(stem.slice(i + 1, i + 3), 16))
      i += 2
    } else {
      bytes.push(stem.charCodeAt(i))
    }
  }
  return new TextDecoder("utf-8", { fatal: true }).decode(new Uint8Array(bytes))
}
