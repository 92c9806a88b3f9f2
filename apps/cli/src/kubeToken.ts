/** Reads the access token from the Secret the manifest names, through the user's kubeconfig. */
import { existsSync } from "node:fs"
import { homedir } from "node:os"
import { join } from "node:path"
import type { SecretKeyRef } from "@gldt/core/Spec"
import { Effect, Redacted, Schema } from "effect"
import { BadInput } from "./inputs.ts"

/** The cluster could not be asked (unreachable, forbidden…). Exit code 1. */
export class KubeUnavailable extends Schema.TaggedError<KubeUnavailable>()("KubeUnavailable", { message: Schema.String }) {}

/** A kubeconfig that `kubectl` would use: $KUBECONFIG's files, or ~/.kube/config. */
export const reachableKubeconfig = (): boolean => {
  const env = process.env.KUBECONFIG
  if (env !== undefined && env !== "") return env.split(":").some((p) => p !== "" && existsSync(p))
  return existsSync(join(homedir(), ".kube", "config"))
}

const statusOf = (e: unknown): number | undefined => {
  const code = (e as { code?: unknown }).code
  return typeof code === "number" ? code : undefined
}

export const readTokenFromSecret = (ref: SecretKeyRef, manifestNamespace: string | undefined) =>
  Effect.gen(function* () {
    // Loaded on demand: the client is large and most runs never need it.
    const { CoreV1Api, KubeConfig } = yield* Effect.promise(() => import("@kubernetes/client-node"))
    const kc = new KubeConfig()
    kc.loadFromDefault()
    const namespace = manifestNamespace ?? kc.getContextObject(kc.getCurrentContext())?.namespace ?? "default"
    const where = `Secret ${namespace}/${ref.name}`
    const secret = yield* Effect.tryPromise({
      try: () => kc.makeApiClient(CoreV1Api).readNamespacedSecret({ name: ref.name, namespace }),
      catch: (e) =>
        statusOf(e) === 404
          ? new BadInput({
              problems: [
                `spec.auth.token.secretRef: ${where} does not exist in the kubeconfig's cluster; create it (kubectl create secret generic ${ref.name} --from-literal=${ref.key}=glpat-…) or set GITLAB_TOKEN`,
              ],
            })
          : new KubeUnavailable({
              message: `cannot read ${where} through the kubeconfig (${statusOf(e) ?? (e instanceof Error ? e.message.split("\n")[0] : "error")}); set GITLAB_TOKEN or --token-file to skip the cluster`,
            }),
    })
    const encoded = secret.data?.[ref.key]
    if (encoded === undefined || encoded === "") {
      return yield* new BadInput({ problems: [`spec.auth.token.secretRef: ${where} has no key "${ref.key}"; put the access token under that key`] })
    }
    return Redacted.make(Buffer.from(encoded, "base64").toString("utf8").trim())
  })
