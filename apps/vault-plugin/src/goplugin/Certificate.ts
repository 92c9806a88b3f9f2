/**
 * The plugin's throw-away TLS identity for go-plugin's automatic mutual TLS: a self-signed ECDSA
 * certificate shaped like the one the host makes for itself (CN and SAN `localhost`, a CA, usable
 * for both server and client authentication). It is the server certificate of the plugin's gRPC
 * listener and the client certificate of every connection the plugin dials back through the broker.
 */
// @peculiar/x509 resolves its ASN.1 codecs through tsyringe, which needs the Reflect metadata API.
import "reflect-metadata"
import { randomBytes, webcrypto } from "node:crypto"
import * as x509 from "@peculiar/x509"

export interface PluginCertificate {
  readonly certPem: string
  readonly keyPem: string
  /** DER of the certificate, base64 without padding: the 6th field of the handshake line. */
  readonly derBase64: string
}

const pem = (label: string, der: ArrayBuffer): string => {
  const b64 = Buffer.from(der)
    .toString("base64")
    .replace(/(.{64})/g, "$1\n")
    .replace(/\n$/, "")
  return `-----BEGIN ${label}-----\n${b64}\n-----END ${label}-----\n`
}

export const makeCertificate = async (): Promise<PluginCertificate> => {
  type Params = Parameters<typeof x509.X509CertificateGenerator.createSelfSigned>
  const algorithm = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" }
  const keys = (await webcrypto.subtle.generateKey(algorithm, true, ["sign", "verify"])) as webcrypto.CryptoKeyPair
  const now = Date.now()
  const cert = await x509.X509CertificateGenerator.createSelfSigned(
    {
      // A positive serial: clear the top bit.
      serialNumber: (randomBytes(16)[0]! & 0x7f).toString(16).padStart(2, "0") + randomBytes(15).toString("hex"),
      name: "CN=localhost, O=gldt",
      notBefore: new Date(now - 30_000),
      notAfter: new Date(now + 30 * 365 * 24 * 3_600_000),
      signingAlgorithm: algorithm,
      keys: keys as unknown as Params[0]["keys"],
      extensions: [
        new x509.BasicConstraintsExtension(true, undefined, true),
        new x509.KeyUsagesExtension(
          x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment | x509.KeyUsageFlags.keyAgreement | x509.KeyUsageFlags.keyCertSign,
          true,
        ),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
        new x509.SubjectAlternativeNameExtension([{ type: "dns", value: "localhost" }]),
      ],
    },
    webcrypto as unknown as Params[1],
  )
  const pkcs8 = await webcrypto.subtle.exportKey("pkcs8", keys.privateKey)
  return {
    certPem: cert.toString("pem"),
    keyPem: pem("PRIVATE KEY", pkcs8),
    derBase64: Buffer.from(cert.rawData).toString("base64").replace(/=+$/, ""),
  }
}
