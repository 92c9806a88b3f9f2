/**
 * The controller's Prometheus metrics (prom-client), one registry per process. Names are a contract:
 * gldt_tokens_minted_total, gldt_tokens_revoked_total, gldt_revocation_failures_total,
 * gldt_revocations_pending and gldt_suspects. No label ever carries a token or a secret; labels are
 * status codes, methods, GitLab origins and outcome words.
 */
import { Context, Effect, Layer } from "effect"
import * as Prom from "prom-client"

export interface MetricsShape {
  readonly registry: Prom.Registry
  readonly minted: Prom.Counter<never>
  readonly revoked: Prom.Counter<never>
  readonly revocationFailures: Prom.Counter<never>
  /** Per ExternalSecret key: retiring tokens not yet revoked (summed by the gauge's collect). */
  readonly pendingByKey: Map<string, number>
  readonly suspectsByKey: Map<string, number>
  readonly gitlabRequests: Prom.Counter<"method" | "code" | "instance">
  readonly gitlabLatency: Prom.Histogram<"method" | "code" | "instance">
  readonly reconcileDuration: Prom.Histogram<"result">
  readonly reconcileTotal: Prom.Counter<"result">
  readonly queueDepth: Prom.Gauge<never>
  /** Where the queue-depth gauge reads from (the queue is made after the metrics). */
  readonly depthSource: { fn: () => number }
  readonly isLeader: Prom.Gauge<never>
}

export class Metrics extends Context.Service<Metrics, MetricsShape>()("@gldt/controller/Metrics") {
  static readonly layer = Layer.effect(
    Metrics,
    Effect.sync(() => make()),
  )
}

export const make = (): MetricsShape => {
  const registry = new Prom.Registry()
  Prom.collectDefaultMetrics({ register: registry, prefix: "gldt_controller_" })
  const pendingByKey = new Map<string, number>()
  const suspectsByKey = new Map<string, number>()
  const sum = (m: Map<string, number>) => [...m.values()].reduce((a, b) => a + b, 0)
  const depth = { fn: () => 0 }
  const metrics: MetricsShape = {
    registry,
    minted: new Prom.Counter({ name: "gldt_tokens_minted_total", help: "Deploy tokens created in GitLab.", registers: [registry] }),
    revoked: new Prom.Counter({ name: "gldt_tokens_revoked_total", help: "Deploy tokens revoked in GitLab (confirmed).", registers: [registry] }),
    revocationFailures: new Prom.Counter({
      name: "gldt_revocation_failures_total",
      help: "Revocations that failed; the token stays tracked and is tried again.",
      registers: [registry],
    }),
    pendingByKey,
    suspectsByKey,
    gitlabRequests: new Prom.Counter({
      name: "gldt_gitlab_requests_total",
      help: "HTTP requests sent to GitLab, by method, status code (0 = no answer) and instance.",
      labelNames: ["method", "code", "instance"] as const,
      registers: [registry],
    }),
    gitlabLatency: new Prom.Histogram({
      name: "gldt_gitlab_request_duration_seconds",
      help: "Latency of GitLab requests, by method, status code and instance.",
      labelNames: ["method", "code", "instance"] as const,
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [registry],
    }),
    reconcileDuration: new Prom.Histogram({
      name: "gldt_reconcile_duration_seconds",
      help: "Time to reconcile one consumer, by result (success, error, skipped).",
      labelNames: ["result"] as const,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [registry],
    }),
    reconcileTotal: new Prom.Counter({
      name: "gldt_reconcile_total",
      help: "Reconciles, by result.",
      labelNames: ["result"] as const,
      registers: [registry],
    }),
    queueDepth: new Prom.Gauge({
      name: "gldt_workqueue_depth",
      help: "Consumers waiting in the work queue.",
      registers: [registry],
      collect() {
        this.set(depth.fn())
      },
    }),
    depthSource: depth,
    isLeader: new Prom.Gauge({ name: "gldt_leader", help: "1 while this replica leads (always 1 without --leader-elect).", registers: [registry] }),
  }
  new Prom.Gauge({
    name: "gldt_revocations_pending",
    help: "Replaced or orphaned tokens tracked and not yet revoked (grace running, or revocation failing).",
    registers: [registry],
    collect() {
      this.set(sum(pendingByKey))
    },
  })
  new Prom.Gauge({
    name: "gldt_suspects",
    help: "Tokens that may be orphans of an interrupted create and are left for a person to decide.",
    registers: [registry],
    collect() {
      this.set(sum(suspectsByKey))
    },
  })
  return metrics
}
