/**
 * One shared informer cache per resource kind (list + watch), read by every worker. With
 * `--namespace` there is one informer per namespace and kind, merged behind the same interface.
 * A watch that fails is restarted with back-off; `synced` turns true once every first list is in.
 * Objects are trimmed before they are cached (see `trim`): the caches hold every watched object for
 * the process's life, so what no reader needs is memory for nothing.
 */
import { CoreV1Api, CustomObjectsApi, type KubeConfig, type KubernetesObject, ListWatch, Watch } from "@kubernetes/client-node"
import { Context, Effect, Layer, type Scope } from "effect"
import { backoffDelay } from "./WorkQueue.ts"

export interface Obj extends KubernetesObject {
  metadata: {
    name: string
    namespace?: string
    uid?: string
    generation?: number
    resourceVersion?: string
    labels?: Record<string, string>
    annotations?: Record<string, string>
    finalizers?: Array<string>
    deletionTimestamp?: Date
    ownerReferences?: Array<{ apiVersion: string; kind: string; name: string; uid: string; controller?: boolean }>
    creationTimestamp?: Date
  }
  spec?: unknown
  status?: unknown
  data?: Record<string, string>
}

export type Verb = "add" | "update" | "delete"

export interface Informed {
  get(name: string, namespace?: string): Obj | undefined
  list(namespace?: string): ReadonlyArray<Obj>
  on(cb: (verb: Verb, obj: Obj) => void): void
  /** Lists and starts watching; resolves once the first list is in the cache. */
  start(): Promise<void>
}

export interface ResourceSpec {
  readonly name: string
  /** API path prefix without namespace, e.g. `/apis/external-secrets.io/v1` or `/api/v1`. */
  readonly group: string | undefined
  readonly version: string
  readonly plural: string
  readonly namespaced: boolean
  readonly labelSelector?: string | undefined
  /**
   * What of the object the cache keeps: `all` but the bookkeeping `trim` drops, or only `metadata`
   * (kinds read for their names, labels, annotations, owners and finalizers).
   */
  readonly keep: "all" | "metadata"
}

export const RESOURCES = {
  externalSecrets: { name: "externalsecrets", group: "external-secrets.io", version: "v1", plural: "externalsecrets", namespaced: true, keep: "all" },
  consumers: {
    name: "gitlabdeploytokenconsumers",
    group: "gldt.dev",
    version: "v1alpha1",
    plural: "gitlabdeploytokenconsumers",
    namespaced: true,
    keep: "all",
  },
  generators: {
    name: "gitlabdeploytokens",
    group: "generators.external-secrets.io",
    version: "v1alpha1",
    plural: "gitlabdeploytokens",
    namespaced: true,
    keep: "all",
  },
  clusterGenerators: {
    name: "clustergenerators",
    group: "generators.external-secrets.io",
    version: "v1alpha1",
    plural: "clustergenerators",
    namespaced: false,
    keep: "all",
  },
  states: { name: "gitlabdeploytokenstates", group: "gldt.dev", version: "v1alpha1", plural: "gitlabdeploytokenstates", namespaced: true, keep: "all" },
  managedSecrets: {
    name: "secrets (managed)",
    group: undefined,
    version: "v1",
    plural: "secrets",
    namespaced: true,
    labelSelector: "reconcile.external-secrets.io/managed=true",
    keep: "metadata",
  },
  authSecrets: {
    name: "secrets (auth)",
    group: undefined,
    version: "v1",
    plural: "secrets",
    namespaced: true,
    labelSelector: "gldt.dev/auth-secret=true",
    keep: "all",
  },
  caConfigMaps: {
    name: "configmaps (caProvider)",
    group: undefined,
    version: "v1",
    plural: "configmaps",
    namespaced: true,
    labelSelector: "gldt.dev/ca-configmap=true",
    keep: "all",
  },
} as const satisfies Record<string, ResourceSpec>

export type ResourceName = keyof typeof RESOURCES

export interface CacheShape {
  readonly informed: Record<ResourceName, Informed>
  readonly synced: () => boolean
}

export class Cache extends Context.Service<Cache, CacheShape>()("@gldt/controller/Cache") {}

const pathOf = (r: ResourceSpec, namespace: string | undefined) =>
  `${r.group === undefined ? "/api" : `/apis/${r.group}`}/${r.version}${namespace === undefined ? "" : `/namespaces/${namespace}`}/${r.plural}`

const LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"

/**
 * The cached form of an object: without `metadata.managedFields` (server-side apply's field
 * bookkeeping, often bigger than the object; nothing here reads it, and every write is a JSON or
 * merge patch that leaves it alone), without kubectl's `last-applied-configuration` copy of the
 * object except on consumers (their annotations are part of the force-sync hash, so they stay as
 * the API has them), and for `keep: "metadata"` kinds without data (target Secrets: no deploy
 * token is held for the process's life; auth Secrets keep theirs, the reconciler reads the access
 * token from the cache).
 */
export const trim = (r: ResourceSpec, obj: Obj): Obj => {
  const { managedFields: _m, ...metadata } = obj.metadata as Obj["metadata"] & { managedFields?: unknown }
  const consumer = r === RESOURCES.externalSecrets || r === RESOURCES.consumers
  if (!consumer && metadata.annotations?.[LAST_APPLIED] !== undefined) {
    const { [LAST_APPLIED]: _l, ...annotations } = metadata.annotations
    metadata.annotations = annotations
  }
  if (r.keep === "metadata") return { apiVersion: obj.apiVersion, kind: obj.kind, metadata } as Obj
  return { ...obj, metadata }
}

/** Objects per list request: the first list of a big cluster arrives in pages, as client-go's reflector does. */
export const LIST_PAGE_SIZE = 250

type ListPage = { items: Array<Obj>; metadata?: { resourceVersion?: string; continue?: string; _continue?: string } }

/** client-node's informer (ListWatch) over a watch and a list that hand it trimmed objects. */
const makeTrimmingInformer = (kc: KubeConfig, r: ResourceSpec, namespace: string | undefined, pageSize: number) => {
  const page = listFn(kc, r, namespace, pageSize)
  const watch = new Watch(kc)
  const trimmingWatch = {
    watch: (
      path: string,
      query: Record<string, string | number | boolean | undefined>,
      cb: (phase: string, obj: Obj, raw: unknown) => void,
      done: (err: unknown) => void,
    ) =>
      watch.watch(
        path,
        query,
        (phase, obj, raw) => cb(phase, phase === "ADDED" || phase === "MODIFIED" || phase === "DELETED" ? trim(r, obj as Obj) : (obj as Obj), raw),
        done,
      ),
  } as unknown as Watch
  /**
   * The whole list, one page at a time (a consistent snapshot: every page is read at the first's
   * resourceVersion), each page trimmed before the next is fetched, so that the untrimmed objects of
   * a big list are never all in memory at once.
   */
  const list = async (): Promise<ListPage> => {
    const items: Array<Obj> = []
    let resourceVersion: string | undefined
    let next: string | undefined
    do {
      const res = await page(next)
      for (const o of res.items) items.push(trim(r, o))
      resourceVersion = res.metadata?.resourceVersion
      next = res.metadata?._continue ?? res.metadata?.continue
    } while (next !== undefined && next !== "")
    return { items, metadata: { ...(resourceVersion === undefined ? {} : { resourceVersion }) } }
  }
  return new ListWatch<Obj>(pathOf(r, namespace), trimmingWatch, list as never, false, r.labelSelector)
}

const listFn = (kc: KubeConfig, r: ResourceSpec, namespace: string | undefined, limit: number) => {
  if (r.group === undefined) {
    const core = kc.makeApiClient(CoreV1Api)
    const selector = r.labelSelector === undefined ? {} : { labelSelector: r.labelSelector }
    return (next: string | undefined) => {
      const paging = { limit, ...(next === undefined ? {} : { _continue: next }) }
      if (r.plural === "configmaps") {
        return (namespace === undefined
          ? core.listConfigMapForAllNamespaces({ ...selector, ...paging })
          : core.listNamespacedConfigMap({ namespace, ...selector, ...paging })) as unknown as Promise<ListPage>
      }
      return (namespace === undefined
        ? core.listSecretForAllNamespaces({ ...selector, ...paging })
        : core.listNamespacedSecret({ namespace, ...selector, ...paging })) as unknown as Promise<ListPage>
    }
  }
  const custom = kc.makeApiClient(CustomObjectsApi)
  const base = { group: r.group, version: r.version, plural: r.plural }
  return (next: string | undefined) => {
    const paging = { limit, ...(next === undefined ? {} : { _continue: next }) }
    return (
      namespace === undefined ? custom.listClusterCustomObject({ ...base, ...paging }) : custom.listNamespacedCustomObject({ ...base, namespace, ...paging })
    ) as Promise<ListPage>
  }
}

/**
 * Starts the informers of `which` (scoped: stopped when the scope closes). Objects are held as
 * `trim` leaves them; readers must not mutate them.
 */
export const make = (
  kc: KubeConfig,
  namespaces: ReadonlyArray<string>,
  which: ReadonlyArray<ResourceName>,
  pageSize: number = LIST_PAGE_SIZE,
): Effect.Effect<CacheShape, never, Scope.Scope> =>
  Effect.gen(function* () {
    const pending = new Set<string>()
    const informed = {} as Record<ResourceName, Informed>
    const stoppers: Array<() => Promise<void>> = []
    for (const name of Object.keys(RESOURCES) as Array<ResourceName>) {
      const r: ResourceSpec = RESOURCES[name]
      if (!which.includes(name)) {
        informed[name] = { get: () => undefined, list: () => [], on: () => undefined, start: () => Promise.resolve() }
        continue
      }
      const scopes: ReadonlyArray<string | undefined> = r.namespaced && namespaces.length > 0 ? namespaces : [undefined]
      const parts = scopes.map((ns) => {
        const informer = makeTrimmingInformer(kc, r, ns, pageSize)
        const id = `${r.name}${ns === undefined ? "" : ` in ${ns}`}`
        pending.add(id)
        let failures = 0
        let stopped = false
        informer.on("connect", () => undefined)
        informer.on("error", (err: unknown) => {
          if (stopped) return
          failures++
          const delay = backoffDelay(failures, { baseMs: 500, maxMs: 30_000 })
          const message = err instanceof Error ? err.message.split("\n")[0] : String((err as { message?: unknown })?.message ?? err)
          process.stderr.write(
            `${JSON.stringify({ level: "WARN", message: "watch failed; restarting", resource: id, error: message, retryInMs: delay, timestamp: new Date().toISOString() })}\n`,
          )
          setTimeout(() => {
            if (!stopped)
              informer.start().then(
                () => {
                  failures = 0
                  pending.delete(id)
                },
                () => undefined,
              )
          }, delay).unref()
        })
        stoppers.push(async () => {
          stopped = true
          await informer.stop()
        })
        return { informer, id }
      })
      informed[name] = {
        get: (n, ns) => {
          for (const p of parts) {
            const o = p.informer.get(n, ns)
            if (o !== undefined) return o
          }
          return undefined
        },
        list: (ns) => parts.flatMap((p) => p.informer.list(ns) as Array<Obj>),
        on: (cb) => {
          for (const p of parts) {
            p.informer.on("add", (o) => cb("add", o))
            p.informer.on("update", (o) => cb("update", o))
            p.informer.on("delete", (o) => cb("delete", o))
          }
        },
        start: () =>
          Promise.all(
            parts.map((p) =>
              p.informer.start().then(() => {
                pending.delete(p.id)
              }),
            ),
          ).then(() => undefined),
      }
    }
    yield* Effect.addFinalizer(() => Effect.promise(() => Promise.allSettled(stoppers.map((s) => s()))))
    return { informed, synced: () => pending.size === 0 }
  })

/** Starts every informer made by `make` (after handlers are registered); waits for the first lists. */
export const start = (cache: CacheShape): Effect.Effect<void> =>
  Effect.promise(() => Promise.allSettled(Object.values(cache.informed).map((i) => i.start()))).pipe(Effect.asVoid)

export const layer = (kc: KubeConfig, namespaces: ReadonlyArray<string>, which: ReadonlyArray<ResourceName>) => Layer.effect(Cache, make(kc, namespaces, which))

/**
 * One informer's objects grouped by a label's value, per namespace, kept current by its events: a
 * reader asking for one value gets its few objects without copying and filtering the whole
 * namespace (each `list` copies it). Made before `start`, so it sees the first list too.
 */
export class LabelIndex {
  /** `namespace/value` → uid → object. */
  private readonly groups = new Map<string, Map<string, Obj>>()
  /** uid → the group it is in. */
  private readonly groupOf = new Map<string, string>()

  private readonly label: string

  constructor(informed: Informed, label: string) {
    this.label = label
    informed.on((verb, o) => this.apply(verb, o))
  }

  private apply(verb: Verb, o: Obj): void {
    const uid = o.metadata.uid ?? `${o.metadata.namespace}/${o.metadata.name}`
    const before = this.groupOf.get(uid)
    if (before !== undefined) {
      const g = this.groups.get(before)
      g?.delete(uid)
      if (g?.size === 0) this.groups.delete(before)
      this.groupOf.delete(uid)
    }
    const value = o.metadata.labels?.[this.label]
    if (verb === "delete" || value === undefined) return
    const at = `${o.metadata.namespace ?? ""}/${value}`
    let g = this.groups.get(at)
    if (g === undefined) {
      g = new Map()
      this.groups.set(at, g)
    }
    g.set(uid, o)
    this.groupOf.set(uid, at)
  }

  /** The objects in `namespace` whose label has `value`. */
  of(namespace: string, value: string): ReadonlyArray<Obj> {
    const g = this.groups.get(`${namespace}/${value}`)
    return g === undefined ? [] : [...g.values()]
  }
}
