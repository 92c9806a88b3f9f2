/**
 * A work queue with client-go's semantics: a key is queued at most once however often it is added,
 * is never handed to two workers at once (an add while it is being processed re-queues it after
 * `done`), can be added after a delay (the earliest delay wins), and failing keys come back with a
 * per-key exponential back-off that `forget` resets.
 *
 * Keys added with `first: true` (consumers never synced) wait in a lane of their own that workers
 * drain before the rest, and that a worker of its own may serve (`take({ firstOnly: true })`);
 * `maxRefreshing` keeps some workers free of refreshes: a new ExternalSecret waits neither behind a
 * thousand refreshes nor for a busy worker, nor behind the API server queue they would build.
 */
import { Effect } from "effect"

export interface BackoffOptions {
  readonly baseMs: number
  readonly maxMs: number
}

/** Per-key back-off: base·2^(failures-1), capped, with ±10 % jitter so keys that failed together spread out. */
export const backoffDelay = (failures: number, o: BackoffOptions, random: () => number = Math.random): number => {
  const raw = Math.min(o.maxMs, o.baseMs * 2 ** Math.max(0, failures - 1))
  return Math.round(raw * (0.9 + 0.2 * random()))
}

export interface WorkQueueOptions extends BackoffOptions {
  /**
   * How many keys of the normal lane (refreshes of consumers already synced) may be processed at
   * once; the other workers stay free for first-lane keys. Default: no limit.
   */
  readonly maxRefreshing?: number | undefined
}

type Waiter = (key: string | undefined) => void

export class WorkQueue {
  private readonly queue: Array<string> = []
  private readonly firstLane: Array<string> = []
  private readonly dirty = new Set<string>()
  private readonly processing = new Set<string>()
  /** Normal-lane keys being processed (counted against `maxRefreshing`). */
  private readonly refreshing = new Set<string>()
  private readonly timers = new Map<string, { at: number; timer: NodeJS.Timeout }>()
  private readonly failures = new Map<string, number>()
  private readonly waiters: Array<Waiter> = []
  /** Workers that take first-lane keys only (see `take`). */
  private readonly firstWaiters: Array<Waiter> = []
  private shuttingDown = false

  private readonly backoff: BackoffOptions
  private readonly maxRefreshing: number

  constructor(options: WorkQueueOptions = { baseMs: 1_000, maxMs: 300_000 }) {
    this.backoff = { baseMs: options.baseMs, maxMs: options.maxMs }
    this.maxRefreshing = options.maxRefreshing ?? Number.POSITIVE_INFINITY
  }

  /** Keys waiting (not counting delayed ones or those being processed). */
  get depth(): number {
    return this.queue.length + this.firstLane.length
  }

  get delayed(): number {
    return this.timers.size
  }

  /** Hands waiting keys to waiting workers: first lane first, refreshes while under `maxRefreshing`. */
  private dispatch(): void {
    for (;;) {
      if (this.firstLane.length > 0) {
        const waiter = this.firstWaiters.shift() ?? this.waiters.shift()
        if (waiter === undefined) return
        this.handOut(this.firstLane.shift()!, false, waiter)
      } else if (this.queue.length > 0 && this.refreshing.size < this.maxRefreshing) {
        const waiter = this.waiters.shift()
        if (waiter === undefined) return
        this.handOut(this.queue.shift()!, true, waiter)
      } else return
    }
  }

  private handOut(key: string, refresh: boolean, waiter: Waiter): void {
    this.dirty.delete(key)
    this.processing.add(key)
    if (refresh) this.refreshing.add(key)
    waiter(key)
  }

  add(key: string, options?: { readonly first?: boolean }): void {
    if (this.shuttingDown) return
    const first = options?.first === true
    if (this.dirty.has(key)) {
      // Already waiting: a first-lane add moves it up.
      if (first && !this.processing.has(key)) {
        const i = this.queue.indexOf(key)
        if (i >= 0) {
          this.queue.splice(i, 1)
          this.firstLane.push(key)
          this.dispatch()
        }
      }
      return
    }
    this.dirty.add(key)
    if (this.processing.has(key)) return
    ;(first ? this.firstLane : this.queue).push(key)
    this.dispatch()
  }

  /** Adds the key after `ms`; an earlier pending delay for the same key is kept. */
  addAfter(key: string, ms: number): void {
    if (this.shuttingDown) return
    if (ms <= 0) {
      this.add(key)
      return
    }
    const at = Date.now() + ms
    const existing = this.timers.get(key)
    if (existing !== undefined && existing.at <= at) return
    if (existing !== undefined) clearTimeout(existing.timer)
    const timer = setTimeout(() => {
      this.timers.delete(key)
      this.add(key)
    }, ms)
    timer.unref()
    this.timers.set(key, { at, timer })
  }

  /** Re-adds a failed key after its back-off (the queue's, or `backoff`); returns the delay. */
  addRateLimited(key: string, backoff: BackoffOptions = this.backoff): number {
    const n = (this.failures.get(key) ?? 0) + 1
    this.failures.set(key, n)
    const delay = backoffDelay(n, backoff)
    this.addAfter(key, delay)
    return delay
  }

  /** The key succeeded: its back-off starts over. */
  forget(key: string): void {
    this.failures.delete(key)
  }

  failuresOf(key: string): number {
    return this.failures.get(key) ?? 0
  }

  /** Next key to process; undefined once shut down. Call `done` when finished with it. */
  get(): Promise<string | undefined> {
    if (this.shuttingDown) return Promise.resolve(undefined)
    return new Promise((resolve) => {
      this.waiters.push(resolve)
      this.dispatch()
    })
  }

  done(key: string): void {
    this.processing.delete(key)
    this.refreshing.delete(key)
    if (this.dirty.has(key)) {
      this.dirty.delete(key)
      this.add(key)
    }
    this.dispatch()
  }

  /** Stops handing out keys; workers waiting in `get` receive undefined. */
  shutDown(): void {
    this.shuttingDown = true
    for (const { timer } of this.timers.values()) clearTimeout(timer)
    this.timers.clear()
    for (const w of [...this.waiters.splice(0), ...this.firstWaiters.splice(0)]) w(undefined)
  }

  /**
   * `get` as an Effect (interruptible while waiting). With `firstOnly`, only first-lane keys: a
   * worker kept for them means a new consumer never waits for a busy one.
   */
  take = (options?: { readonly firstOnly?: boolean }): Effect.Effect<string | undefined> =>
    Effect.callback<string | undefined>((resume) => {
      if (this.shuttingDown) {
        resume(Effect.succeed(undefined))
        return
      }
      let settled = false
      const waiters = options?.firstOnly === true ? this.firstWaiters : this.waiters
      const waiter: Waiter = (k) => {
        settled = true
        resume(Effect.succeed(k))
      }
      waiters.push(waiter)
      this.dispatch()
      if (settled) return
      return Effect.sync(() => {
        if (settled) return
        const i = waiters.indexOf(waiter)
        if (i >= 0) waiters.splice(i, 1)
      })
    })
}
