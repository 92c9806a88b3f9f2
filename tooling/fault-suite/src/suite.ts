/**
 * Randomized fault and crash suite. Each seeded run drives a random sequence of reconciles, forced
 * rotations, spec changes (with and without expiry), permission changes (some lasting several
 * steps, so revocations fail for good meanwhile), project renames and moves (a new project may take
 * the old path), and tokens made by someone else, for one to three keys sharing one spec and one
 * target, through the real GitLab client against the simulator, with random faults on create, list
 * and delete and random crashes between any two service calls (the program is abandoned; State and
 * the simulator survive), each followed by recovery. After the run the simulator's own record is
 * compared with State to check I1–I6.
 */
import { type Connection, GitLab } from "@gldt/core/GitLab"
import { type Job, recover, reconcile, revokeAll, rotate } from "@gldt/core/Lifecycle"
import { layerMemory as sinkMemory, MemorySink, Sink } from "@gldt/core/Sink"
import { type DeployTokenSpec, validateSpec } from "@gldt/core/Spec"
import { layerMemory as stateMemory, State, type StateRecord } from "@gldt/core/State"
import { layer as gitlabLayer } from "@gldt/gitlab/GitLabClient"
import { type FaultRule, type Simulator, seededRandom, startSimulator } from "@gldt/gitlab-sim"
import { Clock, Context, Effect, Exit, Layer, Logger, Option, Random, Redacted } from "effect"
import { addMaintainedProject, OffsetClock } from "./SimWorld.ts"

export { OffsetClock } from "./SimWorld.ts"

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
  /**
   * Tokens gldt made that are live in the simulator and not tracked by State after recovery (I1),
   * plus tokens gldt made that it only kept as suspects: a suspect is still a live credential.
   */
  readonly leaked: number
  /** Look-alikes kept as suspects (tracked, surfaced, untouched). */
  readonly suspects: number
  /** A look-alike was injected on purpose that recovery cannot tell from its own (negative control). */
  readonly lookalikeInjected: boolean
  readonly keys: number
  /** GitLab API calls the run made, and the simulated hours it spanned (the call budget). */
  readonly calls: number
  readonly simulatedHours: number
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
  /**
   * Negative control: leave an interrupted create whose intent carries no fingerprint (as written by
   * a gldt before fingerprints) next to a look-alike: the only honest outcome is a suspect.
   */
  readonly injectLookalike?: boolean
}

/** A crash of the process: the program is abandoned wherever it is. */
class Crash extends Error {
  constructor(where: string) {
    super(`crash ${where}`)
  }
}

const SCOPE_SETS = [["read_repository", "read_registry"], ["read_registry"]] as const

const specFor = (url: string, path: string, variant: number, expiry: boolean): DeployTokenSpec => {
  const r = validateSpec(
    {
      url,
      projectID: path,
      name: "eso-managed",
      username: "eso",
      scopes: SCOPE_SETS[variant % 2],
      // Half the runs use the seed's manifest without expiry: the fingerprint must work for it too.
      ...(expiry ? { expiresAfter: "720h" } : {}),
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

/** One line for people: counts, leaks and suspects per run count, and the call budget. */
export const summarize = (results: ReadonlyArray<RunResult>): string => {
  const sum = (f: (r: RunResult) => number) => results.reduce((n, r) => n + f(r), 0)
  const plain = results.filter((r) => !r.lookalikeInjected)
  const hours = sum((r) => r.simulatedHours)
  const perHour = results.filter((r) => r.simulatedHours >= 1).map((r) => r.calls / r.simulatedHours)
  return [
    `runs ${results.length} (${results.filter((r) => r.keys > 1).length} with several keys on one target)`,
    `steps ${sum((r) => r.steps)}, faults ${sum((r) => r.faults)}, crashes ${sum((r) => r.crashes)}, tokens minted ${sum((r) => r.mints)}`,
    `leaked ${plain.reduce((n, r) => n + r.leaked, 0)} and suspects ${plain.reduce((n, r) => n + r.suspects, 0)} in ${plain.length} runs without an injected look-alike`,
    `call budget: ${sum((r) => r.calls)} GitLab calls over ${hours.toFixed(0)} simulated hours (${(sum((r) => r.calls) / Math.max(hours, 1)).toFixed(1)}/h; busiest run ${perHour.length === 0 ? 0 : Math.max(...perHour).toFixed(1)}/h)`,
  ].join("; ")
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
  let apiCalls = 0

  const user = `bot-${seed}`
  // The spec names the project by path; the project may be renamed or moved during the run.
  let path = `fault/run-${seed}`
  const { pat, project } = addMaintainedProject(sim, { user, path })
  let renames = 0
  const connection: Connection = { url: sim.url, accessToken: Redacted.make(pat), allowHttp: true }
  const graceMs = pick([0, 5 * MIN, 15 * MIN])
  let variant = Math.floor(rng() * 4)
  // One to three consumers sharing one spec and one target.
  const keys = Array.from({ length: 1 + Math.floor(rng() * 3) }, (_, i) => `ns/consumer-${seed}-${i}`)
  const createSettleMs = SETTLE_MS
  const job = (key: string): Job => ({
    key,
    spec: specFor(sim.url, path, variant, variant % 4 < 2),
    connection,
    policy: { refreshIntervalMs: HOUR, graceMs, createSettleMs },
  })
  const startedAt = clock.now()

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
  const baseServices = Layer.mergeAll(
    stateMemory,
    sinkMemory,
    gitlabLayer({ requestTimeout: REQUEST_TIMEOUT_MS, maxAttempts: 3, baseDelay: "1 millis", maxDelay: "20 millis" }),
  )
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
    /** Steps left while access stays lowered: every revocation fails meanwhile. */
    let deniedFor = 0
    // The suite's own look at State is not part of the program under test: it never crashes.
    const unarmed = <A, E, R>(eff: Effect.Effect<A, E, R>) =>
      Effect.suspend(() => {
        const armed = crashesArmed
        crashesArmed = false
        return eff.pipe(
          Effect.ensuring(
            Effect.sync(() => {
              crashesArmed = armed
            }),
          ),
        )
      })
    const loadAll = () =>
      unarmed(
        Effect.gen(function* () {
          const out = new Map<string, StateRecord>()
          for (const key of keys) {
            const found = yield* state.load(key)
            if (Option.isSome(found)) out.set(key, found.value.record)
          }
          return out
        }),
      )
    // Ours: made through the API with this run's access token, wherever the project now lives.
    const ours = () => sim.tokens().filter((t) => t.createdBy === "api" && t.createdByUser === user)
    const countCalls = () => {
      const requests = sim.requests()
      apiCalls += requests.filter((r) => r.path.startsWith("/api/v4/")).length
      faultsFired += requests.filter((r) => r.fault !== null && r.path.startsWith("/api/v4/projects/")).length
      sim.clearRequests()
    }

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

    /** A restarted process: recovery of every key until it completes (it can crash or fail too). */
    const restart = (waitForSettle: boolean) =>
      Effect.gen(function* () {
        const armed = crashesArmed
        for (const key of keys) {
          for (let i = 0; i < 20; i++) {
            // A process that keeps crashing during recovery eventually gets a clean run.
            if (i === 10) crashesArmed = false
            const r = yield* attempt(`recover ${key}`, recover(job(key), { graceMs, createSettleMs, waitForSettle }))
            if (r === "ok") break
          }
          crashesArmed = armed
        }
      })

    /** I1 at any quiet moment: every live token we made is tracked by some key, or covered by an open intent. */
    const checkTracked = (when: string) =>
      Effect.gen(function* () {
        const records = yield* loadAll()
        const tracked = new Set([...records.values()].flatMap((r) => [...trackedIds(r)]))
        const watermarks = [...records.values()].flatMap((r) => (r.intent ? [r.intent.watermark] : []))
        const lowest = watermarks.length === 0 ? undefined : Math.min(...watermarks)
        for (const t of ours()) {
          if (!tracked.has(t.id) && !(lowest !== undefined && t.id > lowest)) {
            violations.push(`seed ${seed}: I1 token ${t.id} untracked ${when}`)
          }
        }
      })

    for (let step = 0; step < stepCount; step++) {
      sim.faults.clear()
      sim.clearRequests()
      let slowArmed = false
      if (rng() < faultP) {
        const method = pick(["POST", "GET", "DELETE"] as const)
        const kinds =
          method === "GET"
            ? (["latency", "status5xx", "rateLimit", "reset"] as const)
            : (["latency", "status5xx", "rateLimit", "reset", "appliedButLost"] as const)
        const kind = pick(kinds)
        const projectRe = "^/api/v4/projects/[^/]+/deploy_tokens"
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
      const action = pick(["advance", "advance", "advance", "rotate", "foreign", "uiRevoke", "spec", "deny", "concurrent", "move", "denyLong"] as const)
      const jump = pick([0, 1, 5 * MIN, 16 * MIN, HOUR, 2 * HOUR])
      const key = pick(keys)
      clock.offset += jump
      trace.push(`step ${step}: ${action} ${key} (+${jump / 1000}s)`)
      let outcome: "ok" | "failed" | "crashed" = "ok"
      switch (action) {
        case "advance":
          outcome = yield* attempt("reconcile", reconcile(job(key)))
          break
        case "rotate":
          outcome = yield* attempt("rotate", rotate(job(key), clock.now()))
          break
        case "foreign": {
          const same = rng() < 0.7
          const t = sim.createForeignToken({
            target: { project: project.id },
            name: same ? "eso-managed" : "someone-else",
            username: same ? "eso" : "other",
            scopes: [...SCOPE_SETS[variant % 2]],
            expiresAt: pick([
              null,
              new Date(clock.now() + 720 * HOUR).toISOString(),
              new Date(Math.floor((clock.now() + 720 * HOUR) / 1000) * 1000).toISOString(),
            ]),
          })
          foreignIds.push(t.id)
          trace.push(`  foreign token ${t.id}`)
          outcome = yield* attempt("reconcile", reconcile(job(key)))
          break
        }
        case "uiRevoke":
          if (foreignIds.length > 0) sim.revokeInUi(pick(foreignIds))
          outcome = yield* attempt("reconcile", reconcile(job(key)))
          break
        case "spec":
          variant = (variant + 1 + Math.floor(rng() * 3)) % 4
          outcome = yield* attempt("reconcile", reconcile(job(key)))
          break
        case "move": {
          // Renamed or moved: the old path redirects (GET) or refuses writes (405). Sometimes the
          // manifest follows the rename, sometimes a new project takes the old path.
          const old = path
          const moved = `fault/run-${seed}-moved-${++renames}`
          sim.moveProject(project.id, moved)
          const follow = rng() < 0.5
          if (follow) path = moved
          else if (rng() < 0.5 && sim.world.findProject(old) === undefined) {
            sim.addProject({ path: old, members: { [user]: "maintainer" } })
            trace.push("  a new project took the old path")
          }
          trace.push(`  project moved to ${moved}${follow ? "; the manifest follows" : ""}`)
          outcome = yield* attempt("reconcile", reconcile(job(key)))
          break
        }
        case "deny": {
          const role = pick(["developer", null] as const)
          sim.setMember({ project: project.id }, user, role)
          trace.push(`  access ${role ?? "removed"}`)
          outcome = yield* attempt("reconcile", reconcile(job(key)))
          yield* checkTracked("while access is denied")
          if (deniedFor === 0) sim.setMember({ project: project.id }, user, "maintainer")
          break
        }
        case "denyLong":
          // Revocations (and creates) fail for good for a few steps: back-off, not a hot loop.
          deniedFor = 2 + Math.floor(rng() * 3)
          sim.setMember({ project: project.id }, user, "developer")
          trace.push(`  access lowered for ${deniedFor} steps`)
          outcome = yield* attempt("reconcile", reconcile(job(key)))
          break
        case "concurrent": {
          const other = pick(keys)
          const [a, b] = yield* Effect.all([attempt("reconcile A", reconcile(job(key))), attempt("rotate B", rotate(job(other), clock.now()))], {
            concurrency: 2,
          })
          outcome = a === "crashed" || b === "crashed" ? "crashed" : a === "failed" || b === "failed" ? "failed" : "ok"
          break
        }
      }
      if (deniedFor > 0 && action !== "denyLong" && --deniedFor === 0) {
        sim.setMember({ project: project.id }, user, "maintainer")
        trace.push("  access restored")
      }
      countCalls()
      // Time passing lets a slow server finish what it started: requests outlive the client's timeout.
      if (slowArmed) yield* Effect.promise(() => new Promise((r) => setTimeout(r, SLOW_MS + 50)))
      if (outcome === "crashed") {
        sim.faults.clear()
        yield* restart(false)
      }
      yield* checkTracked(`after step ${step}`)
    }
    sim.setMember({ project: project.id }, user, "maintainer")

    if (options.tamper) {
      yield* Effect.promise(() =>
        fetch(`${sim.url}/api/v4/projects/${project.id}/deploy_tokens`, {
          method: "POST",
          headers: { "PRIVATE-TOKEN": pat, "Content-Type": "application/json" },
          body: JSON.stringify({ name: "eso-managed", scopes: ["read_registry"] }),
        }),
      )
    }
    if (options.injectLookalike) {
      // An interrupted create from before fingerprints (no expiry recorded) and a token exactly like
      // it made with the same access token: nothing can prove whose it is.
      const key = keys[0]!
      const record = (yield* loadAll()).get(key)
      const location = record?.current?.location ?? { url: sim.url, target: { kind: "project" as const, id: String(project.id) } }
      const spec = job(key).spec
      yield* unarmed(
        Effect.gen(function* () {
          const found = yield* state.load(key)
          const base = Option.isSome(found) ? found.value.record : { key, generation: 0, retiring: [], suspects: [], watermarks: {} }
          yield* state.save(
            key,
            {
              ...base,
              generation: base.generation + 1,
              intent: {
                generation: base.generation + 1,
                location,
                name: spec.name,
                username: spec.username ?? null,
                scopes: [...spec.scopes],
                expiresAt: null,
                specHash: "legacy",
                watermark: Math.max(0, ...sim.tokens().map((t) => t.id)),
                createdAt: 0,
              },
            },
            Option.isSome(found) ? found.value.version : null,
          )
        }),
      )
      yield* Effect.promise(() =>
        fetch(`${sim.url}/api/v4/projects/${project.id}/deploy_tokens`, {
          method: "POST",
          headers: { "PRIVATE-TOKEN": pat, "Content-Type": "application/json" },
          body: JSON.stringify({ name: spec.name, username: spec.username, scopes: spec.scopes }),
        }),
      )
    }
    // Quiet the world and let a clean process finish everything.
    sim.faults.clear()
    crashesArmed = false
    yield* restart(true)
    countCalls()
    const beforeDeletion = yield* loadAll()
    const records = [...beforeDeletion.values()]
    const tracked = new Set(records.flatMap((r) => [...trackedIds(r)]))
    const suspectIds = new Set(records.flatMap((r) => r.suspects.map((s) => s.id)))
    const liveOurs = ours()
    // A suspect that is really ours is a live credential nobody will revoke: a leak too.
    const leaked = liveOurs.filter((t) => !tracked.has(t.id) || suspectIds.has(t.id))
    for (const t of leaked) violations.push(`seed ${seed}: I1 leaked token ${t.id}${suspectIds.has(t.id) ? " (kept only as a suspect)" : ""}`)
    for (const r of records) if (r.intent) violations.push(`seed ${seed}: intent of ${r.key} left open after recovery`)
    const generations = records.reduce((n, r) => n + r.generation, 0)
    const suspects = suspectIds.size
    const simulatedHours = (clock.now() - startedAt) / HOUR

    // The consumers go away: everything of ours is revoked, nothing of anyone else's.
    const deletedAt = clock.now()
    clock.offset += 1
    for (const key of keys) {
      for (let i = 0; i < 3; i++) {
        if ((yield* attempt(`revokeAll ${key}`, revokeAll(job(key), { removeFromSink: true, createSettleMs, retryNow: true }))) === "ok") break
      }
    }
    for (const t of ours()) {
      if (!suspectIds.has(t.id)) violations.push(`seed ${seed}: token ${t.id} still live after revokeAll`)
    }

    // I2: no token left its consumer's hands before its successor was delivered plus the grace.
    const all = sim.tokens({ includeDeleted: true }).filter((t) => t.createdByUser === user || foreignIds.includes(t.id))
    for (const key of keys) {
      const history = mem.history.filter((h) => h.key === key)
      for (const t of all.filter((x) => x.createdBy === "api" && x.deletedAt !== undefined)) {
        const deleted = Date.parse(t.deletedAt!)
        if (deleted >= deletedAt) continue
        const firstHeld = history.findIndex((h) => h.tokenId === t.id)
        if (firstHeld < 0) continue
        const replaced = history.slice(firstHeld).find((h) => h.tokenId !== t.id)
        if (replaced === undefined) violations.push(`seed ${seed}: I2 token ${t.id} revoked while the sink of ${key} still held it`)
        else if (deleted < replaced.at + graceMs) {
          violations.push(`seed ${seed}: I2 token ${t.id} revoked ${(replaced.at + graceMs - deleted) / 1000}s before its grace ended`)
        }
      }
    }
    // I3: tokens made by someone else are never deleted.
    for (const t of all.filter((x) => x.createdBy === "foreign")) {
      if (t.deletedAt !== undefined) violations.push(`seed ${seed}: I3 foreign token ${t.id} was deleted`)
    }
    // I4: one create call, and at most one token, per rotation decision.
    const mints = all.filter((t) => t.createdBy === "api").length - (options.tamper ? 1 : 0) - (options.injectLookalike ? 1 : 0)
    if (createCalls > generations) violations.push(`seed ${seed}: I4 ${createCalls} create calls for ${generations} decisions`)
    if (mints > generations) violations.push(`seed ${seed}: I4 ${mints} tokens minted for ${generations} decisions`)
    // I6: no secret in State or in the logs.
    const secrets = [pat, ...all.map((t) => t.token)]
    const stateText = JSON.stringify(records)
    const logText = logs.join("\n")
    for (const s of secrets) {
      if (stateText.includes(s)) violations.push(`seed ${seed}: I6 a secret is in State`)
      if (logText.includes(s)) violations.push(`seed ${seed}: I6 a secret is in the logs`)
    }
    return {
      seed,
      steps: stepCount,
      faults: faultsFired,
      crashes,
      leaked: leaked.length,
      suspects,
      lookalikeInjected: options.injectLookalike === true,
      keys: keys.length,
      calls: apiCalls,
      simulatedHours,
      mints,
      violations,
      trace,
    } satisfies RunResult
  })

  return Effect.runPromise(program.pipe(Effect.provide(services), Effect.provideService(Clock.Clock, clock.clock), Random.withSeed(seed)))
}
