/**
 * A work queue with client-go's semantics: a key is queued at most once however often it is added,
 * is never handed to two workers at once (an add while it is being processed re-queues it after
 * `done`), can be added after a delay (the earliest delay wins), and failing keys come back with a
 * per-key exponential back-off that `forget` resets.
 *
 * Keys added with `first: true` (consumers never synced) wait in a lane of their own that workers
 * drain before the rest, and that a worker of its own may serve (`take({ firstOnly: true })`): a
 * new ExternalSecret waits neither behind a thousand refreshes nor for a busy worker.
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

export class WorkQueue {
  private readonly queue: Array<string> = []
  private readonly firstLane: Array<string> = []
  private readonly dirty = new Set<string>()
  private readonly processing = new Set<string>()
  private readonly timers = new Map<string, { at: number; timer: NodeJS.Timeout }>()
  private readonly failures = new Map<string, number>()
  private readonly waiters: Array<(key: string | undefined) => void> = []
  /** Workers that take first-lane keys only (see `take`). */
  private readonly firstWaiters: Array<(key: string | undefined) => void> = []
  private shuttingDown = false

  private readonly backoff: BackoffOptions

  constructor(backoff: BackoffOptions = { baseMs: 1_000, maxMs: 300_000 }) {
    this.backoff = backoff
  }

  /** Keys waiting (not counting delayed ones or those being processed). */
  get depth(): number {
    return this.queue.length + this.firstLane.length
  }

  /** The next waiting key, first lane first. */
  private next(): string | undefined {
    return this.firstLane.shift() ?? this.queue.shift()
  }

  get delayed(): number {
    return this.timers.size
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
        }
      }
      return
    }
    this.dirty.add(key)
    if (this.processing.has(key)) return
    const waiter = (first ? this.firstWaiters.shift() : undefined) ?? this.waiters.shift()
    if (waiter !== undefined) {
      this.dirty.delete(key)
      this.processing.add(key)
      waiter(key)
    } else (first ? this.firstLane : this.queue).push(key)
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
    const key = this.next()
    if (key !== undefined) {
      this.dirty.delete(key)
      this.processing.add(key)
      return Promise.resolve(key)
    }
    if (this.shuttingDown) return Promise.resolve(undefined)
    return new Promise((resolve) => this.waiters.push(resolve))
  }

  done(key: string): void {
    this.processing.delete(key)
    if (this.dirty.has(key)) {
      this.dirty.delete(key)
      this.add(key)
    }
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
      let settled = false
      const firstOnly = options?.firstOnly === true
      const waiters = firstOnly ? this.firstWaiters : this.waiters
      const key = firstOnly ? this.firstLane.shift() : this.next()
      if (key !== undefined) {
        this.dirty.delete(key)
        this.processing.add(key)
        resume(Effect.succeed(key))
        return
      }
      if (this.shuttingDown) {
        resume(Effect.succeed(undefined))
        return
      }
      const waiter = (k: string | undefined) => {
        settled = true
        resume(Effect.succeed(k))
      }
      waiters.push(waiter)
      return Effect.sync(() => {
        if (settled) return
        const i = waiters.indexOf(waiter)
        if (i >= 0) waiters.splice(i, 1)
      })
    })
}
