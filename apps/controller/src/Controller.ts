/**
 * Wires the controller: informers (one shared cache) → work queue → N workers → Reconciler, behind
 * optional leader election, with /healthz, /readyz and /metrics. Shuts down gracefully: on SIGTERM
 * the queue stops handing out keys, reconciles in flight finish (each runs uninterruptibly), the
 * Lease is released, informers stop.
 */
import { readFileSync } from "node:fs"
import { hostname } from "node:os"
import { layerNoTransport } from "@gldt/gitlab/GitLabClient"
import { GitLab } from "@gldt/core/GitLab"
import { ApiextensionsV1Api } from "@kubernetes/client-node"
import { Context, Effect, Fiber, Layer } from "effect"
import * as Cache from "./Cache.ts"
import { AUTH_FINALIZER, CA_FINALIZER, GENERATOR_FINALIZER, fromStateKey, gldtRefs, parseQueueKey, queueKey } from "./Consumer.ts"
import type { Flags } from "./Flags.ts"
import * as Limiter from "./GitLabLimiter.ts"
import * as KubeApi from "./KubeApi.ts"
import * as LeaderElection from "./LeaderElection.ts"
import { Metrics, make as makeMetrics } from "./Metrics.ts"
import * as Reconciler from "./Reconciler.ts"
import { healthRoute, metricsRoute, serve } from "./Server.ts"
import { changeFilter, GeneratorUsers, generatorKey, isNew } from "./Triggers.ts"
import { WorkQueue } from "./WorkQueue.ts"

/** Whether ESO's controller is installed: its SecretStore CRDs exist (gldt never installs them). */
const detectEso = (kube: KubeApi.KubeApiShape) =>
  Effect.tryPromise(() => kube.kubeConfig.makeApiClient(ApiextensionsV1Api).readCustomResourceDefinition({ name: "secretstores.external-secrets.io" })).pipe(
    Effect.as(true),
    Effect.catch((e) => Effect.succeed((e as { code?: unknown })?.code === 404 ? false : undefined)),
  )

export const run = (flags: Flags) =>
  Effect.gen(function* () {
    const kc = KubeApi.loadKubeConfig(flags.kubeconfig)
    const identity = flags.identity ?? `${hostname()}_${process.pid}`
    const metrics = makeMetrics()
    const kube = KubeApi.make(kc, identity)
    // Built in the controller's scope: the HTTP agents live as long as the process.
    const gitlabContext = yield* Layer.build(
      layerNoTransport().pipe(Layer.provide(Limiter.layer({ qps: flags.gitlabQps })), Layer.provide(Layer.succeed(Metrics, metrics))),
    )
    const gitlab = Context.get(gitlabContext, GitLab)
    // Refreshes take at most an eighth of the workers (at least one): the rest, and the API server,
    // stay free for new consumers (at 1,000 rotating, a new ExternalSecret waited 6.7 s at half, 3.9 s at an eighth).
    const queue = new WorkQueue({ baseMs: 1_000, maxMs: 120_000, maxRefreshing: Math.max(1, Math.ceil(flags.concurrency / 8)) })
    metrics.depthSource.fn = () => queue.depth
    yield* Effect.addFinalizer(() => Effect.sync(() => queue.shutDown()))

    // ESO coexistence.
    let esoPresent = flags.esoCoexistence === "always"
    if (flags.esoCoexistence === "auto") {
      esoPresent = (yield* detectEso(kube)) === true
      if (esoPresent) {
        yield* Effect.logWarning(
          "External Secrets Operator is installed in this cluster: ExternalSecrets are left to it; hand consumers to gldt with GitlabDeployTokenConsumer",
        )
      }
    }
    const serveExternalSecrets = () => !esoPresent

    const resources: ReadonlyArray<Cache.ResourceName> = [
      "externalSecrets",
      "consumers",
      "generators",
      "clusterGenerators",
      "states",
      "managedSecrets",
      "authSecrets",
      "caConfigMaps",
    ]
    const cache = yield* Cache.make(kc, flags.namespaces, resources)
    const reconciler = Reconciler.make({
      cache,
      kube,
      metrics,
      gitlab,
      options: {
        allowHttp: flags.allowHttp,
        gitlabCaPem: flags.gitlabCaPem,
        serveExternalSecrets,
        revocationCheckIntervalMs: flags.revocationCheckIntervalMs,
        suspectWaitMs: flags.suspectWaitMs,
      },
    })

    // Event handlers: every change that matters puts the consumer's key in the queue.
    const consumerChanged = changeFilter()
    const users = new GeneratorUsers()
    /** A held ClusterGenerator is let go once no consumer names it (asked when it is deleted and when a consumer of it goes). */
    const heldClusterGenerator = (name: string) => {
      const g = cache.informed.clusterGenerators.get(name)
      if (g !== undefined && (g.metadata.finalizers ?? []).includes(GENERATOR_FINALIZER)) queue.add(`clustergenerators/${name}`, { first: true })
    }
    const onConsumer = (kind: "ExternalSecret" | "GitlabDeployTokenConsumer") => (verb: Cache.Verb, o: Cache.Obj) => {
      const ns = o.metadata.namespace ?? "default"
      const k = queueKey(kind, ns, o.metadata.name)
      const refs =
        kind === "ExternalSecret"
          ? gldtRefs(o)
          : [(o.spec as { generatorRef?: { kind?: string; name?: string } } | undefined)?.generatorRef].map((r) => ({
              kind: r?.kind ?? "GitlabDeployToken",
              name: r?.name ?? "",
            }))
      users.set(k, verb === "delete" ? [] : refs.map((r) => generatorKey(r.kind, ns, r.name)))
      if (verb === "delete") for (const r of refs) if (r.kind === "ClusterGenerator") heldClusterGenerator(r.name)
      if (kind === "ExternalSecret" && refs.length === 0) return
      if (!consumerChanged(verb, o)) return
      // New consumers and deletions go ahead of (and are not limited like) refreshes.
      queue.add(k, { first: verb !== "delete" && (isNew(o) || o.metadata.deletionTimestamp !== undefined) })
    }
    cache.informed.externalSecrets.on(onConsumer("ExternalSecret"))
    cache.informed.consumers.on(onConsumer("GitlabDeployTokenConsumer"))
    const consumersOf = (kind: "GitlabDeployToken" | "ClusterGenerator", name: string, namespace: string | undefined) => {
      for (const k of users.of(generatorKey(kind, namespace ?? "", name))) queue.add(k)
    }
    /** A held caProvider ConfigMap being deleted: ask whether it may go. */
    const caKey = (m: Cache.Obj) =>
      m.metadata.deletionTimestamp !== undefined && (m.metadata.finalizers ?? []).includes(CA_FINALIZER)
        ? `ca/${m.metadata.namespace}/${m.metadata.name}`
        : undefined
    const generatorChanged = changeFilter()
    cache.informed.generators.on((verb, g) => {
      if (generatorChanged(verb, g)) {
        consumersOf("GitlabDeployToken", g.metadata.name, g.metadata.namespace)
        // A generator that changed or went may have been the last to name a Terminating CA ConfigMap.
        for (const m of cache.informed.caConfigMaps.list(g.metadata.namespace)) {
          const k = caKey(m)
          if (k !== undefined) queue.add(k, { first: true })
        }
      }
      if (verb !== "delete" && g.metadata.deletionTimestamp !== undefined && (g.metadata.finalizers ?? []).includes(GENERATOR_FINALIZER)) {
        queue.add(`generators/${g.metadata.namespace}`, { first: true })
      }
    })
    const clusterGeneratorChanged = changeFilter()
    cache.informed.clusterGenerators.on((verb, g) => {
      if (clusterGeneratorChanged(verb, g)) consumersOf("ClusterGenerator", g.metadata.name, undefined)
      if (verb !== "delete" && g.metadata.deletionTimestamp !== undefined) heldClusterGenerator(g.metadata.name)
    })
    cache.informed.states.on((verb, s) => {
      const key = (s.spec as { key?: string } | undefined)?.key
      if (key === undefined) return
      const st = (s.status ?? {}) as { retiring?: number; suspects?: number }
      if (verb === "delete") {
        metrics.pendingByKey.delete(key)
        metrics.suspectsByKey.delete(key)
        return
      }
      metrics.pendingByKey.set(key, st.retiring ?? 0)
      metrics.suspectsByKey.set(key, st.suspects ?? 0)
      // A state object being deleted (its consumer went without our finalizer, or by hand): revoke.
      if (s.metadata.deletionTimestamp !== undefined) {
        const c = fromStateKey(key)
        if (c !== undefined) queue.add(queueKey(c.kind, c.namespace, c.name), { first: true })
      }
    })
    cache.informed.managedSecrets.on((verb, secret) => {
      // A target Secret deleted or rewritten by someone else: its consumer re-delivers.
      if (verb === "add") return
      if (verb === "update" && secret.metadata.annotations?.["gldt.dev/token-id"] !== undefined) return
      const ns = secret.metadata.namespace!
      for (const es of cache.informed.externalSecrets.list(ns)) {
        const target = (es.spec as { target?: { name?: string } } | undefined)?.target?.name ?? es.metadata.name
        if (target === secret.metadata.name && gldtRefs(es).length > 0) queue.add(queueKey("ExternalSecret", ns, es.metadata.name))
      }
      for (const c of cache.informed.consumers.list(ns)) {
        const target = (c.spec as { target?: { name?: string } } | undefined)?.target?.name ?? c.metadata.name
        if (target === secret.metadata.name) queue.add(queueKey("GitlabDeployTokenConsumer", ns, c.metadata.name))
      }
    })
    cache.informed.authSecrets.on((verb, secret) => {
      if (verb !== "delete" && secret.metadata.deletionTimestamp !== undefined && (secret.metadata.finalizers ?? []).includes(AUTH_FINALIZER)) {
        queue.add(`auth/${secret.metadata.namespace}/${secret.metadata.name}`, { first: true })
      }
    })
    cache.informed.caConfigMaps.on((verb, m) => {
      const k = verb === "delete" ? undefined : caKey(m)
      if (k !== undefined) queue.add(k, { first: true })
    })

    // Probes and metrics.
    let leading = !flags.leaderElect
    metrics.isLeader.set(leading ? 1 : 0)
    if (flags.healthProbeBindAddress !== undefined) {
      yield* serve(
        "health probes",
        flags.healthProbeBindAddress,
        healthRoute(() => (cache.synced() ? { ok: true, why: "" } : { ok: false, why: "informer caches are not synced yet" })),
      )
    }
    if (flags.metricsBindAddress !== undefined) yield* serve("metrics", flags.metricsBindAddress, metricsRoute(metrics.registry))

    yield* Cache.start(cache)
    yield* Effect.logInfo("caches synced").pipe(
      Effect.annotateLogs({
        externalSecrets: cache.informed.externalSecrets.list().length,
        consumers: cache.informed.consumers.list().length,
        namespaces: flags.namespaces.length === 0 ? "all" : flags.namespaces.join(","),
        esoPresent,
      }),
    )

    // Re-check for ESO now and then: one that is installed later takes ExternalSecrets over.
    if (flags.esoCoexistence === "auto") {
      yield* Effect.forkScoped(
        Effect.gen(function* () {
          for (;;) {
            yield* Effect.sleep(60_000)
            const now = yield* detectEso(kube)
            if (now !== undefined && now !== esoPresent) {
              esoPresent = now
              yield* Effect.logWarning(
                now ? "External Secrets Operator appeared: leaving ExternalSecrets to it" : "External Secrets Operator is gone: serving ExternalSecrets",
              )
              for (const es of cache.informed.externalSecrets.list()) queue.add(queueKey("ExternalSecret", es.metadata.namespace!, es.metadata.name))
            }
          }
        }),
      )
    }

    const processKey = (key: string) =>
      Effect.gen(function* () {
        const started = performance.now()
        let outcome: Reconciler.Outcome
        if (key.startsWith("generators/")) {
          outcome = yield* reconciler.runGenerators(key.slice("generators/".length))
        } else if (key.startsWith("clustergenerators/")) {
          outcome = yield* reconciler.runClusterGenerator(key.slice("clustergenerators/".length))
        } else if (key.startsWith("auth/")) {
          const [, ns, name] = key.split("/")
          outcome = yield* reconciler.runAuth(ns!, name!)
        } else if (key.startsWith("ca/")) {
          const [, ns, name] = key.split("/")
          outcome = yield* reconciler.runCa(ns!, name!)
        } else {
          const parsed = parseQueueKey(key)
          if (parsed === undefined) return
          outcome = yield* reconciler.run(parsed.kind, parsed.namespace, parsed.name).pipe(Effect.annotateLogs({ key }))
        }
        const seconds = (performance.now() - started) / 1000
        const result = outcome._tag === "Done" ? "success" : outcome._tag === "BadInput" ? "bad_input" : "error"
        metrics.reconcileDuration.observe({ result }, seconds)
        metrics.reconcileTotal.inc({ result })
        switch (outcome._tag) {
          case "Done":
            queue.forget(key)
            if (outcome.requeueAfterMs !== undefined) queue.addAfter(key, outcome.requeueAfterMs)
            break
          case "BadInput": {
            // Bad input waits for a fix; a change to the consumer or generator retries at once.
            queue.addRateLimited(key, { baseMs: 5_000, maxMs: 60_000 })
            yield* Effect.logWarning("bad input; nothing minted").pipe(Effect.annotateLogs({ key, problem: outcome.message }))
            break
          }
          case "Retry": {
            // Core's own back-off (a revocation's) sets the time when it gives one; else the key's.
            const delay = outcome.retryAfterMs ?? queue.addRateLimited(key)
            if (outcome.retryAfterMs !== undefined) queue.addAfter(key, outcome.retryAfterMs)
            yield* Effect.logWarning("reconcile failed; retrying").pipe(Effect.annotateLogs({ key, error: outcome.message, retryInMs: delay }))
            break
          }
        }
      }).pipe(
        Effect.catchDefect((d) =>
          Effect.gen(function* () {
            queue.addRateLimited(key)
            yield* Effect.logError("reconcile crashed").pipe(Effect.annotateLogs({ key, defect: String(d) }))
          }),
        ),
        Effect.ensuring(Effect.sync(() => queue.done(key))),
        // A reconcile in flight finishes even during shutdown.
        Effect.uninterruptible,
      )

    const worker = (firstOnly: boolean) =>
      Effect.gen(function* () {
        for (;;) {
          const key = yield* queue.take({ firstOnly })
          if (key === undefined) return
          yield* processKey(key)
        }
      })

    const work = Effect.gen(function* () {
      const fibers = []
      for (let i = 0; i < flags.concurrency; i++) fibers.push(yield* Effect.forkChild(worker(false)))
      // One more, for consumers never synced only: a new ExternalSecret never waits for a busy worker.
      fibers.push(yield* Effect.forkChild(worker(true)))
      yield* Effect.logInfo("controller started").pipe(Effect.annotateLogs({ identity, concurrency: flags.concurrency }))
      yield* Fiber.joinAll(fibers)
    }).pipe(Effect.onInterrupt(() => Effect.sync(() => queue.shutDown())))

    if (!flags.leaderElect) return yield* work

    const election = LeaderElection.make(kc, {
      namespace: flags.leaderElectionNamespace ?? inClusterNamespace() ?? "default",
      name: flags.leaderElectionId,
      identity,
      leaseDurationMs: flags.leaseDurationMs,
      renewDeadlineMs: flags.renewDeadlineMs,
      retryPeriodMs: flags.retryPeriodMs,
    })
    yield* election.acquire
    leading = true
    metrics.isLeader.set(1)
    yield* Effect.addFinalizer(() => election.release.pipe(Effect.ignore))
    return yield* Effect.raceFirst(work, election.keepRenewing)
  }).pipe(Effect.scoped)

const inClusterNamespace = (): string | undefined => {
  try {
    return readFileSync("/var/run/secrets/kubernetes.io/serviceaccount/namespace", "utf8").trim()
  } catch {
    return undefined
  }
}
