/**
 * The controller's command line: every flag has an environment variable and a default, and
 * `--help` lists all three. A flag given on the command line wins over its variable.
 */
import { readFileSync } from "node:fs"
import { parseArgs } from "node:util"

export type LogFormat = "json" | "text"

export interface Flags {
  /** Explicit kubeconfig; undefined = $KUBECONFIG, then in-cluster, then ~/.kube/config. */
  readonly kubeconfig: string | undefined
  /** Namespaces to serve; empty = all. */
  readonly namespaces: ReadonlyArray<string>
  readonly leaderElect: boolean
  readonly leaderElectionNamespace: string | undefined
  readonly leaderElectionId: string
  readonly leaseDurationMs: number
  readonly renewDeadlineMs: number
  readonly retryPeriodMs: number
  /** `host:port`, `:port`, or undefined when turned off with `0`. */
  readonly metricsBindAddress: string | undefined
  readonly healthProbeBindAddress: string | undefined
  /** PEM of extra CAs for every GitLab instance. */
  readonly gitlabCaPem: string | undefined
  readonly gitlabCaFile: string | undefined
  readonly allowHttp: boolean
  readonly concurrency: number
  readonly logFormat: LogFormat
  readonly logLevel: "debug" | "info" | "warn" | "error"
  /** How often the live token of each ExternalSecret is checked against GitLab's list (0 = never). */
  readonly revocationCheckIntervalMs: number
  /** GitLab requests per second per instance before any RateLimit header is seen. */
  readonly gitlabQps: number
  /** What to do about ESO: auto (detect), never (always serve ExternalSecrets), always (never serve them). */
  readonly esoCoexistence: "auto" | "never" | "always"
  /** How long a deleted consumer's suspects are kept before they are released (never revoked). */
  readonly suspectWaitMs: number
  /** Identity for the Lease (default: hostname_pid). */
  readonly identity: string | undefined
  readonly help: boolean
  readonly version: boolean
}

interface FlagDoc {
  readonly name: string
  readonly env: string
  readonly arg: string | undefined
  readonly def: string
  readonly doc: string
  readonly multiple?: boolean
}

/** The flags, in --help order. */
export const FLAG_DOCS: ReadonlyArray<FlagDoc> = [
  {
    name: "kubeconfig",
    env: "GLDT_KUBECONFIG",
    arg: "PATH",
    def: "$KUBECONFIG, then in-cluster, then ~/.kube/config",
    doc: "Kubeconfig file to reach the API server.",
  },
  {
    name: "namespace",
    env: "GLDT_NAMESPACES",
    arg: "NS",
    def: "all namespaces",
    doc: "Serve only this namespace; repeat the flag for more (the variable takes a comma-separated list).",
    multiple: true,
  },
  {
    name: "leader-elect",
    env: "GLDT_LEADER_ELECT",
    arg: undefined,
    def: "off",
    doc: "Elect a leader on a Lease so that only one replica acts (run two or more replicas with it).",
  },
  {
    name: "leader-election-namespace",
    env: "GLDT_LEADER_ELECTION_NAMESPACE",
    arg: "NS",
    def: "the pod's namespace in cluster, else default",
    doc: "Namespace of the Lease.",
  },
  { name: "leader-election-id", env: "GLDT_LEADER_ELECTION_ID", arg: "NAME", def: "gldt-controller", doc: "Name of the Lease." },
  {
    name: "lease-duration",
    env: "GLDT_LEASE_DURATION",
    arg: "DURATION",
    def: "15s",
    doc: "How long a Lease stays valid without renewal; a stand-by takes over after it.",
  },
  {
    name: "renew-deadline",
    env: "GLDT_RENEW_DEADLINE",
    arg: "DURATION",
    def: "10s",
    doc: "The leader gives up (and exits) when it could not renew for this long.",
  },
  { name: "retry-period", env: "GLDT_RETRY_PERIOD", arg: "DURATION", def: "2s", doc: "How often the Lease is tried and renewed." },
  {
    name: "metrics-bind-address",
    env: "GLDT_METRICS_BIND_ADDRESS",
    arg: "ADDR",
    def: ":8080",
    doc: "Where /metrics (Prometheus text) is served, as [HOST]:PORT; 0 turns it off.",
  },
  {
    name: "health-probe-bind-address",
    env: "GLDT_HEALTH_PROBE_BIND_ADDRESS",
    arg: "ADDR",
    def: ":8081",
    doc: "Where /healthz and /readyz are served, as [HOST]:PORT; 0 turns it off.",
  },
  { name: "gitlab-ca-file", env: "GLDT_GITLAB_CA_FILE", arg: "PATH", def: "none", doc: "PEM file of extra CAs trusted for every GitLab instance." },
  {
    name: "allow-http",
    env: "GLDT_ALLOW_HTTP",
    arg: undefined,
    def: "off",
    doc: "Accept http:// GitLab URLs (local tests only: the access token then travels in clear).",
  },
  {
    name: "concurrency",
    env: "GLDT_CONCURRENCY",
    arg: "N",
    def: "4",
    doc: "ExternalSecrets reconciled at the same time (each one is always handled by one worker at a time); refreshes of consumers already synced use at most an eighth of them (at least one), and one more worker serves only consumers never synced, so a new ExternalSecret never waits behind rotations.",
  },
  { name: "log-format", env: "GLDT_LOG_FORMAT", arg: "json|text", def: "json", doc: "Log line format on stderr." },
  { name: "log-level", env: "GLDT_LOG_LEVEL", arg: "LEVEL", def: "info", doc: "debug, info, warn or error." },
  {
    name: "revocation-check-interval",
    env: "GLDT_REVOCATION_CHECK_INTERVAL",
    arg: "DURATION",
    def: "10m",
    doc: "How often each GitLab target is listed to notice tokens revoked outside gldt (one list per target and interval, shared by its ExternalSecrets); 0 turns it off.",
  },
  {
    name: "gitlab-qps",
    env: "GLDT_GITLAB_QPS",
    arg: "N",
    def: "10",
    doc: "Requests per second to each GitLab instance; GitLab's RateLimit-* and Retry-After headers slow it further.",
  },
  {
    name: "eso-coexistence",
    env: "GLDT_ESO_COEXISTENCE",
    arg: "auto|never|always",
    def: "auto",
    doc: "auto: when External Secrets Operator runs in the cluster, leave ExternalSecrets to it and serve only GitlabDeployTokenConsumers; never: serve ExternalSecrets anyway; always: never serve ExternalSecrets.",
  },
  {
    name: "suspect-wait",
    env: "GLDT_SUSPECT_WAIT",
    arg: "DURATION",
    def: "1h",
    doc: "How long a deleted consumer's suspects (look-alike tokens gldt cannot prove it made, never revoked by it) hold its deletion for a person to check them; then they are released with a Warning event naming their ids, and the consumer goes.",
  },
  { name: "identity", env: "GLDT_IDENTITY", arg: "NAME", def: "HOSTNAME_PID", doc: "This replica's name in the Lease." },
  { name: "help", env: "", arg: undefined, def: "", doc: "Show this help and exit." },
  { name: "version", env: "", arg: undefined, def: "", doc: "Print the version and exit." },
]

export class FlagError extends Error {
  override readonly name = "FlagError"
}

const parseDuration = (flag: string, text: string): number => {
  if (text === "0") return 0
  let total = 0
  let rest = text
  while (rest !== "") {
    const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)/.exec(rest)
    if (m === null) throw new FlagError(`--${flag}: "${text}" is not a duration; write it like 30s, 10m or 1h30m`)
    const n = Number(m[1])
    total += n * (m[2] === "ms" ? 1 : m[2] === "s" ? 1000 : m[2] === "m" ? 60_000 : 3_600_000)
    rest = rest.slice(m[0].length)
  }
  return Math.round(total)
}
const parseBool = (flag: string, text: string): boolean => {
  if (/^(1|true|yes|on)$/i.test(text)) return true
  if (/^(0|false|no|off|)$/i.test(text)) return false
  throw new FlagError(`${flag}: "${text}" is not a boolean; use true or false`)
}

/** Checks `[HOST]:PORT` (or `0` = off). */
const parseAddress = (flag: string, text: string): string | undefined => {
  if (text === "0") return undefined
  const m = /^(.*):(\d{1,5})$/.exec(text)
  if (m === null || Number(m[2]) > 65535)
    throw new FlagError(`--${flag}: "${text}" is not an address; write [HOST]:PORT like :8080 or 127.0.0.1:8080, or 0 to turn it off`)
  return text
}

const NS = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/

/** Parses argv (without node and script) and the environment. Throws FlagError on bad input. */
export const parseFlags = (argv: ReadonlyArray<string>, env: NodeJS.ProcessEnv = process.env): Flags => {
  const options: Record<string, { type: "string" | "boolean"; multiple?: boolean }> = {}
  for (const f of FLAG_DOCS) options[f.name] = { type: f.arg === undefined ? "boolean" : "string", ...(f.multiple ? { multiple: true } : {}) }
  let values: Record<string, string | boolean | Array<string> | undefined>
  try {
    const parsed = parseArgs({ args: [...argv], options, strict: true, allowPositionals: false, allowNegative: true })
    values = parsed.values as typeof values
  } catch (e) {
    throw new FlagError(`${(e as Error).message.replace(/\. To specify.*$/s, "")}; run gldt-controller --help for the flags`)
  }
  const str = (name: string): string | undefined => {
    const v = values[name]
    if (typeof v === "string") return v
    const doc = FLAG_DOCS.find((f) => f.name === name)!
    const e = doc.env === "" ? undefined : env[doc.env]
    return e === undefined || e === "" ? undefined : e
  }
  const bool = (name: string): boolean => {
    const v = values[name]
    if (typeof v === "boolean") return v
    const doc = FLAG_DOCS.find((f) => f.name === name)!
    const e = doc.env === "" ? undefined : env[doc.env]
    return e === undefined ? false : parseBool(doc.env, e)
  }
  const help = values.help === true
  const version = values.version === true
  const namespaces = (() => {
    const v = values.namespace
    const list = Array.isArray(v)
      ? v
      : (env.GLDT_NAMESPACES ?? "")
          .split(",")
          .map((s) => s.trim())
          .filter((s) => s !== "")
    for (const ns of list) if (!NS.test(ns)) throw new FlagError(`--namespace: "${ns}" is not a namespace name (lowercase letters, digits and '-')`)
    return [...new Set(list)]
  })()
  const concurrencyText = str("concurrency") ?? "4"
  const concurrency = Number(concurrencyText)
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 256) {
    throw new FlagError(`--concurrency: "${concurrencyText}" must be a whole number from 1 to 256`)
  }
  const qpsText = str("gitlab-qps") ?? "10"
  const gitlabQps = Number(qpsText)
  if (!Number.isFinite(gitlabQps) || gitlabQps <= 0) throw new FlagError(`--gitlab-qps: "${qpsText}" must be a positive number`)
  const logFormat = str("log-format") ?? "json"
  if (logFormat !== "json" && logFormat !== "text") throw new FlagError(`--log-format: "${logFormat}" must be json or text`)
  const logLevel = str("log-level") ?? "info"
  if (logLevel !== "debug" && logLevel !== "info" && logLevel !== "warn" && logLevel !== "error") {
    throw new FlagError(`--log-level: "${logLevel}" must be debug, info, warn or error`)
  }
  const eso = str("eso-coexistence") ?? "auto"
  if (eso !== "auto" && eso !== "never" && eso !== "always") throw new FlagError(`--eso-coexistence: "${eso}" must be auto, never or always`)
  const caFile = str("gitlab-ca-file")
  let gitlabCaPem: string | undefined
  if (caFile !== undefined && !help) {
    try {
      gitlabCaPem = readFileSync(caFile, "utf8")
    } catch (e) {
      throw new FlagError(`--gitlab-ca-file: cannot read ${caFile} (${(e as NodeJS.ErrnoException).code ?? "error"}); give a PEM file of CA certificates`)
    }
    if (!gitlabCaPem.includes("-----BEGIN CERTIFICATE-----")) {
      throw new FlagError(`--gitlab-ca-file: ${caFile} holds no PEM certificate (-----BEGIN CERTIFICATE-----)`)
    }
  }
  const leaseDurationMs = parseDuration("lease-duration", str("lease-duration") ?? "15s")
  const renewDeadlineMs = parseDuration("renew-deadline", str("renew-deadline") ?? "10s")
  const retryPeriodMs = parseDuration("retry-period", str("retry-period") ?? "2s")
  if (leaseDurationMs <= renewDeadlineMs) throw new FlagError("--lease-duration must be longer than --renew-deadline")
  if (renewDeadlineMs <= retryPeriodMs) throw new FlagError("--renew-deadline must be longer than --retry-period")
  const electionNs = str("leader-election-namespace")
  if (electionNs !== undefined && !NS.test(electionNs)) throw new FlagError(`--leader-election-namespace: "${electionNs}" is not a namespace name`)
  return {
    kubeconfig: str("kubeconfig"),
    namespaces,
    leaderElect: bool("leader-elect"),
    leaderElectionNamespace: electionNs,
    leaderElectionId: str("leader-election-id") ?? "gldt-controller",
    leaseDurationMs,
    renewDeadlineMs,
    retryPeriodMs,
    metricsBindAddress: parseAddress("metrics-bind-address", str("metrics-bind-address") ?? ":8080"),
    healthProbeBindAddress: parseAddress("health-probe-bind-address", str("health-probe-bind-address") ?? ":8081"),
    gitlabCaPem,
    gitlabCaFile: caFile,
    allowHttp: bool("allow-http"),
    concurrency,
    logFormat,
    logLevel,
    revocationCheckIntervalMs: parseDuration("revocation-check-interval", str("revocation-check-interval") ?? "10m"),
    gitlabQps,
    esoCoexistence: eso,
    suspectWaitMs: parseDuration("suspect-wait", str("suspect-wait") ?? "1h"),
    identity: str("identity"),
    help,
    version,
  }
}

/** The --help text: usage, every flag with its variable and default, and where to read more. */
export const helpText = (): string => {
  const lines = [
    "gldt-controller — mints, delivers, rotates and revokes GitLab deploy tokens in Kubernetes",
    "",
    "Usage: gldt-controller [flags]",
    "",
    "Serves every ExternalSecret (external-secrets.io/v1) whose spec.dataFrom[].sourceRef.generatorRef",
    "points at a GitlabDeployToken (or a ClusterGenerator of that kind), and every",
    "GitlabDeployTokenConsumer (gldt.dev/v1alpha1): writes the target Secret with the keys username and",
    "token, rotates it every refreshInterval, revokes replaced tokens after revokeGracePeriod and every",
    "token when the consumer is deleted. Install the CRDs first:",
    "  kubectl apply --server-side -f apps/controller/crds/",
    "",
    "Flags (each can also be set through its environment variable; the flag wins):",
  ]
  for (const f of FLAG_DOCS) {
    const head = `  --${f.name}${f.arg === undefined ? "" : ` ${f.arg}`}`
    lines.push(head)
    lines.push(`      ${f.doc}`)
    const meta = [f.env === "" ? undefined : `env ${f.env}`, f.def === "" ? undefined : `default: ${f.def}`].filter((s) => s !== undefined)
    if (meta.length > 0) lines.push(`      (${meta.join("; ")})`)
  }
  lines.push(
    "",
    "Durations are written like 500ms, 30s, 10m or 1h30m. Boolean variables take true or false.",
    "",
    "Endpoints: /metrics (Prometheus text), /healthz (the process is alive), /readyz (caches synced;",
    "with --leader-elect also ready while standing by).",
    "",
    "Exit codes: 0 after SIGTERM/SIGINT (graceful shutdown), 1 on a fatal error (e.g. leadership lost),",
    "2 on bad flags.",
  )
  return `${lines.join("\n")}\n`
}
