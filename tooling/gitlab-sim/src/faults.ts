/**
 * Per-request fault injection. Rules are checked in insertion order; every
 * matching `latency` rule adds its delay, the first matching rule of another
 * kind decides the outcome and stops the scan.
 */

export type FaultMethod = "GET" | "POST" | "PUT" | "DELETE" | "HEAD" | "*"
export type FaultKind = "latency" | "status5xx" | "rateLimit" | "reset" | "appliedButLost"

export type FaultAction =
  /** Delay by `ms`, then proceed. `phase: "after"` applies the operation first and delays the response. */
  | { readonly kind: "latency"; readonly ms: number; readonly phase?: "before" | "after" | undefined }
  /** Answer 500/502/503/504 without applying the operation. */
  | { readonly kind: "status5xx"; readonly status?: 500 | 502 | 503 | 504 | undefined; readonly body?: string | undefined }
  /** Answer a Rack::Attack 429 (row 41) without applying the operation. */
  | {
      readonly kind: "rateLimit"
      /** Retry-After seconds (default 1). */
      readonly retryAfter?: number | undefined
      /** Throttle limit reported in RateLimit-Limit (per 60 s, default 2000). */
      readonly limit?: number | undefined
      /** RateLimit-Name (default `throttle_authenticated_api`). */
      readonly name?: string | undefined
    }
  /** Destroy the connection (TCP RST where possible) without applying the operation. */
  | { readonly kind: "reset" }
  /**
   * POST/PUT/DELETE only: apply the operation, then lose the response by
   * resetting the connection (default) or answering 502/504.
   */
  | { readonly kind: "appliedButLost"; readonly lose?: "reset" | 502 | 504 | undefined }

export interface FaultMatch {
  /** Method to match (default `*`). */
  readonly method?: FaultMethod | undefined
  /** Regular expression (or its source) tested against the raw request path, without the query string. */
  readonly path?: RegExp | string | undefined
  /** Flags used when `path` is a string. */
  readonly flags?: string | undefined
  /**
   * How many times the rule fires before it is used up. Default 1, or
   * unlimited when `probability` is set. Use `Infinity` for "always".
   */
  readonly times?: number | undefined
  /** Fire on each matching request with this probability (seeded RNG). */
  readonly probability?: number | undefined
  /** Seed for this rule's own RNG (default: the simulator's shared RNG). */
  readonly seed?: number | undefined
  /** Let the first `skip` matching requests through untouched. */
  readonly skip?: number | undefined
}

export type FaultRule = FaultMatch & FaultAction

export interface FaultInfo {
  readonly id: string
  readonly kind: FaultKind
  readonly method: FaultMethod
  readonly path: string | null
  /** Firings left; null = unlimited. */
  readonly remaining: number | null
  readonly fired: number
  readonly matched: number
  readonly rule: FaultRule
}

export interface FaultDecision {
  readonly latencyBeforeMs: number
  readonly latencyAfterMs: number
  /** The outcome-deciding rule, if any. */
  readonly terminal: FaultAction | null
  /** Kinds that fired, in order. */
  readonly applied: readonly FaultKind[]
}

const NO_FAULT: FaultDecision = { latencyBeforeMs: 0, latencyAfterMs: 0, terminal: null, applied: [] }

/** Small, fast, seedable PRNG (mulberry32). Returns floats in [0, 1). */
export const seededRandom = (seed: number): (() => number) => {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const METHODS: readonly FaultMethod[] = ["GET", "POST", "PUT", "DELETE", "HEAD", "*"]
const KINDS: readonly FaultKind[] = ["latency", "status5xx", "rateLimit", "reset", "appliedButLost"]
const WRITE_METHODS = new Set(["POST", "PUT", "DELETE", "PATCH"])

interface ActiveRule {
  readonly id: string
  readonly rule: FaultRule
  readonly method: FaultMethod
  readonly path: RegExp | null
  readonly random: () => number
  remaining: number
  skip: number
  fired: number
  matched: number
}

const fail = (msg: string): never => {
  throw new Error(`gitlab-sim fault rule: ${msg}`)
}

/** Checks a rule (possibly from JSON) and returns it typed. */
export const validateFaultRule = (input: unknown): FaultRule => {
  if (typeof input !== "object" || input === null) return fail("must be an object")
  const r = input as Record<string, unknown>
  if (!KINDS.includes(r.kind as FaultKind)) fail(`kind must be one of ${KINDS.join(", ")}`)
  if (r.method !== undefined && !METHODS.includes(r.method as FaultMethod)) fail(`method must be one of ${METHODS.join(", ")}`)
  if (r.path !== undefined && typeof r.path !== "string" && !(r.path instanceof RegExp)) fail("path must be a regular expression or its source")
  const nonNegative = (key: string): void => {
    const v = r[key]
    if (v !== undefined && (typeof v !== "number" || Number.isNaN(v) || v < 0)) fail(`${key} must be a non-negative number`)
  }
  for (const key of ["times", "skip", "ms", "retryAfter", "limit", "seed"]) nonNegative(key)
  if (r.probability !== undefined && (typeof r.probability !== "number" || !(r.probability >= 0 && r.probability <= 1))) {
    fail("probability must be between 0 and 1")
  }
  switch (r.kind) {
    case "latency":
      if (typeof r.ms !== "number") fail("latency needs ms")
      if (r.phase !== undefined && r.phase !== "before" && r.phase !== "after") fail('phase must be "before" or "after"')
      break
    case "status5xx":
      if (r.status !== undefined && ![500, 502, 503, 504].includes(r.status as number)) fail("status must be 500, 502, 503 or 504")
      if (r.body !== undefined && typeof r.body !== "string") fail("body must be a string")
      break
    case "appliedButLost":
      if (r.lose !== undefined && r.lose !== "reset" && r.lose !== 502 && r.lose !== 504) fail('lose must be "reset", 502 or 504')
      break
    case "rateLimit":
      if (r.name !== undefined && typeof r.name !== "string") fail("name must be a string")
      break
  }
  return input as FaultRule
}

export class FaultController {
  private rules: ActiveRule[] = []
  private nextId = 1
  private readonly shared: () => number

  constructor(seed = 1) {
    this.shared = seededRandom(seed)
  }

  /** Adds a rule; returns its id (for `remove`). */
  add(input: FaultRule): string {
    const rule = validateFaultRule(input)
    const flags = (rule.path instanceof RegExp ? rule.path.flags : (rule.flags ?? "")).replace(/[gy]/g, "")
    const path = rule.path === undefined ? null : new RegExp(rule.path instanceof RegExp ? rule.path.source : rule.path, flags)
    const id = `f${this.nextId++}`
    this.rules.push({
      id,
      rule,
      method: rule.method ?? "*",
      path,
      random: rule.seed === undefined ? this.shared : seededRandom(rule.seed),
      remaining: rule.times ?? (rule.probability === undefined ? 1 : Number.POSITIVE_INFINITY),
      skip: rule.skip ?? 0,
      fired: 0,
      matched: 0,
    })
    return id
  }

  remove(id: string): boolean {
    const before = this.rules.length
    this.rules = this.rules.filter((r) => r.id !== id)
    return this.rules.length !== before
  }

  clear(): void {
    this.rules = []
  }

  list(): FaultInfo[] {
    return this.rules.map((r) => ({
      id: r.id,
      kind: r.rule.kind,
      method: r.method,
      path: r.path === null ? null : r.path.source,
      remaining: Number.isFinite(r.remaining) ? r.remaining : null,
      fired: r.fired,
      matched: r.matched,
      rule: r.rule,
    }))
  }

  /** Decides the faults for one request (called once per request). */
  decide(method: string, path: string): FaultDecision {
    if (this.rules.length === 0) return NO_FAULT
    let before = 0
    let after = 0
    let terminal: FaultAction | null = null
    const applied: FaultKind[] = []
    let exhausted = false
    for (const r of this.rules) {
      if (r.remaining <= 0) continue
      if (r.method !== "*" && r.method !== method) continue
      if (r.rule.kind === "appliedButLost" && !WRITE_METHODS.has(method)) continue
      if (r.path !== null && !r.path.test(path)) continue
      r.matched++
      if (r.skip > 0) {
        r.skip--
        continue
      }
      if (r.rule.probability !== undefined && r.random() >= r.rule.probability) continue
      r.fired++
      r.remaining--
      if (r.remaining <= 0) exhausted = true
      applied.push(r.rule.kind)
      if (r.rule.kind === "latency") {
        if (r.rule.phase === "after") after += r.rule.ms
        else before += r.rule.ms
        continue
      }
      terminal = r.rule
      break
    }
    if (exhausted) this.rules = this.rules.filter((r) => r.remaining > 0)
    return applied.length === 0 ? NO_FAULT : { latencyBeforeMs: before, latencyAfterMs: after, terminal, applied }
  }
}
