/**
 * Which watch events start which reconciles: an event that changes nothing a reconcile reads
 * (status, gldt's own finalizers) starts none, and a generator's event wakes only its consumers.
 */
import type { Obj, Verb } from "./Cache.ts"
import { AUTH_FINALIZER, CONSUMER_FINALIZER, GENERATOR_FINALIZER } from "./Consumer.ts"

const OWN_FINALIZERS = new Set([CONSUMER_FINALIZER, GENERATOR_FINALIZER, AUTH_FINALIZER])

/**
 * The signature of an object's fields whose change needs a reconcile. Status-only updates do not,
 * nor do gldt's own finalizers coming and going: the reconcile that added one needs no second run.
 */
export const signature = (o: Obj) =>
  JSON.stringify([
    o.metadata.generation,
    o.metadata.labels ?? {},
    o.metadata.annotations ?? {},
    (o.metadata.finalizers ?? []).filter((f) => !OWN_FINALIZERS.has(f)),
    o.metadata.deletionTimestamp !== undefined,
    o.metadata.resourceVersion === undefined ? 0 : 1,
  ])

/** Remembers each object's signature; says whether an event changes it (add and delete always do). */
export const changeFilter = () => {
  const seen = new Map<string, string>()
  return (verb: Verb, o: Obj): boolean => {
    const uid = o.metadata.uid ?? `${o.metadata.namespace}/${o.metadata.name}`
    if (verb === "delete") {
      seen.delete(uid)
      return true
    }
    const sig = signature(o)
    const unchanged = verb === "update" && seen.get(uid) === sig
    seen.set(uid, sig)
    return !unchanged
  }
}

/** A generator's identity: ClusterGenerators are cluster-wide, GitlabDeployTokens live in the consumer's namespace. */
export const generatorKey = (kind: string, namespace: string, name: string) =>
  kind === "ClusterGenerator" ? `${kind}//${name}` : `${kind}/${namespace}/${name}`

/** Which consumers (queue keys) use each generator, so a generator event wakes only those. */
export class GeneratorUsers {
  private readonly byGenerator = new Map<string, Set<string>>()
  private readonly byConsumer = new Map<string, ReadonlyArray<string>>()

  set(consumer: string, generators: ReadonlyArray<string>): void {
    for (const g of this.byConsumer.get(consumer) ?? []) {
      const set = this.byGenerator.get(g)
      set?.delete(consumer)
      if (set?.size === 0) this.byGenerator.delete(g)
    }
    if (generators.length === 0) this.byConsumer.delete(consumer)
    else this.byConsumer.set(consumer, generators)
    for (const g of generators) {
      let set = this.byGenerator.get(g)
      if (set === undefined) {
        set = new Set()
        this.byGenerator.set(g, set)
      }
      set.add(consumer)
    }
  }

  of(generator: string): ReadonlyArray<string> {
    return [...(this.byGenerator.get(generator) ?? [])]
  }
}

/** A consumer never synced: it goes ahead of refreshes, so a new ExternalSecret waits for no rotation. */
export const isNew = (o: Obj) => (o.status as { syncedResourceVersion?: unknown } | undefined)?.syncedResourceVersion === undefined
