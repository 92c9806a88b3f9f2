/**
 * Generates a throw-away certificate authority and a server certificate for
 * 127.0.0.1, ::1 and localhost, signed by that CA. Uses only node:crypto
 * (ECDSA P-256 keys, SHA-256 signatures) plus the DER encoder in der.ts.
 */
import { createHash, createPublicKey, generateKeyPairSync, type KeyObject, randomBytes, sign, X509Certificate } from "node:crypto"
import { bitString, boolean, explicit, implicitPrimitive, octetString, oid, sequence, set, smallInteger, time, unsignedInteger, utf8String } from "./der.ts"

export interface TlsMaterial {
  /** PEM of the CA certificate that signed `certPem`. Give it to clients as `ca`. */
  readonly caPem: string
  /** PEM of the server certificate (SAN: localhost, 127.0.0.1, ::1). */
  readonly certPem: string
  /** PEM (PKCS#8) of the server private key. */
  readonly keyPem: string
}

const OID_ECDSA_SHA256 = "1.2.840.10045.4.3.2"
const OID_COMMON_NAME = "2.5.4.3"
const OID_ORGANIZATION = "2.5.4.10"
const OID_BASIC_CONSTRAINTS = "2.5.29.19"
const OID_KEY_USAGE = "2.5.29.15"
const OID_EXT_KEY_USAGE = "2.5.29.37"
const OID_SUBJECT_ALT_NAME = "2.5.29.17"
const OID_SUBJECT_KEY_ID = "2.5.29.14"
const OID_AUTHORITY_KEY_ID = "2.5.29.35"
const OID_SERVER_AUTH = "1.3.6.1.5.5.7.3.1"

const DAY_MS = 86_400_000

const name = (commonName: string): Buffer =>
  sequence(set(sequence(oid(OID_ORGANIZATION), utf8String("gitlab-sim"))), set(sequence(oid(OID_COMMON_NAME), utf8String(commonName))))

const extension = (id: string, critical: boolean, value: Buffer): Buffer =>
  critical ? sequence(oid(id), boolean(true), octetString(value)) : sequence(oid(id), octetString(value))

/** SHA-1 of the subjectPublicKey BIT STRING contents (RFC 5280 §4.2.1.2, method 1). */
const keyId = (spki: Buffer): Buffer => {
  // For an EC P-256 SPKI the public key bits are the trailing 65 bytes.
  return createHash("sha1")
    .update(spki.subarray(spki.length - 65))
    .digest()
}

const serial = (): Buffer => {
  const bytes = randomBytes(16)
  bytes[0] = ((bytes[0] ?? 1) & 0x7f) | 0x01
  return unsignedInteger(bytes)
}

interface CertSpec {
  readonly subject: Buffer
  readonly issuer: Buffer
  readonly subjectKey: KeyObject
  readonly signingKey: KeyObject
  readonly extensions: readonly Buffer[]
  readonly notBefore: Date
  readonly notAfter: Date
}

const buildCertificate = (spec: CertSpec): Buffer => {
  const algorithm = sequence(oid(OID_ECDSA_SHA256))
  const spki = spec.subjectKey.export({ type: "spki", format: "der" })
  const tbs = sequence(
    explicit(0, smallInteger(2)),
    serial(),
    algorithm,
    spec.issuer,
    sequence(time(spec.notBefore), time(spec.notAfter)),
    spec.subject,
    spki,
    explicit(3, sequence(...spec.extensions)),
  )
  const signature = sign("sha256", tbs, spec.signingKey)
  return sequence(tbs, algorithm, bitString(signature))
}

const toPem = (label: string, der: Buffer): string => {
  const b64 = der.toString("base64")
  const lines: string[] = []
  for (let i = 0; i < b64.length; i += 64) lines.push(b64.slice(i, i + 64))
  return `-----BEGIN ${label}-----\n${lines.join("\n")}\n-----END ${label}-----\n`
}

const ipv4 = (address: string): Buffer => Buffer.from(address.split(".").map((p) => Number.parseInt(p, 10)))

/**
 * Creates a new CA and a server certificate valid from one day ago for
 * `validDays` days (default 365). Extra DNS names / IPv4 addresses may be
 * added to the server certificate's subjectAltName.
 */
export const generateTlsMaterial = (
  options: { readonly dnsNames?: readonly string[]; readonly ipAddresses?: readonly string[]; readonly validDays?: number } = {},
): TlsMaterial => {
  const now = Date.now()
  const notBefore = new Date(now - DAY_MS)
  const notAfter = new Date(now + (options.validDays ?? 365) * DAY_MS)

  const ca = generateKeyPairSync("ec", { namedCurve: "prime256v1" })
  const server = generateKeyPairSync("ec", { namedCurve: "prime256v1" })
  const caSpki = ca.publicKey.export({ type: "spki", format: "der" })
  const serverSpki = server.publicKey.export({ type: "spki", format: "der" })
  const caKeyId = keyId(caSpki)
  const caName = name("gitlab-sim test CA")

  const caCert = buildCertificate({
    subject: caName,
    issuer: caName,
    subjectKey: ca.publicKey,
    signingKey: ca.privateKey,
    notBefore,
    notAfter: new Date(notAfter.getTime() + DAY_MS),
    extensions: [
      extension(OID_BASIC_CONSTRAINTS, true, sequence(boolean(true))),
      // keyCertSign (bit 5) + cRLSign (bit 6): 0b0000_0110, 1 unused bit.
      extension(OID_KEY_USAGE, true, bitString(Buffer.from([0x06]), 1)),
      extension(OID_SUBJECT_KEY_ID, false, octetString(caKeyId)),
    ],
  })

  const dnsNames = ["localhost", ...(options.dnsNames ?? [])]
  const ips = ["127.0.0.1", ...(options.ipAddresses ?? [])]
  const altNames = [
    ...dnsNames.map((dns) => implicitPrimitive(2, Buffer.from(dns, "ascii"))),
    ...ips.map((ip) => implicitPrimitive(7, ipv4(ip))),
    // ::1
    implicitPrimitive(7, Buffer.from([...new Array<number>(15).fill(0), 1])),
  ]
  const serverCert = buildCertificate({
    subject: name("localhost"),
    issuer: caName,
    subjectKey: server.publicKey,
    signingKey: ca.privateKey,
    notBefore,
    notAfter,
    extensions: [
      extension(OID_BASIC_CONSTRAINTS, true, sequence()),
      // digitalSignature (bit 0): 0b1000_0000, 7 unused bits.
      extension(OID_KEY_USAGE, true, bitString(Buffer.from([0x80]), 7)),
      extension(OID_EXT_KEY_USAGE, false, sequence(oid(OID_SERVER_AUTH))),
      extension(OID_SUBJECT_ALT_NAME, false, sequence(...altNames)),
      extension(OID_SUBJECT_KEY_ID, false, octetString(keyId(serverSpki))),
      extension(OID_AUTHORITY_KEY_ID, false, sequence(implicitPrimitive(0, caKeyId))),
    ],
  })

  const material: TlsMaterial = {
    caPem: toPem("CERTIFICATE", caCert),
    certPem: toPem("CERTIFICATE", serverCert),
    keyPem: server.privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
  }
  // Self-check: fail loudly here rather than with an opaque TLS handshake error.
  const parsedCa = new X509Certificate(material.caPem)
  const parsedServer = new X509Certificate(material.certPem)
  if (!parsedServer.verify(createPublicKey(material.caPem)) || !parsedServer.checkIssued(parsedCa)) {
    throw new Error("gitlab-sim: generated server certificate does not verify against its CA")
  }
  return material
}
