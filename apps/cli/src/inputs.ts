/** Reading what the user gave: manifest files, --state / --sink locations, the access token, a CA. */
import { readFileSync } from "node:fs"
import { REMOVE_MODES, type RemoveMode } from "@gldt/adapter-vault/VaultSink"
import { type ManifestSet, readManifests } from "@gldt/core/Manifest"
import type { Problem } from "@gldt/core/Spec"
import { Effect, Redacted, Schema } from "effect"
import { parseAllDocuments } from "yaml"

/** Bad input: nothing was minted. Exit code 2. */
export class BadInput extends Schema.TaggedError<BadInput>()("BadInput", {
  problems: Schema.Array(Schema.String),
}) {
  override get message() {
    return this.problems.join("\n")
  }
}

const problemLines = (file: string, problems: ReadonlyArray<Problem>) => problems.map((p) => `${file}: ${p.path}: ${p.message}`)

/** Parses a YAML file of one or more documents and reads the generator (and ExternalSecret) out of it. */
export const loadManifests = (file: string, options: { allowHttp: boolean; now: number }) =>
  Effect.gen(function* () {
    let text: string
    try {
      text = readFileSync(file, "utf8")
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code
      return yield* new BadInput({
        problems: [`${file}: cannot read the manifest file (${code ?? String(e)}); pass an existing YAML file with -f`],
      })
    }
    const docs = parseAllDocuments(text)
    const parseErrors = (Array.isArray(docs) ? docs : [docs]).flatMap((d, i) =>
      d.errors.map((e) => `${file}: document ${i + 1}: malformed YAML at line ${e.linePos?.[0]?.line ?? "?"}: ${e.message.split("\n")[0]!.replace(/:$/, "")}`),
    )
    if (parseErrors.length > 0) return yield* new BadInput({ problems: parseErrors })
    const values = (Array.isArray(docs) ? docs : [docs]).map((d) => d.toJS({ maxAliasCount: 50 }) as unknown)
    const result = readManifests(values, options)
    if (result.manifests === undefined) return yield* new BadInput({ problems: problemLines(file, result.problems) })
    return result.manifests satisfies ManifestSet
  })

export type StateLocation = { readonly kind: "file"; readonly dir: string } | { readonly kind: "vault"; readonly mount: string; readonly prefix: string }

/** `MOUNT/REST` of a `vault:` location: the first segment is the KV v2 mount. */
const vaultPath = (value: string): { mount: string; rest: string } | undefined => {
  const m = /^vault:\/*([^/?]+)\/+([^?]*[^/?])\/*$/.exec(value)
  return m === null ? undefined : { mount: m[1]!, rest: m[2]!.replace(/\/{2,}/g, "/") }
}

export const parseStateFlag = (value: string): Effect.Effect<StateLocation, BadInput> => {
  const hint = "write file:DIR (e.g. file:./.gldt/state) or vault:MOUNT/PREFIX (e.g. vault:secret/gldt/state, a KV v2 mount)"
  if (value.startsWith("vault:")) {
    const v = vaultPath(value)
    if (v === undefined) return Effect.fail(new BadInput({ problems: [`--state: "${value}" needs a KV v2 mount and a folder under it; ${hint}`] }))
    return Effect.succeed({ kind: "vault", mount: v.mount, prefix: v.rest })
  }
  const m = /^file:(.+)$/.exec(value)
  if (m === null) {
    return Effect.fail(new BadInput({ problems: [`--state: "${value}" is not a state location; ${hint}`] }))
  }
  return Effect.succeed({ kind: "file", dir: m[1]! })
}

export const SINK_FORMATS = ["env", "json", "dockerconfigjson", "netrc", "raw"] as const
export type SinkFormat = (typeof SINK_FORMATS)[number]
export type SinkLocation =
  | { readonly kind: "file"; readonly path: string; readonly format: SinkFormat; readonly registry: string | undefined }
  | { readonly kind: "stdout"; readonly format: SinkFormat }
  | { readonly kind: "vault"; readonly mount: string; readonly path: string; readonly removeMode: RemoveMode; readonly keepVersions: number | undefined }

export const parseSinkFlag = (value: string): Effect.Effect<SinkLocation, BadInput> => {
  const bad = (why: string) =>
    Effect.fail(
      new BadInput({
        problems: [
          `--sink: ${why}; write file:PATH[?format=${SINK_FORMATS.join("|")}], stdout[?format=…] or vault:MOUNT/PATH[?remove=${REMOVE_MODES.join("|")}][&versions=N]`,
        ],
      }),
    )
  const [head, query = ""] = value.split("?", 2) as [string, string | undefined]
  const params = new URLSearchParams(query)
  if (head.startsWith("vault:")) {
    for (const k of params.keys()) if (k !== "remove" && k !== "versions") return bad(`unknown option "${k}" for a vault sink (remove, versions)`)
    const v = vaultPath(head)
    if (v === undefined) return bad(`"${value}" needs a KV v2 mount and a secret path under it (e.g. vault:secret/ci/gitlab-deploy-token)`)
    const removeMode = (params.get("remove") ?? "delete") as RemoveMode
    if (!REMOVE_MODES.includes(removeMode)) return bad(`remove "${removeMode}" is not one of ${REMOVE_MODES.join(", ")}`)
    const versions = params.get("versions")
    if (versions !== null && !/^[1-9]\d{0,5}$/.test(versions)) return bad(`versions "${versions}" is not a positive number of versions to keep`)
    return Effect.succeed({ kind: "vault", mount: v.mount, path: v.rest, removeMode, keepVersions: versions === null ? undefined : Number(versions) })
  }
  for (const k of params.keys()) if (k !== "format" && k !== "registry") return bad(`unknown option "${k}"`)
  const format = (params.get("format") ?? (head === "stdout" ? "json" : "env")) as SinkFormat
  if (!SINK_FORMATS.includes(format)) return bad(`format "${format}" is not one of ${SINK_FORMATS.join(", ")}`)
  if (head === "stdout") return Effect.succeed({ kind: "stdout", format })
  const m = /^file:(.+)$/.exec(head)
  if (m === null) return bad(`"${value}" is not a sink`)
  return Effect.succeed({ kind: "file", path: m[1]!, format, registry: params.get("registry") ?? undefined })
}

/**
 * The GitLab access token from --token-file, else the --token-env variable (default GITLAB_TOKEN),
 * else `fromCluster` (the manifest's secretRef read through a reachable kubeconfig).
 */
export const readAccessToken = <E>(opts: {
  tokenEnv: string
  tokenFile: string | undefined
  fromCluster?: Effect.Effect<Redacted.Redacted<string>, E> | undefined
}) =>
  Effect.gen(function* () {
    if (opts.tokenFile !== undefined) {
      let text: string
      try {
        text = readFileSync(opts.tokenFile, "utf8")
      } catch (e) {
        return yield* new BadInput({
          problems: [`--token-file: cannot read ${opts.tokenFile} (${(e as NodeJS.ErrnoException).code ?? "error"})`],
        })
      }
      const token = text.trim()
      if (token === "") return yield* new BadInput({ problems: [`--token-file: ${opts.tokenFile} is empty; put the GitLab access token in it`] })
      return Redacted.make(token)
    }
    const value = process.env[opts.tokenEnv]?.trim()
    if (value !== undefined && value !== "") return Redacted.make(value)
    if (opts.fromCluster !== undefined) return yield* opts.fromCluster
    return yield* new BadInput({
      problems: [
        `no GitLab access token: set ${opts.tokenEnv} (or pass --token-env VAR / --token-file PATH, or use a kubeconfig whose cluster holds spec.auth.token.secretRef) to a token with the api scope and Maintainer (project) or Owner (group) role`,
      ],
    })
  })

export const readCaFile = (path: string | undefined) =>
  Effect.gen(function* () {
    if (path === undefined) return undefined
    let text: string
    try {
      text = readFileSync(path, "utf8")
    } catch (e) {
      return yield* new BadInput({ problems: [`--ca-file: cannot read ${path} (${(e as NodeJS.ErrnoException).code ?? "error"})`] })
    }
    if (!text.includes("-----BEGIN CERTIFICATE-----")) {
      return yield* new BadInput({ problems: [`--ca-file: ${path} holds no PEM certificate (-----BEGIN CERTIFICATE-----)`] })
    }
    return text
  })
