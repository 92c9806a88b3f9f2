import { assert, describe, it } from "@effect/vitest"
import { Clock, Effect, Layer, Logger, Option, Random, Redacted } from "effect"
import { TestClock } from "effect/testing"
import { withoutLock } from "../src/CompareAndSet.ts"
import { GitLab } from "../src/GitLab.ts"
import { RateLimited, StateError } from "../src/Errors.ts"
import { forgetSuspect, type Job, listSuspects, reconcile, recover, revokeAll, revokeSuspect, rotate } from "../src/Lifecycle.ts"
import { layerMemory as sinkMemory, MemorySink, Sink } from "../src/Sink.ts"
import { type DeployTokenSpec, validateSpec } from "../src/Spec.ts"
import { State, type StateRecord, layerMemory as stateMemory } from "../src/State.ts"
import { errors, FakeGitLab } from "./FakeGitLab.ts"

const HOUR = 3_600_000
const MIN = 60_000

const specOf = (overrides: Record<string, unknown> = {}): DeployTokenSpec => {
  const r = validateSpec({
    projectID: "group/project",
    name: "eso-managed",
    scopes: ["read_registry", "read_repository"],
    username: "eso",
    auth: { token: { secretRef: { name: "gitlab-api-token", key: "token" } } },
    ...overrides,
  })
  if (r.spec === undefined) throw new Error(JSON.stringify(r.problems))
  return r.spec
}

const job = (overrides: Partial<Job> = {}): Job => ({
  key: "default/gitlab-deploy-token",
  spec: specOf(),
  connection: { url: "https://gitlab.com", accessToken: Redacted.make("glpat-secret-access") },
  policy: { refreshIntervalMs: HOUR, graceMs: 5 * MIN },
  ...overrides,
})

const TestLayer = Layer.mergeAll(FakeGitLab.gitlabLayer, sinkMemory, stateMemory)

const live = Effect.gen(function* () {
  const fake = yield* FakeGitLab
  return [...fake.tokens.values()].filter((t) => !t.foreign)
})

const stateOf = (key: string) =>
  Effect.gen(function* () {
    const s = yield* State
    return Option.getOrThrow(yield* s.load(key)).record
  })

describe("lifecycle", () => {
  it.effect("first reconcile mints one token and delivers it", () =>
    Effect.gen(function* () {
      const report = yield* reconcile(job())
      const sink = yield* MemorySink
      const tokens = yield* live
      assert.strictEqual(tokens.length, 1)
      assert.deepStrictEqual(
        report.actions.map((a) => a.action),
        ["minted", "delivered"],
      )
      assert.strictEqual(sink.values.get(job().key)?.tokenId, tokens[0]!.id)
      assert.strictEqual(Redacted.value(sink.values.get(job().key)!.token), tokens[0]!.secret)
      const rec = yield* stateOf(job().key)
      assert.strictEqual(rec.current?.id, tokens[0]!.id)
      assert.isUndefined(rec.intent)
    }).pipe(Effect.provide(TestLayer)),
  )

  it.effect("a no-op reconcile makes no GitLab call", () =>
    Effect.gen(function* () {
      const fake = yield* FakeGitLab
      yield* reconcile(job())
      const before = fake.calls.length
      yield* TestClock.adjust(10 * MIN)
      const report = yield* reconcile(job())
      assert.strictEqual(fake.calls.length, before)
      assert.deepStrictEqual(report.actions, [])
    }).pipe(Effect.provide(TestLayer)),
  )

  it.effect("rotates at the refresh interval, not a moment before", () =>
    Effect.gen(function* () {
      yield* reconcile(job())
      const first = (yield* live)[0]!.id
      yield* TestClock.adjust(HOUR - 1)
      yield* reconcile(job())
      assert.deepStrictEqual(
        (yield* live).map((t) => t.id),
        [first],
      )
      yield* TestClock.adjust(1)
      const report = yield* reconcile(job())
      assert.strictEqual(report.reason, "refresh interval elapsed")
      assert.strictEqual((yield* live).length, 2, "old token kept during grace")
    }).pipe(Effect.provide(TestLayer)),
  )

  it.effect("exactly one live token once the grace after delivery has passed (no off-by-one)", () =>
    Effect.gen(function* () {
      const j = job()
      yield* reconcile(j)
      yield* TestClock.adjust(HOUR)
      yield* reconcile(j) // rotation; old retires with grace 5m from delivery
      const newest = (yield* stateOf(j.key)).current!.id
      yield* TestClock.adjust(5 * MIN - 1)
      yield* reconcile(j)
      assert.strictEqual((yield* live).length, 2, "still inside grace")
      yield* TestClock.adjust(1)
      yield* reconcile(j)
      assert.deepStrictEqual(
        (yield* live).map((t) => t.id),
        [newest],
      )
      const sink = yield* MemorySink
      assert.strictEqual(sink.values.get(j.key)?.tokenId, newest)
    }).pipe(Effect.provide(TestLayer)),
  )

  it.effect("a spec change triggers rotation", () =>
    Effect.gen(function* () {
      yield* reconcile(job())
      const report = yield* reconcile(job({ spec: specOf({ scopes: ["read_registry"] }) }))
      assert.strictEqual(report.reason, "the spec changed")
      const rec = yield* stateOf(job().key)
      assert.deepStrictEqual(rec.current?.scopes, ["read_registry"])
    }).pipe(Effect.provide(TestLayer)),
  )

  it.effect("an approaching expiry triggers rotation (expiresAfter)", () =>
    Effect.gen(function* () {
      const j = job({ spec: specOf({ expiresAfter: "72h" }), policy: { refreshIntervalMs: 0, graceMs: 0 } })
      const first = yield* reconcile(j)
      // Renewal margin defaults to a third of the lifetime capped at 24h, counted from the token's
      // own expiry, which its fingerprint moved up to an hour earlier than 72h.
      const expiry = Date.parse((yield* stateOf(j.key)).current!.expiresAt!)
      assert.isAtMost(expiry, 72 * HOUR)
      assert.isAbove(expiry, 71 * HOUR)
      assert.strictEqual(first.nextAt, expiry - Math.floor(expiry / 3))
      yield* TestClock.adjust(first.nextAt! - 1)
      assert.strictEqual((yield* reconcile(j)).reason, undefined)
      yield* TestClock.adjust(1)
      assert.strictEqual((yield* reconcile(j)).reason, "the token expires soon")
      assert.strictEqual((yield* live).length, 1, "grace 0 revokes the old one at once")
    }).pipe(Effect.provide(TestLayer)),
  )

  it.effect("with renewBeforeExpiry off (gldt generate) a token near its expiry is not replaced; CreatedOnce alone still renews it", () =>
    Effect.gen(function* () {
      const spec = specOf({ expiresAfter: "72h" })
      const generate = job({ spec, policy: { refreshIntervalMs: 0, graceMs: 0, refreshPolicy: "CreatedOnce", renewBeforeExpiry: false } })
      const first = yield* reconcile(generate)
      assert.isUndefined(first.nextAt, "nothing scheduled")
      yield* TestClock.adjust(70 * HOUR)
      assert.strictEqual((yield* reconcile(generate)).reason, undefined)
      const createdOnce = job({ spec, policy: { refreshIntervalMs: 0, graceMs: 0, refreshPolicy: "CreatedOnce" } })
      assert.strictEqual((yield* reconcile(createdOnce)).reason, "the token expires soon")
    }).pipe(Effect.provide(TestLayer)),
  )

  it.effect("an absolute expiry is marked by moving it earlier, never later", () =>
    Effect.gen(function* () {
      const at = Date.parse("2027-01-01T00:00:00Z")
      const seen = new Set<string>()
      for (let i = 0; i < 20; i++) {
        yield* reconcile(job({ key: `k${i}`, spec: specOf({ expiresAt: "2027-01-01T00:00:00Z" }) }))
      }
      for (const t of yield* live) {
        const ms = Date.parse(t.expiresAt!)
        assert.isBelow(ms, at, "never later than asked")
        assert.isAtLeast(ms, at - HOUR, "at most an hour earlier")
        seen.add(t.expiresAt!)
      }
      assert.strictEqual(seen.size, 20, "each mint carries its own mark")
    }).pipe(Effect.provide(TestLayer)),
  )

  it.effect("a spec without expiry still sends a fingerprint: a date in 2999, never GitLab's forever 3000-01-01", () =>
    Effect.gen(function* () {
      yield* reconcile(job())
      const t = (yield* live)[0]!
      assert.match(t.expiresAt!, /^2999-/)
      assert.isBelow(Date.parse(t.expiresAt!), Date.parse("3000-01-01T00:00:00Z"))
    }).pipe(Effect.provide(TestLayer)),
  )

  it.effect("a renewal margin at or above the lifetime is clamped: a fresh token is not due at once", () =>
    Effect.gen(function* () {
      // validateSpec refuses this; core must not mint in a loop if handed it anyway.
      const spec = { ...specOf({ expiresAfter: "24h" }), renewBeforeExpiryMs: 48 * HOUR }
      const j = job({ spec, policy: { refreshIntervalMs: 0, graceMs: 0 } })
      yield* reconcile(j)
      const again = yield* reconcile(j)
      assert.strictEqual(again.reason, undefined)
      assert.strictEqual((yield* live).length, 1)
    }).pipe(Effect.provide(TestLayer)),
  )

  it.effect("revokeAll on consumer deletion revokes everything and drops the record", () =>
    Effect.gen(function* () {
      const j = job()
      yield* reconcile(j)
      yield* TestClock.adjust(HOUR)
      yield* reconcile(j)
      assert.strictEqual((yield* live).length, 2)
      yield* revokeAll(j, { removeFromSink: true })
      assert.strictEqual((yield* live).length, 0)
      const s = yield* State
      assert.isTrue(Option.isNone(yield* s.load(j.key)))
      assert.isFalse((yield* MemorySink).values.has(j.key))
    }).pipe(Effect.provide(TestLayer)),
  )

  for (const [label, make] of [
    ["404 project", errors.projectNotFound],
    ["403", errors.forbidden],
    ["401", errors.unauthorized],
  ] as const) {
    it.effect(`${label} on revoke keeps the token tracked and surfaces an error`, () =>
      Effect.gen(function* () {
        const fake = yield* FakeGitLab
        const j = job({ policy: { refreshIntervalMs: HOUR, graceMs: 0 } })
        yield* reconcile(j)
        const old = (yield* live)[0]!.id
        yield* TestClock.adjust(HOUR)
        fake.failNext.set("revoke", { error: make() })
        const report = yield* reconcile(j)
        assert.strictEqual(report.revokeErrors.length, 1)
        assert.strictEqual(report.revokeErrors[0]!.tokenId, old)
        assert.include(report.revokeErrors[0]!.error, make()._tag)
        const rec = yield* stateOf(j.key)
        assert.deepStrictEqual(
          rec.retiring.map((t) => t.id),
          [old],
        )
        assert.include(rec.retiring[0]!.lastError ?? "", make()._tag)
        // Not retried before its back-off; then the next reconcile retries and confirms.
        const calls = fake.calls.length
        assert.strictEqual((yield* reconcile(j)).actions.length, 0)
        assert.strictEqual(fake.calls.length, calls, "no DELETE before the back-off")
        yield* TestClock.adjust(rec.retiring[0]!.retryAt! - (yield* Clock.currentTimeMillis))
        const again = yield* reconcile(j)
        assert.deepStrictEqual(
          again.actions.map((a) => a.action),
          ["revoked"],
        )
        assert.strictEqual((yield* stateOf(j.key)).retiring.length, 0)
      }).pipe(Effect.provide(TestLayer)),
    )
  }

  it.effect("a token already deleted elsewhere (404 Not found) counts as revoked", () =>
    Effect.gen(function* () {
      const fake = yield* FakeGitLab
      const j = job({ policy: { refreshIntervalMs: HOUR, graceMs: 0 } })
      yield* reconcile(j)
      const old = (yield* live)[0]!.id
      fake.tokens.delete(old)
      yield* TestClock.adjust(HOUR)
      const report = yield* reconcile(j)
      assert.deepStrictEqual(report.revokeErrors, [])
      assert.strictEqual((yield* stateOf(j.key)).retiring.length, 0)
    }).pipe(Effect.provide(TestLayer)),
  )

  it.effect("a lost create response is recovered without a second POST and the token revoked", () =>
    Effect.gen(function* () {
      const fake = yield* FakeGitLab
      const j = job({ spec: specOf({ expiresAfter: "720h" }) })
      fake.failNext.set("create", { error: errors.lost(), applied: true })
      const failed = yield* Effect.flip(reconcile(j))
      assert.strictEqual(failed._tag, "Unavailable")
      assert.strictEqual(fake.calls.filter((c) => c.op === "create").length, 1)
      assert.strictEqual((yield* live).length, 0, "the orphan was found and revoked")
      const rec = yield* stateOf(j.key)
      assert.isUndefined(rec.intent)
      assert.strictEqual(rec.suspects.length, 0)
      // The next reconcile is a fresh decision and mints normally.
      yield* reconcile(j)
      assert.strictEqual((yield* live).length, 1)
    }).pipe(Effect.provide(TestLayer)),
  )

  it.effect("a look-alike made by someone else is never revoked, even with the same name and username", () =>
    Effect.gen(function* () {
      const fake = yield* FakeGitLab
      const j = job({ spec: specOf({ expiresAfter: "720h" }) })
      yield* reconcile(j)
      const foreign = fake.addForeign("project:group/project", {
        name: "eso-managed",
        username: "eso",
        scopes: ["read_repository", "read_registry"],
        expiresAt: "2030-01-01T00:00:00.000Z",
      })
      fake.failNext.set("create", { error: errors.lost(), applied: false })
      yield* TestClock.adjust(HOUR)
      yield* Effect.flip(reconcile(j))
      yield* TestClock.adjust(60_000)
      yield* revokeAll(j)
      assert.isTrue(fake.tokens.has(foreign.id))
      assert.strictEqual((yield* live).length, 0)
    }).pipe(Effect.provide(TestLayer)),
  )

  it.effect("without an expiry in the spec, the token of a lost create is still proven ours and revoked (issue 7 §1)", () =>
    Effect.gen(function* () {
      const fake = yield* FakeGitLab
      const j = job()
      yield* reconcile(j)
      fake.failNext.set("create", { error: errors.lost(), applied: true })
      yield* TestClock.adjust(HOUR)
      const failed = yield* Effect.flip(reconcile(j))
      assert.strictEqual(failed._tag, "Unavailable")
      const rec = yield* stateOf(j.key)
      assert.isUndefined(rec.intent, "the exact fingerprint resolves it without waiting")
      assert.strictEqual(rec.suspects.length, 0)
      assert.strictEqual((yield* live).length, 1, "only the delivered token is live")
      yield* rotate(j, yield* Clock.currentTimeMillis)
      yield* TestClock.adjust(HOUR)
      yield* reconcile(j)
      yield* revokeAll(j)
      assert.strictEqual((yield* live).length, 0)
    }).pipe(Effect.provide(TestLayer)),
  )

  it.effect("a create that lands after its timeout is still found, and nothing is minted meanwhile", () =>
    Effect.gen(function* () {
      const fake = yield* FakeGitLab
      const j = job({ spec: specOf({ expiresAfter: "720h" }) })
      fake.failNext.set("create", { error: errors.lost(), applied: false })
      yield* Effect.flip(reconcile(j))
      const intent = (yield* stateOf(j.key)).intent!
      assert.isDefined(intent)
      // A reconcile before the create has settled neither mints nor gives up on the intent.
      yield* TestClock.adjust(10_000)
      const waiting = yield* reconcile(j)
      assert.isTrue(waiting.openIntent)
      assert.strictEqual(fake.calls.filter((c) => c.op === "create").length, 1)
      // The server applies the slow create late, as GitLab does after a client timeout.
      fake.tokens.set(5000, {
        id: 5000,
        target: fake.targetKey({ kind: "project", id: "group/project" }),
        name: intent.name,
        username: "eso",
        scopes: [...intent.scopes],
        expiresAt: intent.expiresAt,
        secret: "gldt-late-secret",
        foreign: false,
      })
      yield* TestClock.adjust(60_000)
      const report = yield* reconcile(j)
      assert.deepStrictEqual(
        report.actions.slice(0, 2).map((a) => [a.action, a.tokenId]),
        [
          ["recovered", 5000],
          ["minted", report.currentTokenId!],
        ],
      )
      assert.isFalse(fake.tokens.has(5000))
      assert.strictEqual((yield* live).length, 1)
    }).pipe(Effect.provide(TestLayer)),
  )

  it.effect("after the spec's url changes, old tokens are not revoked with this access token at the old instance", () =>
    Effect.gen(function* () {
      const fake = yield* FakeGitLab
      const a = job({ policy: { refreshIntervalMs: HOUR, graceMs: 0 } })
      yield* reconcile(a)
      const old = (yield* stateOf(a.key)).current!.id
      const b = job({
        spec: specOf({ url: "https://gitlab.other.example" }),
        connection: { url: "https://gitlab.other.example", accessToken: Redacted.make("glpat-for-the-other-instance") },
        policy: { refreshIntervalMs: HOUR, graceMs: 0 },
      })
      const report = yield* reconcile(b)
      assert.strictEqual(report.reason, "the spec changed")
      assert.strictEqual(fake.calls.filter((c) => c.op === "revoke").length, 0, "no DELETE sent for the old instance's token")
      assert.match(report.revokeErrors[0]!.error, /lives at https:\/\/gitlab\.com, not https:\/\/gitlab\.other\.example/)
      assert.deepStrictEqual(
        (yield* stateOf(a.key)).retiring.map((t) => t.id),
        [old],
        "still tracked (I1, I5)",
      )
      // With the old instance's manifest and token it goes.
      const back = yield* revokeAll(a, { retryNow: true })
      assert.include(
        back.actions.map((x) => `${x.action} ${x.tokenId}`),
        `revoked ${old}`,
      )
    }).pipe(Effect.provide(TestLayer)),
  )

  it.effect("a token whose intent another writer closed mid-create stays tracked, even when its revocation fails", () =>
    Effect.gen(function* () {
      const fake = yield* FakeGitLab
      const state = yield* State
      const gitlab = yield* GitLab
      const sink = yield* Sink
      const j = job({ spec: specOf({ expiresAfter: "720h" }), policy: { refreshIntervalMs: HOUR, graceMs: 0, createSettleMs: 0 } })
      // A backend without a process lock (like Kubernetes), and a second writer whose recovery runs
      // while our create is in flight but before it lands: it sees nothing and closes the intent.
      const unlocked = withoutLock(state)
      const racing = GitLab.of({
        ...gitlab,
        create: (conn, target, req) =>
          recover(j, { createSettleMs: 0 }).pipe(
            Effect.provideService(State, unlocked),
            Effect.provideService(GitLab, gitlab),
            Effect.provideService(Sink, sink),
            Effect.ignore,
            Effect.tap(() => Effect.sync(() => fake.failNext.set("revoke", { error: errors.forbidden() }))),
            Effect.andThen(gitlab.create(conn, target, req)),
          ),
      })
      const failed = yield* Effect.flip(reconcile(j).pipe(Effect.provideService(State, unlocked), Effect.provideService(GitLab, racing)))
      assert.strictEqual(failed._tag, "LifecycleError")
      const minted = (yield* live).map((t) => t.id)
      assert.strictEqual(minted.length, 1, "the revocation failed, so the token is still live")
      const rec = yield* stateOf(j.key)
      assert.deepStrictEqual(
        rec.retiring.map((t) => t.id),
        minted,
        "and it is tracked (I1)",
      )
      assert.include(rec.retiring[0]!.lastError ?? "", "Forbidden")
    }).pipe(Effect.provide(TestLayer)),
  )

  it.effect("a sink that cannot be written is found before any mint", () =>
    Effect.gen(function* () {
      const fake = yield* FakeGitLab
      const sink = yield* MemorySink
      sink.broken.add(job().key)
      const failed = yield* Effect.flip(reconcile(job()))
      assert.strictEqual(failed._tag, "SinkError")
      assert.strictEqual(fake.calls.filter((c) => c.op === "create").length, 0)
    }).pipe(Effect.provide(TestLayer)),
  )

  it.effect("two concurrent rotate requests mint once", () =>
    Effect.gen(function* () {
      const fake = yield* FakeGitLab
      const j = job()
      yield* reconcile(j)
      yield* TestClock.adjust(MIN)
      const requestedAt = MIN
      yield* Effect.all([rotate(j, requestedAt), rotate(j, requestedAt)], { concurrency: 2 })
      assert.strictEqual(fake.calls.filter((c) => c.op === "create").length, 2, "initial mint + one rotation")
    }).pipe(Effect.provide(TestLayer)),
  )

  it.effect("a sink that lost the credential triggers a new mint", () =>
    Effect.gen(function* () {
      const j = job()
      yield* reconcile(j)
      ;(yield* MemorySink).values.delete(j.key)
      const report = yield* reconcile(j)
      assert.strictEqual(report.reason, "the sink lost the credential")
      assert.isTrue((yield* MemorySink).values.has(j.key))
    }).pipe(Effect.provide(TestLayer)),
  )
})

/** Writes a record as an interrupted or older process would have left it. */
const putRecord = (record: StateRecord) =>
  Effect.gen(function* () {
    const s = yield* State
    const found = yield* s.load(record.key)
    yield* s.save(record.key, record, Option.isSome(found) ? found.value.version : null)
  })

const capturingLogs = () => {
  const lines: string[] = []
  const layer = Logger.layer([
    Logger.formatLogFmt.pipe(
      // biome-ignore lint/suspicious/useIterableCallbackReturn: Logger.map, not Array.prototype.map
      Logger.map((line: string) => {
        lines.push(line)
      }),
    ),
  ])
  return { lines, layer }
}

describe("issue 7: every token provably ours", () => {
  it.effect("recovery never calls a token that another key of the same State tracks ours, even with the same mark", () =>
    Effect.gen(function* () {
      const fake = yield* FakeGitLab
      const b = job({ key: "ns/b" })
      yield* reconcile(b)
      const theirs = (yield* stateOf(b.key)).current!
      // Key a shares spec and target; its interrupted create carried (by bad luck) the same mark.
      const a = job({ key: "ns/a" })
      yield* putRecord({
        key: a.key,
        generation: 1,
        retiring: [],
        suspects: [],
        watermarks: {},
        intent: {
          generation: 1,
          location: theirs.location,
          name: theirs.name,
          username: "eso",
          scopes: [...theirs.scopes],
          expiresAt: theirs.expiresAt,
          specHash: theirs.specHash,
          watermark: 0,
          createdAt: 0,
        },
      })
      yield* TestClock.adjust(HOUR)
      const report = yield* recover(a)
      assert.deepStrictEqual(report.actions, [])
      assert.isTrue(fake.tokens.has(theirs.id), "b's live token was not revoked")
      assert.deepStrictEqual((yield* stateOf(a.key)).suspects, [], "nor taken as a's suspect")
    }).pipe(Effect.provide(TestLayer)),
  )

  it.effect("several keys sharing one spec and target each get their own mark, and a lost create of one is resolved exactly", () =>
    Effect.gen(function* () {
      const fake = yield* FakeGitLab
      const keys = ["ns/a", "ns/b", "ns/c"].map((key) => job({ key, policy: { refreshIntervalMs: HOUR, graceMs: 0 } }))
      for (const j of keys) yield* reconcile(j)
      const marks = new Set((yield* live).map((t) => t.expiresAt))
      assert.strictEqual(marks.size, 3)
      fake.failNext.set("create", { error: errors.lost(), applied: true })
      yield* TestClock.adjust(HOUR)
      yield* Effect.flip(reconcile(keys[1]!))
      for (const j of keys) yield* reconcile(j)
      for (const j of keys) assert.deepStrictEqual((yield* stateOf(j.key)).suspects, [])
      assert.strictEqual((yield* live).length, 3, "one live token per key")
    }).pipe(Effect.provide(TestLayer)),
  )

  it.effect("a suspect GitLab no longer lists is dropped by recover", () =>
    Effect.gen(function* () {
      const j = job()
      yield* reconcile(j)
      const rec = yield* stateOf(j.key)
      yield* putRecord({
        ...rec,
        suspects: [{ id: 4242, location: rec.current!.location, name: "eso-managed", username: "eso", generation: 1, foundAt: 0 }],
      })
      const report = yield* recover(j)
      assert.deepStrictEqual(report.suspects, [])
      assert.deepStrictEqual((yield* stateOf(j.key)).suspects, [])
    }).pipe(Effect.provide(TestLayer)),
  )

  const withSuspect = (j: Job) =>
    Effect.gen(function* () {
      const fake = yield* FakeGitLab
      yield* reconcile(j)
      const rec = yield* stateOf(j.key)
      const lookalike = fake.addForeign("project:group/project", {
        name: "eso-managed",
        username: "eso",
        scopes: ["read_repository", "read_registry"],
        expiresAt: null,
      })
      yield* putRecord({
        ...rec,
        suspects: [{ id: lookalike.id, location: rec.current!.location, name: "eso-managed", username: "eso", generation: 1, foundAt: 0 }],
      })
      return lookalike.id
    })

  it.effect("gldt suspects: list, revoke one by id (GitLab confirms), forget one by id (GitLab untouched)", () =>
    Effect.gen(function* () {
      const fake = yield* FakeGitLab
      const j = job()
      const id = yield* withSuspect(j)
      assert.deepStrictEqual(
        (yield* listSuspects()).map((l) => [l.key, l.suspect.id]),
        [[j.key, id]],
      )
      const unknown = yield* Effect.flip(revokeSuspect(j, 1))
      assert.match(unknown.message, /token 1 is not a suspect of default\/gitlab-deploy-token \(its suspects: \d+\); gldt suspects lists them/)
      yield* revokeSuspect(j, id)
      assert.isFalse(fake.tokens.has(id))
      assert.deepStrictEqual(yield* listSuspects(), [])
      const other = yield* withSuspect(job({ key: "ns/other" }))
      yield* forgetSuspect("ns/other", other)
      assert.isTrue(fake.tokens.has(other), "forget never touches GitLab")
      assert.deepStrictEqual(yield* listSuspects(), [])
    }).pipe(Effect.provide(TestLayer)),
  )

  it.effect("deleting a consumer with a suspect does not hang: after the bounded wait it is released with a warning and the id", () =>
    Effect.gen(function* () {
      const j = job()
      const id = yield* withSuspect(j)
      const logs = capturingLogs()
      const first = yield* revokeAll(j, { suspectWaitMs: 10 * MIN }).pipe(Effect.provide(logs.layer))
      assert.deepStrictEqual(first.suspects, [id])
      assert.strictEqual(first.nextAt, 10 * MIN, "come back when the wait is over")
      const s = yield* State
      assert.isTrue(Option.isSome(yield* s.load(j.key)), "kept for a person to decide meanwhile")
      yield* TestClock.adjust(10 * MIN)
      const second = yield* revokeAll(j, { suspectWaitMs: 10 * MIN }).pipe(Effect.provide(logs.layer))
      assert.deepStrictEqual(
        second.actions.map((a) => [a.action, a.tokenId]),
        [["released", id]],
      )
      assert.isTrue(Option.isNone(yield* s.load(j.key)), "the record is gone: the deletion completes")
      assert.isTrue(
        logs.lines.some((l) => l.includes("level=WARN") && l.includes("releasing suspects") && l.includes(`tokenIds=${id}`)),
        logs.lines.join("\n"),
      )
    }).pipe(Effect.provide(TestLayer)),
  )
})

describe("a State with a snapshot", () => {
  /** Memory State plus a snapshot, counting the per-key loads the fingerprint draw would otherwise make. */
  const withSnapshot = Layer.effect(
    State,
    Effect.gen(function* () {
      const inner = yield* State
      const counts = { loads: 0, snapshots: 0 }
      const service = State.of({
        ...inner,
        load: (key) => Effect.sync(() => counts.loads++).pipe(Effect.andThen(inner.load(key))),
        snapshot: () =>
          Effect.gen(function* () {
            counts.snapshots++
            const out: Array<StateRecord> = []
            for (const k of yield* inner.list()) {
              const found = yield* inner.load(k)
              if (Option.isSome(found)) out.push(found.value.record)
            }
            return out
          }),
      })
      yield* Effect.sync(() => snapshotCounts.push(counts))
      return service
    }),
  ).pipe(Layer.provide(stateMemory))
  const snapshotCounts: Array<{ loads: number; snapshots: number }> = []

  it.effect("the fingerprint draw reads the snapshot, not every key, and still never reuses another key's mark", () =>
    Effect.gen(function* () {
      const spec = specOf({ expiresAfter: "48h" })
      // The same seed makes b's first draw the mark a already holds.
      yield* reconcile(job({ key: "ns/a", spec })).pipe(Random.withSeed("same"))
      for (let i = 0; i < 30; i++) yield* reconcile(job({ key: `ns/other-${i}`, spec: specOf({ name: `other-${i}` }) }))
      const counts = snapshotCounts.at(-1)!
      const loadsBefore = counts.loads
      yield* reconcile(job({ key: "ns/b", spec })).pipe(Random.withSeed("same"))
      const tokens = yield* live
      const idOf = (key: string) => stateOf(key).pipe(Effect.map((r) => r.current!.id))
      const aId = yield* idOf("ns/a")
      const bId = yield* idOf("ns/b")
      const a = tokens.find((t) => t.id === aId)!
      const b = tokens.find((t) => t.id === bId)!
      assert.notStrictEqual(b.expiresAt, a.expiresAt, "b drew again instead of taking a's mark")
      assert.isAtLeast(counts.snapshots, 32, "every mint read the snapshot")
      assert.isBelow(counts.loads - loadsBefore, 30, "b's mint did not load the 31 other keys one by one")
    }).pipe(Effect.provide(Layer.mergeAll(FakeGitLab.gitlabLayer, sinkMemory, withSnapshot))),
  )
})

describe("issue 7: targets are stored by numeric id", () => {
  it.effect("a path is resolved once, before the first mint, and the id is used from then on", () =>
    Effect.gen(function* () {
      const fake = yield* FakeGitLab
      const j = job()
      yield* reconcile(j)
      const rec = yield* stateOf(j.key)
      assert.match(rec.current!.location.target.id, /^\d+$/)
      assert.deepStrictEqual(Object.values(rec.targets ?? {}), [rec.current!.location.target.id])
      yield* rotate(j, yield* Clock.currentTimeMillis)
      assert.strictEqual(fake.calls.filter((c) => c.op === "resolve").length, 1)
    }).pipe(Effect.provide(TestLayer)),
  )

  it.effect("a project renamed mid-life keeps its tokens revocable, and a new project at the old path is not touched", () =>
    Effect.gen(function* () {
      const fake = yield* FakeGitLab
      const j = job({ policy: { refreshIntervalMs: HOUR, graceMs: 0 } })
      yield* reconcile(j)
      yield* TestClock.adjust(HOUR)
      yield* reconcile(j)
      const ours = (yield* live).map((t) => t.id)
      fake.move("project", "group/project", "group/renamed")
      // Another project takes the old path, with a token of its own.
      const squatter = fake.addForeign("project:group/project", { name: "eso-managed", username: "eso", scopes: ["read_registry"], expiresAt: null })
      const report = yield* revokeAll(j)
      assert.deepStrictEqual(report.revokeErrors, [])
      assert.deepStrictEqual(
        report.actions.filter((a) => a.action === "revoked").map((a) => a.tokenId),
        ours,
      )
      assert.strictEqual((yield* live).length, 0, "every token reported revoked is really gone")
      assert.isTrue(fake.tokens.has(squatter.id))
    }).pipe(Effect.provide(TestLayer)),
  )
})

describe("target hints", () => {
  it.effect("with hints, the first mint neither resolves nor lists, and records the id and watermark in the intent's save", () =>
    Effect.gen(function* () {
      const fake = yield* FakeGitLab
      const j = job()
      // Learn the numeric id the way a caller would, then start over with a fresh key.
      const numericId = fake.targetKey({ kind: "project", id: "group/project" }).split(":")[1]!
      const hinted = job({ key: "ns/hinted", targetHints: { numericId, highestTokenId: 41 } })
      const report = yield* reconcile(hinted)
      assert.deepStrictEqual(
        fake.calls.map((c) => c.op),
        ["create"],
        "no resolve, no list: one POST",
      )
      const rec = yield* stateOf(hinted.key)
      assert.strictEqual(rec.current?.id, report.currentTokenId)
      assert.deepStrictEqual(rec.targets, { [`${j.spec.url}|project|group/project`]: numericId })
      assert.strictEqual(rec.current?.location.target.id, numericId)
      assert.isAtLeast(Object.values(rec.watermarks)[0]!, 41)
    }).pipe(Effect.provide(TestLayer)),
  )

  it.effect("once the record knows its target, hints are ignored", () =>
    Effect.gen(function* () {
      const fake = yield* FakeGitLab
      const j = job({ policy: { refreshIntervalMs: HOUR, graceMs: 0 } })
      yield* reconcile(j)
      const before = yield* stateOf(j.key)
      yield* TestClock.adjust(HOUR)
      yield* reconcile({ ...j, targetHints: { numericId: "999999", highestTokenId: 1 } })
      const after = yield* stateOf(j.key)
      assert.deepStrictEqual(after.targets, before.targets)
      assert.strictEqual(after.current?.location.target.id, before.current?.location.target.id)
      assert.strictEqual(fake.calls.filter((c) => c.op === "resolve").length, 1)
    }).pipe(Effect.provide(TestLayer)),
  )
})

describe("issue 7: calm retries", () => {
  it.effect("a failed revocation is retried only after an exponential, jittered, capped back-off persisted per token", () =>
    Effect.gen(function* () {
      const fake = yield* FakeGitLab
      const j = job({ policy: { refreshIntervalMs: HOUR, graceMs: 0 } })
      yield* reconcile(j)
      fake.failAlways.set("revoke", errors.forbidden())
      yield* TestClock.adjust(HOUR)
      const gaps: number[] = []
      let report = yield* reconcile(j)
      for (let i = 0; i < 9; i++) {
        const t = (yield* stateOf(j.key)).retiring[0]!
        const now = yield* Clock.currentTimeMillis
        assert.strictEqual(t.revokeAttempts, i + 1)
        assert.isAbove(report.nextAt!, now, "nextAt is never in the past")
        gaps.push(t.retryAt! - now)
        yield* TestClock.adjust(t.retryAt! - now)
        report = yield* reconcile(j)
      }
      assert.isAtLeast(gaps[0]!, 0.8 * 30_000)
      assert.isAtMost(gaps[0]!, 1.2 * 30_000)
      for (let i = 1; i < 5; i++) assert.isAbove(gaps[i]!, gaps[i - 1]!, `grows: ${gaps.join(", ")}`)
      assert.isAtMost(Math.max(...gaps), 1.2 * 3_600_000, "capped at about an hour")
    }).pipe(Effect.provide(TestLayer)),
  )

  it.effect("a rate-limited revocation waits at least GitLab's Retry-After", () =>
    Effect.gen(function* () {
      const fake = yield* FakeGitLab
      const j = job({ policy: { refreshIntervalMs: HOUR, graceMs: 0 } })
      yield* reconcile(j)
      fake.failNext.set("revoke", { error: new RateLimited({ message: "429", retryAfterMs: 2 * HOUR }) })
      yield* TestClock.adjust(HOUR)
      const report = yield* reconcile(j)
      const now = yield* Clock.currentTimeMillis
      assert.isAtLeast((yield* stateOf(j.key)).retiring[0]!.retryAt!, now + 2 * HOUR)
      assert.deepStrictEqual(
        report.revokeErrors.map((e) => e.tokenId),
        [(yield* stateOf(j.key)).retiring[0]!.id],
      )
    }).pipe(Effect.provide(TestLayer)),
  )

  it.effect("an unsettled create that blocks a due rotation does not make nextAt the past", () =>
    Effect.gen(function* () {
      const fake = yield* FakeGitLab
      const j = job({ policy: { refreshIntervalMs: HOUR, graceMs: 0 } })
      yield* reconcile(j)
      yield* TestClock.adjust(HOUR)
      fake.failNext.set("create", { error: errors.lost(), applied: false })
      yield* Effect.flip(reconcile(j))
      yield* TestClock.adjust(5_000)
      const report = yield* reconcile(j)
      assert.isTrue(report.openIntent)
      const now = yield* Clock.currentTimeMillis
      assert.strictEqual(report.nextAt, HOUR + 60_000, "the moment the create has settled, not the overdue rotation")
      assert.isAbove(report.nextAt!, now)
    }).pipe(Effect.provide(TestLayer)),
  )
})

describe("issue 7 §5: smaller defects", () => {
  it.effect("when State cannot record a minted token, its id is kept and it is revoked at once", () =>
    Effect.gen(function* () {
      const state = yield* State
      const j = job()
      let refused = false
      const flaky = State.of({
        ...state,
        save: (key, record, expected) =>
          record.pending !== undefined && !refused
            ? Effect.sync(() => {
                refused = true
              }).pipe(Effect.andThen(Effect.fail(new StateError({ key, message: "disk full (test)" }))))
            : state.save(key, record, expected),
      })
      const failed = yield* Effect.flip(reconcile(j).pipe(Effect.provideService(State, flaky)))
      assert.strictEqual(failed._tag, "StateError")
      assert.strictEqual((yield* live).length, 0, "the minted token did not stay live")
    }).pipe(Effect.provide(TestLayer)),
  )

  it.effect("an undelivered token is not revoked at once when the sink holds an altered credential: it gets the grace", () =>
    Effect.gen(function* () {
      const fake = yield* FakeGitLab
      const j = job({ policy: { refreshIntervalMs: HOUR, graceMs: 5 * MIN } })
      yield* reconcile(j)
      yield* TestClock.adjust(HOUR)
      // A crash after the create of the next token, before delivery: it is pending.
      const rec = yield* stateOf(j.key)
      const gitlab = yield* GitLab
      const minted = yield* gitlab.create(j.connection, rec.current!.location.target, { name: "eso-managed", scopes: ["read_registry"], username: "eso" })
      yield* putRecord({ ...rec, generation: rec.generation + 1, pending: { ...rec.current!, id: minted.id, generation: rec.generation + 1, createdAt: HOUR } })
      // Someone edited the sink: it holds a credential with an id gldt never made.
      ;(yield* MemorySink).values.set(j.key, { username: "eso", token: Redacted.make("edited"), tokenId: 999_999, gitlabUrl: "https://gitlab.com" })
      yield* recover(j, { graceMs: 5 * MIN })
      assert.isTrue(fake.tokens.has(minted.id), "not revoked at once")
      const retiring = (yield* stateOf(j.key)).retiring.find((t) => t.id === minted.id)
      assert.strictEqual(retiring?.revokeAfter, HOUR + 5 * MIN)
    }).pipe(Effect.provide(TestLayer)),
  )
})
