/**
 * The `kill -9` rounds of the crash tests (file and Vault backends): `gldt generate`, a few
 * uninterrupted `gldt rotate`s to learn how long one takes here, then each round a `gldt rotate`
 * killed with SIGKILL at a random moment of its usual run (a fifth of it to a tenth past its end),
 * after which the caller recovers and checks what the kill left.
 */
import { expect } from "vitest"
import { type GldtOptions, type GldtResult, gldt, median, seededRng, show, sleep, spawnGldt } from "./support.ts"

export interface KillRound {
  readonly round: number
  /** When the kill was due, ms after the spawn. */
  readonly delay: number
  /** The rotate was killed mid-run (false: it finished before its kill was due). */
  readonly killed: boolean
  readonly result: GldtResult
}

export interface KillRoundsOptions extends GldtOptions {
  /** Flags of every command (manifest, --state, --sink, …). */
  readonly flags: ReadonlyArray<string>
  readonly rounds: number
  readonly seed: number
  /** Uninterrupted rotates whose median wall time spreads the kill moments. */
  readonly calibrations: number
  /** Problems found (a rotate that was not killed and still failed is one). */
  readonly problems: string[]
  readonly beforeRound?: () => Promise<void>
  /** After each round's rotate has exited (killed or not): recover and check. */
  readonly afterRotate: (round: KillRound) => Promise<void>
}

/** Runs the rounds; returns the median uninterrupted rotate time and how many rotates were killed mid-run. */
export const killRotateRounds = async (options: KillRoundsOptions): Promise<{ readonly full: number; readonly kills: number }> => {
  const { flags, problems } = options
  const run = { cwd: options.cwd, ...(options.env === undefined ? {} : { env: options.env }) }
  const gen = await gldt(["generate", ...flags], run)
  expect(gen.code, show(gen)).toBe(0)
  const calib: number[] = []
  for (let i = 0; i < options.calibrations; i++) {
    const r = await gldt(["rotate", ...flags], run)
    expect(r.code, show(r)).toBe(0)
    calib.push(r.ms)
  }
  const full = median(calib)
  const rng = seededRng(options.seed)
  let kills = 0
  for (let round = 1; round <= options.rounds; round++) {
    await options.beforeRound?.()
    const delay = Math.round(full * (0.2 + 0.9 * rng()))
    const p = spawnGldt(["rotate", ...flags], run)
    const finished = await Promise.race([p.done.then(() => true), sleep(delay).then(() => false)])
    if (!finished) p.child.kill("SIGKILL")
    const result = await p.done
    const killed = result.signal === "SIGKILL"
    if (killed) kills++
    else if (result.code !== 0) problems.push(`round ${round}: unkilled rotate failed: ${show(result)}`)
    await options.afterRotate({ round, delay, killed, result })
  }
  return { full, kills }
}
