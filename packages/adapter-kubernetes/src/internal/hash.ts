import { createHash } from "node:crypto"

/**
 * ESO's `esutils.ObjectHash`: SHA3-224 (hex) of Go's `fmt.Sprintf("%+v", object)`. Matching it keeps
 * Secrets written by gldt and by ESO interchangeable (no extra refresh when one takes over).
 */
export const esoObjectHash = (text: string): string => createHash("sha3-224").update(text, "utf8").digest("hex")

/** Go's `%+v` of a `map[string][]byte`: `map[a:[1 2] b:[3]]`, keys sorted. */
export const goByteMapString = (data: Readonly<Record<string, Uint8Array>>): string =>
  `map[${Object.keys(data)
    .sort()
    .map((k) => `${k}:[${Array.from(data[k]!).join(" ")}]`)
    .join(" ")}]`

/** The `reconcile.external-secrets.io/data-hash` of a Secret's data (values base64, as in the API). */
export const secretDataHash = (data: Readonly<Record<string, string>> | undefined): string =>
  esoObjectHash(goByteMapString(Object.fromEntries(Object.entries(data ?? {}).map(([k, v]) => [k, Buffer.from(v, "base64")]))))

export const sha256Hex = (text: string): string => createHash("sha256").update(text, "utf8").digest("hex")
