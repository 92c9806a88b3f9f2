/** Reads and checks every input of a manifest command before anything touches GitLab, and builds its service layer. */
import { mkdirSync } from "node:fs"
import type { Connection, GitLab } from "@gldt/core/GitLab"
import type { Job } from "@gldt/core/Lifecycle"
import type { ManifestSet } from "@gldt/core/Manifest"
import { Sink } from "@gldt/core/Sink"
import { DEFAULT_GRACE_MS } from "@gldt/core/Spec"
import { State } from "@gldt/core/State"
import { layer as gitlabLayer } from "@gldt/gitlab/GitLabClient"
import { Clock, Effect, Layer, Option } from "effect"
import { backendLayers } from "./backends.ts"
import { BadInput, loadManifests, parseSinkFlag, parseStateFlag, readAccessToken, readCaFile } from "./inputs.ts"
import { reachableKubeconfig, readTokenFromSecret } from "./kubeToken.ts"
import { type Common, durationFlag } from "./options.ts"

export interface Prepared {
  readonly manifests: ManifestSet
  readonly job: Job
  readonly layer: Layer.Layer<State | GitLab | Sink>
}

const keyOf = (c: Common, m: ManifestSet) => Option.getOrElse(c.key, () => m.generator.name)
const specGrace = (m: ManifestSet) => m.generator.spec.revokeGracePeriodMs ?? DEFAULT_GRACE_MS

/**
 * State that cannot be read, or (for commands that deliver) a sink that cannot be written, is bad
 * input: found before any mint. revoke and recover deliver nothing, so a sink whose directory is
 * gone (a decommissioned consumer) does not stop them.
 */
const checkTargets = (key: string, writableSink: boolean) =>
  Effect.gen(function* () {
    const state = yield* State
    const sink = yield* Sink
    yield* state.load(key).pipe(Effect.mapError((e) => new BadInput({ problems: [`--state: ${e.message}`] })))
    if (writableSink) yield* sink.check(key).pipe(Effect.mapError((e) => new BadInput({ problems: [`--sink: ${e.message}`] })))
  })

/** Reads and checks every input before anything touches GitLab, then builds the service layer. */
export const prepare = (c: Common, options: { readonly writableSink?: boolean } = {}) =>
  Effect.gen(function* () {
    const now = yield* Clock.currentTimeMillis
    const manifests = yield* loadManifests(c.file, { allowHttp: c.allowHttp, now })
    const k = keyOf(c, manifests)
    const stateLoc = yield* parseStateFlag(c.state)
    const writableSink = options.writableSink ?? true
    if (Option.isNone(c.sink) && writableSink) mkdirSync("./.gldt", { recursive: true, mode: 0o700 })
    const sinkLoc = yield* parseSinkFlag(Option.getOrElse(c.sink, () => `file:./.gldt/${k.replaceAll("/", "_")}.env`))
    const graceMs = (yield* durationFlag("grace", c.grace, specGrace(manifests)))!
    const createSettleMs = yield* durationFlag("create-settle", c.createSettle, undefined)
    const caPem = (yield* readCaFile(Option.getOrUndefined(c.caFile))) ?? manifests.generator.spec.caBundle
    const accessToken = yield* readAccessToken({
      tokenEnv: c.tokenEnv,
      tokenFile: Option.getOrUndefined(c.tokenFile),
      fromCluster: reachableKubeconfig() ? readTokenFromSecret(manifests.generator.spec.auth.secretRef, manifests.generator.namespace) : undefined,
    })
    const connection: Connection = {
      url: manifests.generator.spec.url,
      accessToken,
      caPem,
      allowHttp: c.allowHttp,
    }
    const consumer = manifests.consumer
    const job: Job = {
      key: k,
      spec: manifests.generator.spec,
      connection,
      policy: {
        refreshIntervalMs: consumer?.refreshIntervalMs ?? 0,
        refreshPolicy: consumer?.refreshPolicy,
        graceMs,
        createSettleMs,
      },
    }
    const layer = Layer.mergeAll(yield* backendLayers(stateLoc, sinkLoc, c), gitlabLayer())
    yield* checkTargets(k, writableSink).pipe(Effect.provide(layer))
    return { manifests, job, layer } satisfies Prepared
  })
