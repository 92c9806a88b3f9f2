/**
 * What the fault suite and `pnpm bench` set up around the lifecycle: virtual time shared by the
 * lifecycle and the in-process simulator, and a maintainer with an api token on a project of its own.
 */
import type { Simulator } from "@gldt/gitlab-sim"
import { type Clock, Duration, Effect } from "effect"

export interface OffsetClockOptions {
  /** A sleep longer than this jumps the clock forward at once instead of waiting (default: never). */
  readonly jumpSleepsOverMs?: number
}

/**
 * Real time plus an offset a run moves forward (`offset += ms`); pass `now` to the simulator and
 * `clock` to the lifecycle so both see the same time. Shorter sleeps (HTTP timeouts, the client's
 * retry delays) pass in real time.
 */
export class OffsetClock {
  offset = 0
  readonly now = () => Date.now() + this.offset
  readonly clock: Clock.Clock

  constructor(options: OffsetClockOptions = {}) {
    const jumpOver = options.jumpSleepsOverMs ?? Number.POSITIVE_INFINITY
    this.clock = {
      currentTimeMillisUnsafe: () => this.now(),
      currentTimeMillis: Effect.sync(() => this.now()),
      currentTimeNanosUnsafe: () => BigInt(this.now()) * 1_000_000n,
      currentTimeNanos: Effect.sync(() => BigInt(this.now()) * 1_000_000n),
      monotonicTimeNanosUnsafe: () => process.hrtime.bigint(),
      monotonicTimeNanos: Effect.sync(() => process.hrtime.bigint()),
      sleep: (d: Duration.Duration) => {
        const ms = Duration.toMillis(d)
        if (ms > jumpOver) {
          return Effect.sync(() => {
            this.offset += ms
          })
        }
        return Effect.promise(() => new Promise<void>((r) => setTimeout(r, ms)))
      },
    }
  }
}

/** Adds `user` with an `api` access token and a new project at `path` it maintains. */
export const addMaintainedProject = (sim: Simulator, options: { readonly user: string; readonly path: string }) => {
  sim.addUser({ name: options.user })
  const pat = sim.addAccessToken({ user: options.user, scopes: ["api"] })
  const project = sim.addProject({ path: options.path, members: { [options.user]: "maintainer" } })
  return { pat, project }
}
