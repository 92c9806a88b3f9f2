/**
 * Randomized fault and crash suite. Each seeded run drives a random sequence of reconciles, forced
 * rotations, spec changes, permission changes and tokens made by someone else through the real
 * GitLab client against the simulator, with random faults on create, list and delete and random
 * crashes between any two service calls (the program is abandoned; State and the simulator
 * survive), each followed by recovery. After the run the simulator's own record is compared with
 * State to check I1–I6.
 */
import {
  type Connection,
  type DeployTokenSpec,
  GitLab,
  type Job,
  MemorySink,
  recover,
  reconcile,
  revokeAll,
  rotate,
  Sink,
  State,
  type StateRecord,
  validateSpec,
} from "@gldt/core"
import { layer as gitlabLayer } from "@gldt/gitlab"
import { type FaultRule, type Simulator, seededRandom, startSimulator } from "@gldt/gitlab-sim"
import { Clock, Context, Duration, Effect, Exit, Layer, Logger, Option, Random, Redacted } from "effect"

const HOUR = 3_600_000
const MIN = 60_000
/** The client gives up after this; the slowest injected answer takes longer, so creates can land after a timeout. */
const REQUEST_TIMEOUT_MS = 400
const SLOW_MS = 600
/** Every injected request has finished on the server this long after it was sent. */
const SETTLE_MS = 1_000

export interface RunResult {
  readonly seed: number
  readonly steps: number
  readonly faults: number
  readonly crashes: number
  /** Tokens gldt made that are live in the simulator and not tracked by State after recovery (I1). */
  readonly leaked: number
  /** Look-alikes kept as suspects (tracked, surfaced, untouched). */
  readonly suspects: number
  readonly mints: number
  readonly violations: ReadonlyArray<string>
  readonly trace: ReadonlyArray<string>
}

export interface SuiteOptions {
  /** Per service call probability of a crash before or after it. */
  readonly crashProbability?: number
  /** Per step probability of arming a fault. */
  readonly faultProbability?: number
  readonly steps?: number
  /** Negative control: mint one token outside the lifecycle, which the checks must report. */
  readonly tamper?: boolean
}

/** A crash of the process: the program is abandoned wherever it is. */
class Crash extends Error {
  constructor(where: string) {
    super(`crash ${where}`)
  }
}

/** Time for the lifecycle and the simulator: real time plus an offset the run jumps forward. */
export class OffsetClock {
  offset = 0
  readonly now = () => Date.now() + this.offset
  readonly clock: Clock.Clock = {
    currentTimeMillisUnsafe: () => this.now(),
    currentTimeMillis: Effect.sync(() => this.now()),
    currentTimeNanosUnsafe: () => BigInt(this.now()) * 1_000_000n,
    currentTimeNanos: Effect.sync(() => BigInt(this.now()) * 1_000_000n),
    monotonicTimeNanosUnsafe: () => process.hrtime.bigint(),
    monotonicTimeNanos: Effect.sync(() => process.hrtime.bigint()),
    sleep: (d: Duration.Duration) => Effect.promise(() => new Promise((r) => setTimeout(r, Duration.toMillis(d)))),
  }
}

const SCOPE_SETS = [["read_repository", "read_registry"], ["read_registry"]] as const

const specFor = (url: string, path: string, variant: number): DeployTokenSpec => {
  const r = validateSpec(
    {
      url,
      projectID: path,
      name: "eso-managed",
      username: "eso",
      scopes: SCOPE_SETS[variant % 2],
      // Odd variants carry no expiry, so recovery has no nonce and must fall back to suspects.
      ...(variant % 4 < 2 ? { expiresAfter: "720h" } : {}),
      auth: { token: { secretRef: { name: "gitlab-api-token", key: "token" } } },
    },
    { allowHttp: true },
  )
  if (r.spec === undefined) throw new Error(JSON.stringify(r.problems))
  return r.spec
}

const trackedIds = (r: StateRecord | undefined): Set<number> =>
  new Set(
    r === undefined
      ? []
      : [...(r.current ? [r.current.id] : []), ...(r.pending ? [r.pending.id] : []), ...r.retiring.map((t) => t.id), ...r.suspects.map((s) => s.id)],
  )

/** Wraps every method of a service so a crash can strike before or after the call. */
const crashing = <S extends object>(service: S, name: string, maybeCrash: (where: string) => Effect.Effect<void>): S => {
  const out: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(service)) {
    if (typeof v !== "function" || k === "withLock") {
      out[k] = typeof v === "function" ? v.bind(service) : v
      continue
    }
    out[k] = (...args: unknown[]) =>
      Effect.gen(function* () {
        yield* maybeCrash(`before ${name}.${k}`)
        const result = yield* (v as (...a: unknown[]) => Effect.Effect<unknown, unknown>).apply(service, args)
        yield* maybeCrash(`after ${name}.${k}`)
        return result
      })
  }
  return out as S
}

/**
 * Runs `seeds` over `lanes` independent simulators, each with its own clock: runs mostly wait on
 * I/O and injected latency, so lanes overlap well even on two cores. Results come back in seed order.
 */
export const runMany = async (seeds: ReadonlyArray<number>, lanes = 4, options: SuiteOptions = {}): Promise<RunResult[]> => {
  const results = new Map<number, RunResult>()
  let next = 0
  await Promise.all(
    Array.from({ length: Math.min(lanes, seeds.length) }, async () => {
      const clock = new OffsetClock()
      const sim = await startSimulator({ now: clock.now })
      try {
        while (next < seeds.length) {
          const seed = seeds[next++]!
          results.set(seed, await runOne(sim, clock, seed, options))
        }
      } finally {
        await sim.close()
      }
    }),
  )
  return seeds.map((s) => results.get(s)!)
}

export const runOne = async (sim: Simulator, clock: OffsetClock, seed: number, options: SuiteOptions = {}): Promise<RunResult> => {
  const rng = seededRandom(seed)
  const pick = <A>(xs: ReadonlyArray<A>): A => xs[Math.floor(rng() * xs.length)]!
  const crashP = options.crashProbability ?? 0.02
  const faultP = options.faultProbability ?? 0.5
  const stepCount = options.steps ?? 12
  const trace: string[] = []
  const violations: string[] = []
  const logs: string[] = []
  let crashes = 0
  let crashesArmed = true
  let createCalls = 0

  const user = `bot-${seed}`
  sim.addUser({ name: user })
  const pat = sim.addAccessToken({ user, scopes: ["api"] })
  const path = `fault/run-${seed}`
  sim.addProject({ path, members: { [user]: "maintainer" } })
  const projectRe = `^/api/v4/projects/${encodeURIComponent(path).replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}/deploy_tokens`
  const connection: Connection = { url: sim.url, accessToken: Redacted.make(pat), allowHttp: true }
  const graceMs = pick([0, 5 * MIN, 15 * MIN])
  let variant = Math.floor(rng() * 4)
  const key = `ns/consumer-${seed}`
  const createSettleMs = SETTLE_MS
  const job = (): Job => ({
    key,
    spec: specFor(sim.url, path, variant),
    connection,
    policy: { refreshIntervalMs: HOUR, graceMs, createSettleMs },
  })

  const maybeCrash = (where: string) =>
    Effect.suspend(() => {
      if (crashesArmed && rng() < crashP) {
        crashes++
        trace.push(`  ${where}: CRASH`)
        return Effect.die(new Crash(where))
      }
      return Effect.void
    })

  const capture = Logger.formatLogFmt.pipe(
    // biome-ignore lint/suspicious/useIterableCallbackReturn: Logger.map, not Array.prototype.map
    Logger.map((line: string) => {
      logs.push(line)
    }),
  )
  const baseServices = Layer.mergeAll(State.layerMemory, MemorySink.sinkLayer, gitlabLayer({ requestTimeout: REQUEST_TIMEOUT_MS, maxAttempts: 3, baseDelay: "1 millis", maxDelay: "20 millis" }))
  const services = Layer.effectContext(
    Effect.gen(function* () {
      const state = yield* State
      const sink = yield* Sink
      const gitlab = yield* GitLab
      const counted = GitLab.of({
        ...gitlab,
        create: (...args) =>
          Effect.suspend(() => {
            createCalls += 1
            return gitlab.create(...args)
          }),
      })
      return Context.make(State, crashing(state, "State", maybeCrash)).pipe(
        Context.add(Sink, crashing(sink, "Sink", maybeCrash)),
        Context.add(GitLab, crashing(counted, "GitLab", maybeCrash)),
        Context.add(MemorySink, yield* MemorySink),
      )
    }),
  ).pipe(Layer.provide(baseServices), Layer.provideMerge(Logger.layer([capture])))

  const program = Effect.gen(function* () {
    const state = yield* State
    const mem = yield* MemorySink
    let faultsFired = 0
    const foreignIds: number[] = []
    // The suite's own look at State is not part of the program under test: it never crashes.
    const load = () =>
      Effect.suspend(() => {
        const armed = crashesArmed
        crashesArmed = false
        return state.load(key).pipe(
          Effect.map((o) => Option.getOrUndefined(Option.map(o, (v) => v.record))),
          Effect.ensuring(
            Effect.sync(() => {
              crashesArmed = armed
            }),
          ),
        )
      })
    const ours = () => sim.tokens().filter((t) => t.createdBy === "api" && t.ownerPath === path)

    const attempt = <A, E>(label: string, eff: Effect.Effect<A, E, State | Sink | GitLab>) =>
      Effect.gen(function* () {
        const exit = yield* Effect.exit(eff)
        if (Exit.isSuccess(exit)) {
          trace.push(`  ${label}: ok`)
          return "ok" as const
        }
        const crashed = exit.cause.reasons.some((r) => r._tag === "Die" && r.defect instanceof Crash)
        if (crashed) return "crashed" as const
        const squashed = exit.cause.reasons.find((r) => r._tag === "Fail")
        trace.push(`  ${label}: failed ${squashed && "error" in squashed ? String((squashed.error as { _tag?: string })._tag) : "defect"}`)
        if (!squashed) {
          violations.push(`seed ${seed}: unexpected defect in ${label}: ${exit.cause.toString().slice(0, 400)}`)
        }
        return "failed" as const
      })

    /** A restarted process: recovery until it completes (it can crash or fail too). */
    const restart = (waitForSettle: boolean) => Effect.gen(function* () {
      const armed = crashesArmed
      for (let i = 0; i < 20; i++) {
        // A process that keeps crashing during recovery eventually gets a clean run.
        if (i === 10) crashesArmed = false
        const r = yield* attempt("recover", recover(job(), { graceMs, createSettleMs, waitForSettle }))
        if (r === "ok") break
      }
      crashesArmed = armed
    })

    /** I1 at any quiet moment: every live token we made is tracked, or covered by an open intent. */
    const checkTracked = (when: string) =>
      Effect.gen(function* () {
        const rec = yield* load()
        const tracked = trackedIds(rec)
        const watermark = rec?.intent?.watermark
        for (const t of ours()) {
          if (!tracked.has(t.id) && !(watermark !== undefined && t.id > watermark)) {
            violations.push(`seed ${seed}: I1 token ${t.id} untracked ${when}`)
          }
        }
      })

    const countFaults = () => {
      faultsFired += sim.requests().filter((r) => r.fault !== null && r.path.startsWith(`/api/v4/projects/${encodeURIComponent(path)}`)).length
      sim.clearRequests()
    }
    for (let step = 0; step < stepCount; step++) {
      sim.faults.clear()
      sim.clearRequests()
      let slowArmed = false
      if (rng() < faultP) {
        const method = pick(["POST", "GET", "DELETE"] as const)
        const kinds = method === "GET" ? (["latency", "status5xx", "rateLimit", "reset"] as const) : (["latency", "status5xx", "rateLimit", "reset", "appliedButLost"] as const)
        const kind = pick(kinds)
        const rule: FaultRule =
          kind === "latency"
            ? { kind, ms: pick([5, 50, SLOW_MS]), method, path: projectRe, times: 1 }
            : kind === "status5xx"
              ? { kind, status: pick([500, 502, 503, 504] as const), method, path: projectRe, times: pick([1, 3]) }
              : kind === "rateLimit"
                ? { kind, retryAfter: pick([0, 0, 1]), method, path: projectRe, times: pick([1, 2]) }
                : kind === "reset"
                  ? { kind, method, path: projectRe, times: 1 }
                  : { kind, lose: pick(["reset", 502, 504] as const), method, path: projectRe, times: 1 }
        sim.faults.add(rule)
        slowArmed = rule.kind === "latency" && rule.ms > REQUEST_TIMEOUT_MS
        trace.push(`step ${step}: fault ${kind} on ${method}${"ms" in rule ? ` ${rule.ms}ms` : ""}`)
      }
      const action = pick(["advance", "advance", "advance", "rotate", "foreign", "uiRevoke", "spec", "deny", "concurrent"] as const)
      const jump = pick([0, 1, 5 * MIN, 16 * MIN, HOUR, 2 * HOUR])
      clock.offset += jump
      trace.push(`step ${step}: ${action} (+${jump / 1000}s)`)
      let outcome: "ok" | "failed" | "crashed" = "ok"
      switch (action) {
        case "advance":
          outcome = yield* attempt("reconcile", reconcile(job()))
          break
        case "rotate":
          outcome = yield* attempt("rotate", rotate(job(), clock.now()))
          break
        case "foreign": {
          const same = rng() < 0.7
          const t = sim.createForeignToken({
            target: { project: path },
            name: same ? "eso-managed" : "someone-else",
            username: same ? "eso" : "other",
            scopes: [...SCOPE_SETS[variant % 2]],
            expiresAt: pick([null, new Date(clock.now() + 720 * HOUR).toISOString(), new Date(Math.floor((clock.now() + 720 * HOUR) / 1000) * 1000).toISOString()]),
          })
          foreignIds.push(t.id)
          trace.push(`  foreign token ${t.id}`)
          outcome = yield* attempt("reconcile", reconcile(job()))
          break
        }
        case "uiRevoke":
          if (foreignIds.length > 0) sim.revokeInUi(pick(foreignIds))
          outcome = yield* attempt("reconcile", reconcile(job()))
          break
        case "spec":
          variant = (variant + 1 + Math.floor(rng() * 3)) % 4
          outcome = yield* attempt("reconcile", reconcile(job()))
          break
        case "deny": {
          const role = pick(["developer", null] as const)
          sim.setMember({ project: path }, user, role)
          trace.push(`  access ${role ?? "removed"}`)
          outcome = yield* attempt("reconcile", reconcile(job()))
          yield* checkTracked("while access is denied")
          sim.setMember({ project: path }, user, "maintainer")
          break
        }
        case "concurrent": {
          const [a, b] = yield* Effect.all([attempt("reconcile A", reconcile(job())), attempt("rotate B", rotate(job(), clock.now()))], {
            concurrency: 2,
          })
          outcome = a === "crashed" || b === "crashed" ? "crashed" : a === "failed" || b === "failed" ? "failed" : "ok"
          break
        }
      }
      countFaults()
      // Time passing lets a slow server finish what it started: requests outlive the client's timeout.
      if (slowArmed) yield* Effect.promise(() => new Promise((r) => setTimeout(r, SLOW_MS + 50)))
      if (outcome === "crashed") {
        sim.faults.clear()
        yield* restart(false)
      }
      yield* checkTracked(`after step ${step}`)
    }

    if (options.tamper) {
      yield* Effect.promise(() =>
        fetch(`${sim.url}/api/v4/projects/${encodeURIComponent(path)}/deploy_tokens`, {
          method: "POST",
          headers: { "PRIVATE-TOKEN": pat, "Content-Type": "application/json" },
          body: JSON.stringify({ name: "eso-managed", scopes: ["read_registry"] }),
        }),
      )
    }
    // Quiet the world and let a clean process finish everything.
    sim.faults.clear()
    crashesArmed = false
    yield* restart(true)
    const beforeDeletion = yield* load()
    const tracked = trackedIds(beforeDeletion)
    const liveOurs = ours()
    const leaked = liveOurs.filter((t) => !tracked.has(t.id))
    for (const t of leaked) violations.push(`seed ${seed}: I1 leaked token ${t.id}`)
    if (beforeDeletion?.intent) violations.push(`seed ${seed}: intent left open after recovery`)
    const generations = beforeDeletion?.generation ?? 0
    const suspects = beforeDeletion?.suspects.length ?? 0

    // The consumer goes away: everything of ours is revoked, nothing of anyone else's.
    const deletedAt = clock.now()
    clock.offset += 1
    for (let i = 0; i < 3; i++) {
      if ((yield* attempt("revokeAll", revokeAll(job(), { removeFromSink: true, createSettleMs }))) === "ok") break
    }
    const suspectIds = new Set(beforeDeletion?.suspects.map((s) => s.id) ?? [])
    for (const t of ours()) {
      if (!suspectIds.has(t.id)) violations.push(`seed ${seed}: token ${t.id} still live after revokeAll`)
    }

    // I2: no token left the consumer's hands before its successor was delivered plus the grace.
    const all = sim.tokens({ includeDeleted: true }).filter((t) => t.ownerPath === path)
    const history = mem.history.filter((h) => h.key === key)
    for (const t of all.filter((x) => x.createdBy === "api" && x.deletedAt !== undefined)) {
      const deleted = Date.parse(t.deletedAt!)
      if (deleted >= deletedAt) continue
      const firstHeld = history.findIndex((h) => h.tokenId === t.id)
      if (firstHeld < 0) continue
      const replaced = history.slice(firstHeld).find((h) => h.tokenId !== t.id)
      if (replaced === undefined) violations.push(`seed ${seed}: I2 token ${t.id} revoked while the sink still held it`)
      else if (deleted < replaced.at + graceMs) {
        violations.push(`seed ${seed}: I2 token ${t.id} revoked ${(replaced.at + graceMs - deleted) / 1000}s before its grace ended`)
      }
    }
    // I3: tokens made by someone else are never deleted.
    for (const t of all.filter((x) => x.createdBy === "foreign")) {
      if (t.deletedAt !== undefined) violations.push(`seed ${seed}: I3 foreign token ${t.id} was deleted`)
    }
    // I4: one create call, and at most one token, per rotation decision.
    const mints = all.filter((t) => t.createdBy === "api").length
    if (createCalls > generations) violations.push(`seed ${seed}: I4 ${createCalls} create calls for ${generations} decisions`)
    if (mints > generations) violations.push(`seed ${seed}: I4 ${mints} tokens minted for ${generations} decisions`)
    // I6: no secret in State or in the logs.
    const secrets = [pat, ...all.map((t) => t.token)]
    const stateText = JSON.stringify(beforeDeletion ?? {})
    const logText = logs.join("\n")
    for (const s of secrets) {
      if (stateText.includes(s)) violations.push(`seed ${seed}: I6 a secret is in State`)
      if (logText.includes(s)) violations.push(`seed ${seed}: I6 a secret is in the logs`)
    }
    return { seed, steps: stepCount, faults: faultsFired, crashes, leaked: leaked.length, suspects, mints, violations, trace } satisfies RunResult
  })

  return Effect.runPromise(
    program.pipe(
      Effect.provide(services),
      Effect.provideService(Clock.Clock, clock.clock),
      Random.withSeed(seed),
    ),
  )
}
