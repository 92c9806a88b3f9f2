/** The lock files of `lock.ts` as Effect resources: polled with a Schedule, released by a finalizer. */
import { StateBusy, StateError } from "@gldt/core/Errors"
import { Effect, Schedule, Scope } from "effect"
import { describeError } from "./fs.ts"
import { release, tryAcquire } from "./lock.ts"

export interface LockTiming {
  /** How long to wait for a lock held by a live process before failing with `StateBusy`. */
  readonly timeoutMs: number
  /** How often to look at the lock while waiting. */
  readonly pollMs: number
}

/** One attempt; registers the release in the current scope atomically with the acquisition. */
const attempt = (key: string, lockPath: string, prepare: Effect.Effect<void, StateError>) =>
  Effect.acquireRelease(
    prepare.pipe(
      Effect.andThen(
        Effect.tryPromise({
          try: () => tryAcquire(lockPath),
          catch: (e) => new StateError({ key, message: `cannot take the lock ${lockPath}: ${describeError(e)}` }),
        }),
      ),
      Effect.flatMap((a) => (a._tag === "Acquired" ? Effect.succeed(a.lock) : Effect.fail(new StateBusy({ key, holder: a.holder })))),
    ),
    (lock) =>
      Effect.tryPromise(() => release(lock)).pipe(
        Effect.flatMap((released) => (released ? Effect.void : Effect.logWarning(`lock ${lock.path} was no longer ours when released; left it in place`))),
        Effect.catch((e) => Effect.logWarning(`cannot release lock ${lock.path}: ${describeError(e)}`)),
      ),
  )

/** Waits for the lock (polling), then holds it in the current scope. */
export const acquireLock = (key: string, lockPath: string, timing: LockTiming, prepare: Effect.Effect<void, StateError>) =>
  attempt(key, lockPath, prepare).pipe(
    Effect.retry({
      schedule: Schedule.max([Schedule.spaced(timing.pollMs), Schedule.during(timing.timeoutMs)]),
      while: (e: StateBusy | StateError) => e._tag === "StateBusy",
    }),
  )

/**
 * Runs `effect` holding the lock. Waiting is interruptible; once taken, the lock is released when
 * `effect` ends however it ends (success, failure, interruption). `effect` keeps its own `Scope`
 * requirement, if any: the lock's scope is private.
 */
export const withLockFile = <A, E, R>(
  key: string,
  lockPath: string,
  timing: LockTiming,
  prepare: Effect.Effect<void, StateError>,
  effect: Effect.Effect<A, E, R>,
): Effect.Effect<A, E | StateBusy | StateError, R> =>
  Effect.uninterruptibleMask((restore) =>
    Effect.gen(function* () {
      const scope = yield* Scope.make()
      yield* restore(Scope.provide(scope)(acquireLock(key, lockPath, timing, prepare))).pipe(
        Effect.onExit((exit) => (exit._tag === "Failure" ? Scope.close(scope, exit) : Effect.void)),
      )
      return yield* restore(effect).pipe(Effect.onExit((exit) => Scope.close(scope, exit)))
    }),
  )
