/**
 * Minimal ASN.1 DER encoder: just enough to build X.509 v3 certificates
 * (see tls.ts). Every function returns the complete TLV encoding.
 */

const lengthBytes = (length: number): Buffer => {
  if (length < 0x80) return Buffer.from([length])
  const bytes: number[] = []
  let rest = length
  while (rest > 0) {
    bytes.unshift(rest & 0xff)
    rest = Math.floor(rest / 256)
  }
  return Buffer.from([0x80 | bytes.length, ...bytes])
}

export const tlv = (tag: number, content: Buffer): Buffer => Buffer.concat([Buffer.from([tag]), lengthBytes(content.length), content])

export const sequence = (...items: readonly Buffer[]): Buffer => tlv(0x30, Buffer.concat(items))

export const set = (...items: readonly Buffer[]): Buffer => tlv(0x31, Buffer.concat(items))

/** Context-specific constructed tag ([n] EXPLICIT). */
export const explicit = (n: number, inner: Buffer): Buffer => tlv(0xa0 | n, inner)

/** Context-specific primitive tag ([n] IMPLICIT over a primitive type). */
export const implicitPrimitive = (n: number, content: Buffer): Buffer => tlv(0x80 | n, content)

export const boolean = (value: boolean): Buffer => tlv(0x01, Buffer.from([value ? 0xff : 0x00]))

/** INTEGER from unsigned big-endian bytes (a leading zero is added when the high bit is set). */
export const unsignedInteger = (bytes: Buffer): Buffer => {
  let start = 0
  while (start < bytes.length - 1 && bytes[start] === 0) start++
  const trimmed = bytes.subarray(start)
  const needsPad = (trimmed[0] ?? 0) & 0x80
  return tlv(0x02, needsPad ? Buffer.concat([Buffer.from([0]), trimmed]) : trimmed)
}

export const smallInteger = (value: number): Buffer => unsignedInteger(Buffer.from([value]))

export const octetString = (content: Buffer): Buffer => tlv(0x04, content)

export const bitString = (content: Buffer, unusedBits = 0): Buffer => tlv(0x03, Buffer.concat([Buffer.from([unusedBits]), content]))

export const utf8String = (value: string): Buffer => tlv(0x0c, Buffer.from(value, "utf8"))

export const oid = (dotted: string): Buffer => {
  const parts = dotted.split(".").map((p) => Number.parseInt(p, 10))
  const [first = 0, second = 0, ...rest] = parts
  const out: number[] = [first * 40 + second]
  for (const part of rest) {
    const chunk: number[] = [part & 0x7f]
    let value = Math.floor(part / 128)
    while (value > 0) {
      chunk.unshift((value & 0x7f) | 0x80)
      value = Math.floor(value / 128)
    }
    out.push(...chunk)
  }
  return tlv(0x06, Buffer.from(out))
}

const pad2 = (n: number): string => String(n).padStart(2, "0")

/** UTCTime before 2050, GeneralizedTime from 2050 on (RFC 5280 §4.1.2.5). */
export const time = (date: Date): Buffer => {
  const year = date.getUTCFullYear()
  const rest = pad2(date.getUTCMonth() + 1) + pad2(date.getUTCDate()) + pad2(date.getUTCHours()) + pad2(date.getUTCMinutes()) + pad2(date.getUTCSeconds()) + "Z"
  if (year >= 1950 && year < 2050) return tlv(0x17, Buffer.from(pad2(year % 100) + rest, "ascii"))
  return tlv(0x18, Buffer.from(String(year).padStart(4, "0") + rest, "ascii"))
}
