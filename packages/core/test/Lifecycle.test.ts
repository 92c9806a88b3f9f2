import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Option, Redacted } from "effect"
import { TestClock } from "effect/testing"
import { GitLab } from "../src/GitLab.ts"
import { type Job, reconcile, recover, revokeAll, rotate } from "../src/Lifecycle.ts"
import { MemorySink, Sink } from "../src/Sink.ts"
import { type DeployTokenSpec, validateSpec } from "../src/Spec.ts"
import { State } from "../src/State.ts"
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

const TestLayer = Layer.mergeAll(FakeGitLab.gitlabLayer, MemorySink.sinkLayer, State.layerMemory)

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
      assert.deepStrictEqual(report.actions.map((a) => a.action), ["minted", "delivered"])
      assert.strictEqual(sink.values.get(job().key)?.tokenId, tokens[0]!.id)
      assert.strictEqual(Redacted.value(sink.values.get(job().key)!.token), tokens[0]!.secret)
      const rec = yield* stateOf(job().key)
      assert.strictEqual(rec.current?.id, tokens[0]!.id)
      assert.isUndefined(rec.intent)
    }).pipe(Effect.provide(TestLayer)))

  it.effect("a no-op reconcile makes no GitLab call", () =>
    Effect.gen(function* () {
      const fake = yield* FakeGitLab
      yield* reconcile(job())
      const before = fake.calls.length
      yield* TestClock.adjust(10 * MIN)
      const report = yield* reconcile(job())
      assert.strictEqual(fake.calls.length, before)
      assert.deepStrictEqual(report.actions, [])
    }).pipe(Effect.provide(TestLayer)))

  it.effect("rotates at the refresh interval, not a moment before", () =>
    Effect.gen(function* () {
      yield* reconcile(job())
      const first = (yield* live)[0]!.id
      yield* TestClock.adjust(HOUR - 1)
      yield* reconcile(job())
      assert.deepStrictEqual((yield* live).map((t) => t.id), [first])
      yield* TestClock.adjust(1)
      const report = yield* reconcile(job())
      assert.strictEqual(report.reason, "refresh interval elapsed")
      assert.strictEqual((yield* live).length, 2, "old token kept during grace")
    }).pipe(Effect.provide(TestLayer)))

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
      assert.deepStrictEqual((yield* live).map((t) => t.id), [newest])
      const sink = yield* MemorySink
      assert.strictEqual(sink.values.get(j.key)?.tokenId, newest)
    }).pipe(Effect.provide(TestLayer)))

  it.effect("a spec change triggers rotation", () =>
    Effect.gen(function* () {
      yield* reconcile(job())
      const report = yield* reconcile(job({ spec: specOf({ scopes: ["read_registry"] }) }))
      assert.strictEqual(report.reason, "the spec changed")
      const rec = yield* stateOf(job().key)
      assert.deepStrictEqual(rec.current?.scopes, ["read_registry"])
    }).pipe(Effect.provide(TestLayer)))

  it.effect("an approaching expiry triggers rotation (expiresAfter)", () =>
    Effect.gen(function* () {
      const j = job({ spec: specOf({ expiresAfter: "72h" }), policy: { refreshIntervalMs: 0, graceMs: 0 } })
      const first = yield* reconcile(j)
      // Renewal margin defaults to a third of the lifetime capped at 24h: rotate at 48h.
      assert.strictEqual(first.nextAt, 48 * HOUR)
      yield* TestClock.adjust(48 * HOUR - 1)
      assert.strictEqual((yield* reconcile(j)).reason, undefined)
      yield* TestClock.adjust(1)
      assert.strictEqual((yield* reconcile(j)).reason, "the token expires soon")
      assert.strictEqual((yield* live).length, 1, "grace 0 revokes the old one at once")
    }).pipe(Effect.provide(TestLayer)))

  it.effect("the expiry sent carries a millisecond nonce and the requested second", () =>
    Effect.gen(function* () {
      yield* reconcile(job({ spec: specOf({ expiresAt: "2027-01-01T00:00:00Z" }) }))
      const t = (yield* live)[0]!
      assert.match(t.expiresAt!, /^2027-01-01T00:00:00\.\d{3}Z$/)
      assert.notStrictEqual(t.expiresAt, "2027-01-01T00:00:00.000Z")
    }).pipe(Effect.provide(TestLayer)))

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
    }).pipe(Effect.provide(TestLayer)))

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
        assert.deepStrictEqual(rec.retiring.map((t) => t.id), [old])
        assert.include(rec.retiring[0]!.lastError ?? "", make()._tag)
        // The next reconcile retries and confirms.
        const again = yield* reconcile(j)
        assert.deepStrictEqual(again.actions.map((a) => a.action), ["revoked"])
        assert.strictEqual((yield* stateOf(j.key)).retiring.length, 0)
      }).pipe(Effect.provide(TestLayer)))
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
    }).pipe(Effect.provide(TestLayer)))

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
    }).pipe(Effect.provide(TestLayer)))

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
    }).pipe(Effect.provide(TestLayer)))

  it.effect("without an expiry to carry a nonce, a look-alike after a lost create is a suspect, not revoked", () =>
    Effect.gen(function* () {
      const fake = yield* FakeGitLab
      const j = job()
      yield* reconcile(j)
      fake.failNext.set("create", { error: errors.lost(), applied: true })
      yield* TestClock.adjust(HOUR)
      yield* Effect.flip(reconcile(j))
      assert.isDefined((yield* stateOf(j.key)).intent, "unsettled: the intent stays open")
      yield* TestClock.adjust(60_000)
      yield* reconcile(j)
      const rec = yield* stateOf(j.key)
      assert.isUndefined(rec.intent)
      assert.strictEqual(rec.suspects.length, 1)
      assert.isTrue(fake.tokens.has(rec.suspects[0]!.id), "suspect left untouched")
    }).pipe(Effect.provide(TestLayer)))

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
        target: "project:group/project",
        name: intent.name,
        username: "eso",
        scopes: [...intent.scopes],
        expiresAt: intent.expiresAt,
        secret: "gldt-late-secret",
        foreign: false,
      })
      yield* TestClock.adjust(60_000)
      const report = yield* reconcile(j)
      assert.deepStrictEqual(report.actions.slice(0, 2).map((a) => [a.action, a.tokenId]), [["recovered", 5000], ["minted", report.currentTokenId!]])
      assert.isFalse(fake.tokens.has(5000))
      assert.strictEqual((yield* live).length, 1)
    }).pipe(Effect.provide(TestLayer)))

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
      assert.deepStrictEqual((yield* stateOf(a.key)).retiring.map((t) => t.id), [old], "still tracked (I1, I5)")
      // With the old instance's manifest and token it goes.
      const back = yield* revokeAll(a)
      assert.include(back.actions.map((x) => `${x.action} ${x.tokenId}`), `revoked ${old}`)
    }).pipe(Effect.provide(TestLayer)))

  it.effect("a token whose intent another writer closed mid-create stays tracked, even when its revocation fails", () =>
    Effect.gen(function* () {
      const fake = yield* FakeGitLab
      const state = yield* State
      const gitlab = yield* GitLab
      const sink = yield* Sink
      const j = job({ spec: specOf({ expiresAfter: "720h" }), policy: { refreshIntervalMs: HOUR, graceMs: 0, createSettleMs: 0 } })
      // A backend without a process lock (like Kubernetes), and a second writer whose recovery runs
      // while our create is in flight but before it lands: it sees nothing and closes the intent.
      const unlocked = State.of({ ...state, withLock: (_key, effect) => effect })
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
      assert.deepStrictEqual(rec.retiring.map((t) => t.id), minted, "and it is tracked (I1)")
      assert.include(rec.retiring[0]!.lastError ?? "", "Forbidden")
    }).pipe(Effect.provide(TestLayer)))

  it.effect("a sink that cannot be written is found before any mint", () =>
    Effect.gen(function* () {
      const fake = yield* FakeGitLab
      const sink = yield* MemorySink
      sink.broken.add(job().key)
      const failed = yield* Effect.flip(reconcile(job()))
      assert.strictEqual(failed._tag, "SinkError")
      assert.strictEqual(fake.calls.filter((c) => c.op === "create").length, 0)
    }).pipe(Effect.provide(TestLayer)))

  it.effect("two concurrent rotate requests mint once", () =>
    Effect.gen(function* () {
      const fake = yield* FakeGitLab
      const j = job()
      yield* reconcile(j)
      yield* TestClock.adjust(MIN)
      const requestedAt = MIN
      yield* Effect.all([rotate(j, requestedAt), rotate(j, requestedAt)], { concurrency: 2 })
      assert.strictEqual(fake.calls.filter((c) => c.op === "create").length, 2, "initial mint + one rotation")
    }).pipe(Effect.provide(TestLayer)))

  it.effect("a sink that lost the credential triggers a new mint", () =>
    Effect.gen(function* () {
      const j = job()
      yield* reconcile(j)
      ;(yield* MemorySink).values.delete(j.key)
      const report = yield* reconcile(j)
      assert.strictEqual(report.reason, "the sink lost the credential")
      assert.isTrue((yield* MemorySink).values.has(j.key))
    }).pipe(Effect.provide(TestLayer)))
})
