/**
 * Leader election on a `coordination.k8s.io/v1` Lease with client-go's semantics
 * (k8s.io/client-go/tools/leaderelection):
 *
 * - A candidate tries every `retryPeriod` (jittered by up to 20 %) to acquire the Lease: it may take
 *   it when it does not exist, is released (empty holder), or when its record has not changed for
 *   `leaseDuration` as observed on the candidate's own clock (no clock sync between replicas needed).
 *   Taking it from another holder bumps `leaseTransitions` and `acquireTime`.
 * - The leader renews every `retryPeriod`; when it could not renew for `renewDeadline` it has lost
 *   the Lease and must stop acting at once (the process exits; a restart re-joins as a candidate).
 * - Every write is an update with the read `resourceVersion`, so two candidates never both win.
 * - On graceful shutdown the leader releases the Lease (empty holder, 1 s duration) so a stand-by
 *   takes over without waiting a whole `leaseDuration`.
 */
import { CoordinationV1Api, type KubeConfig, type V1Lease, V1MicroTime } from "@kubernetes/client-node"
import { Effect, Schema } from "effect"
import { call } from "./KubeApi.ts"

export interface LeaderElectionOptions {
  readonly namespace: string
  readonly name: string
  readonly identity: string
  readonly leaseDurationMs: number
  readonly renewDeadlineMs: number
  readonly retryPeriodMs: number
}

export class LeadershipLost extends Schema.TaggedError<LeadershipLost>()("LeadershipLost", { message: Schema.String }) {}

const jitter = (ms: number) => Math.round(ms * (1 + 0.2 * Math.random()))

export const make = (kc: KubeConfig, o: LeaderElectionOptions) => {
  const api = kc.makeApiClient(CoordinationV1Api)
  /** The last record seen and when (local clock) it was first seen. */
  let observed: { readonly key: string; readonly at: number } | undefined

  const recordKey = (l: V1Lease) =>
    JSON.stringify([l.spec?.holderIdentity ?? "", l.spec?.renewTime ?? null, l.spec?.leaseTransitions ?? 0, l.spec?.leaseDurationSeconds ?? 0])

  /** One attempt; true when we hold the Lease afterwards. */
  const tryAcquireOrRenew = Effect.gen(function* () {
    // MicroTime: the API server wants six fractional digits.
    const now = new V1MicroTime()
    const read = yield* Effect.result(call(() => api.readNamespacedLease({ name: o.name, namespace: o.namespace })))
    if (read._tag === "Failure") {
      if (read.failure.code !== 404) {
        yield* Effect.logWarning("cannot read the Lease").pipe(Effect.annotateLogs({ lease: `${o.namespace}/${o.name}`, error: read.failure.message }))
        return false
      }
      const created = yield* Effect.result(
        call(() =>
          api.createNamespacedLease({
            namespace: o.namespace,
            body: {
              metadata: { name: o.name, namespace: o.namespace },
              spec: {
                holderIdentity: o.identity,
                leaseDurationSeconds: Math.ceil(o.leaseDurationMs / 1000),
                acquireTime: now,
                renewTime: now,
                leaseTransitions: 0,
              },
            },
          }),
        ),
      )
      if (created._tag === "Success") observed = { key: recordKey(created.success), at: Date.now() }
      else if (created.failure.code !== 409) {
        yield* Effect.logWarning("cannot create the Lease").pipe(Effect.annotateLogs({ lease: `${o.namespace}/${o.name}`, error: created.failure.message }))
      }
      return created._tag === "Success"
    }
    const lease = read.success
    const key = recordKey(lease)
    if (observed?.key !== key) observed = { key, at: Date.now() }
    const holder = lease.spec?.holderIdentity ?? ""
    const durationMs = (lease.spec?.leaseDurationSeconds ?? Math.ceil(o.leaseDurationMs / 1000)) * 1000
    if (holder !== "" && holder !== o.identity && observed.at + durationMs > Date.now()) return false
    const taking = holder !== o.identity
    const body: V1Lease = {
      ...lease,
      spec: {
        ...lease.spec,
        holderIdentity: o.identity,
        leaseDurationSeconds: Math.ceil(o.leaseDurationMs / 1000),
        renewTime: now,
        ...(taking ? { acquireTime: now, leaseTransitions: (lease.spec?.leaseTransitions ?? 0) + 1 } : {}),
      },
    }
    const updated = yield* Effect.result(call(() => api.replaceNamespacedLease({ name: o.name, namespace: o.namespace, body })))
    if (updated._tag === "Failure") {
      if (updated.failure.code !== 409) {
        yield* Effect.logWarning("cannot update the Lease").pipe(Effect.annotateLogs({ lease: `${o.namespace}/${o.name}`, error: updated.failure.message }))
      }
      return false
    }
    observed = { key: recordKey(updated.success), at: Date.now() }
    return true
  })

  /** Waits until this candidate holds the Lease. */
  const acquire = Effect.gen(function* () {
    yield* Effect.logInfo("waiting to become the leader").pipe(Effect.annotateLogs({ lease: `${o.namespace}/${o.name}`, identity: o.identity }))
    while (!(yield* tryAcquireOrRenew)) yield* Effect.sleep(jitter(o.retryPeriodMs))
    yield* Effect.logInfo("became the leader").pipe(Effect.annotateLogs({ lease: `${o.namespace}/${o.name}`, identity: o.identity }))
  })

  /** Renews forever; fails with LeadershipLost once renewals failed for renewDeadline. */
  const keepRenewing = Effect.gen(function* () {
    let lastRenew = Date.now()
    for (;;) {
      yield* Effect.sleep(o.retryPeriodMs)
      if (yield* tryAcquireOrRenew) lastRenew = Date.now()
      else if (Date.now() - lastRenew >= o.renewDeadlineMs) {
        return yield* new LeadershipLost({ message: `could not renew Lease ${o.namespace}/${o.name} for ${o.renewDeadlineMs} ms` })
      }
    }
  })

  /** Gives the Lease up if we hold it (graceful shutdown). */
  const release = Effect.gen(function* () {
    const read = yield* Effect.result(call(() => api.readNamespacedLease({ name: o.name, namespace: o.namespace })))
    if (read._tag === "Failure" || read.success.spec?.holderIdentity !== o.identity) return
    const lease = read.success
    yield* Effect.result(
      call(() =>
        api.replaceNamespacedLease({
          name: o.name,
          namespace: o.namespace,
          body: { ...lease, spec: { ...lease.spec, holderIdentity: "", leaseDurationSeconds: 1, renewTime: new V1MicroTime() } },
        }),
      ),
    )
    yield* Effect.logInfo("released the Lease").pipe(Effect.annotateLogs({ lease: `${o.namespace}/${o.name}` }))
  })

  return { acquire, keepRenewing, release, tryAcquireOrRenew }
}
