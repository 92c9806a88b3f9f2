/**
 * Key material for the control plane: a CA and a 127.0.0.1/localhost serving certificate made
 * with the system's `openssl`, and an RSA service-account signing key pair made with node:crypto.
 */
import { execFile } from "node:child_process"
import { generateKeyPairSync } from "node:crypto"
import { existsSync } from "node:fs"
import { readFile, writeFile } from "node:fs/promises"
import { delimiter, join } from "node:path"

/** `openssl` on PATH (or `$GLDT_OPENSSL`; `none` means: do without), if any. */
export const findOpenssl = (): string | undefined => {
  if (process.env.GLDT_OPENSSL === "none") return undefined
  if (process.env.GLDT_OPENSSL) return process.env.GLDT_OPENSSL
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    if (dir && existsSync(join(dir, "openssl"))) return join(dir, "openssl")
  }
  return undefined
}

const openssl = (bin: string, args: ReadonlyArray<string>): Promise<void> =>
  new Promise((ok, ko) => {
    execFile(bin, args, (err, _stdout, stderr) => {
      if (err) ko(new Error(`openssl ${args.join(" ")} failed: ${stderr || err.message}`))
      else ok()
    })
  })

export interface Pki {
  readonly caCert: string
  readonly caKey: string
  readonly servingCert: string
  readonly servingKey: string
  /** PEM of the CA, for kubeconfigs and TLS clients. */
  readonly caPem: string
}

/** SANs of the serving certificate: loopback plus the in-cluster names of the `kubernetes` Service. */
export const SERVING_SANS = ["IP:127.0.0.1", "DNS:localhost", "DNS:kubernetes", "DNS:kubernetes.default", "DNS:kubernetes.default.svc", "IP:10.0.0.1"] as const

/** Create a P-256 CA and a serving certificate signed by it in `dir`. */
export const makePki = async (bin: string, dir: string): Promise<Pki> => {
  const p = (f: string) => join(dir, f)
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
  await openssl(bin, [
    "req",
    "-x509",
    ...ec,
    "-keyout",
    p("ca.key"),
    "-out",
    p("ca.crt"),
    "-days",
    "3650",
    "-subj",
    "/CN=gldt-testenv-ca",
    "-addext",
    "basicConstraints=critical,CA:TRUE",
    "-addext",
    "keyUsage=critical,keyCertSign,cRLSign,digitalSignature",
  ])
  await openssl(bin, ["req", "-new", ...ec, "-keyout", p("apiserver.key"), "-out", p("apiserver.csr"), "-subj", "/CN=kube-apiserver"])
  await writeFile(
    p("apiserver.ext"),
    [
      `subjectAltName=${SERVING_SANS.join(",")}`,
      "basicConstraints=critical,CA:FALSE",
      "keyUsage=critical,digitalSignature,keyEncipherment",
      "extendedKeyUsage=serverAuth",
      "",
    ].join("\n"),
  )
  await openssl(bin, [
    "x509",
    "-req",
    "-in",
    p("apiserver.csr"),
    "-CA",
    p("ca.crt"),
    "-CAkey",
    p("ca.key"),
    "-CAcreateserial",
    "-out",
    p("apiserver.crt"),
    "-days",
    "365",
    "-extfile",
    p("apiserver.ext"),
  ])
  return {
    caCert: p("ca.crt"),
    caKey: p("ca.key"),
    servingCert: p("apiserver.crt"),
    servingKey: p("apiserver.key"),
    caPem: await readFile(p("ca.crt"), "utf8"),
  }
}

/** RSA-2048 key pair for service-account tokens: PKCS#8 private key, SPKI public key. */
export const makeServiceAccountKeys = async (dir: string): Promise<{ readonly privateKey: string; readonly publicKey: string }> => {
  const { privateKey, publicKey } = generateKeyPairSync("rsa", {
    modulusLength: 2048,
    privateKeyEncoding: { type: "pkcs8", format: "pem" },
    publicKeyEncoding: { type: "spki", format: "pem" },
  })
  const out = { privateKey: join(dir, "sa.key"), publicKey: join(dir, "sa.pub") }
  await writeFile(out.privateKey, privateKey, { mode: 0o600 })
  await writeFile(out.publicKey, publicKey)
  return out
}
