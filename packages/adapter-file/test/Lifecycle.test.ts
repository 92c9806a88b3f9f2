/** Core's lifecycle over FileState + FileSink: the file backends compose with reconcile/rotate/revokeAll. */
import * as fs from "node:fs"
import * as path from "node:path"
import type { GitLab } from "@gldt/core/GitLab"
import { type Job, reconcile, revokeAll, rotate } from "@gldt/core/Lifecycle"
import type { Sink } from "@gldt/core/Sink"
import { type DeployTokenSpec, validateSpec } from "@gldt/core/Spec"
import { State } from "@gldt/core/State"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Option, Redacted } from "effect"
import { TestClock } from "effect/testing"
import { FakeGitLab } from "../../core/test/FakeGitLab.ts"
import * as FileSink from "../src/FileSink.ts"
import * as FileState from "../src/FileState.ts"
import type { Format } from "../src/Format.ts"
import { filesUnder, tempDir } from "./helpers.ts"

const HOUR = 3_600_000
const MIN = 60_000

const spec = (): DeployTokenSpec => {
  const r = validateSpec({
    projectID: "group/project",
    name: "eso-managed",
    scopes: ["read_registry", "read_repository"],
    username: "eso",
    auth: { token: { secretRef: { name: "gitlab-api-token", key: "token" } } },
  })
  if (r.spec === undefined) throw new Error(JSON.stringify(r.problems))
  return r.spec
}

const job: Job = {
  key: "default/gitlab-deploy-token",
  spec: spec(),
  connection: { url: "https://gitlab.com", accessToken: Redacted.make("glpat-secret-access") },
  policy: { refreshIntervalMs: HOUR, graceMs: 5 * MIN },
}

/** Runs `body` with FileState in `<tmp>/state` and a FileSink at `<tmp>/out/token.env`. */
const withFiles = <A, E>(
  body: (paths: { readonly stateDir: string; readonly sinkFile: string; readonly outDir: string }) => Effect.Effect<A, E, State | Sink | GitLab | FakeGitLab>,
  format: Format = "env",
  sinkPath?: (base: string) => string,
) =>
  Effect.scoped(
    Effect.gen(function* () {
      const base = yield* tempDir
      const stateDir = path.join(base, "state")
      const outDir = path.join(base, "out")
      fs.mkdirSync(outDir)
      const sinkFile = sinkPath ? sinkPath(base) : path.join(outDir, "token.env")
      const layer = Layer.mergeAll(FakeGitLab.gitlabLayer, FileState.layer({ dir: stateDir, lockPollMs: 10 }), FileSink.layer({ path: sinkFile, format }))
      return yield* body({ stateDir, sinkFile, outDir }).pipe(Effect.provide(layer))
    }),
  )

const tokenIn = (sinkFile: string) => /^GITLAB_DEPLOY_TOKEN=(.*)$/m.exec(fs.readFileSync(sinkFile, "utf8"))?.[1]
const idIn = (sinkFile: string) => Number(/^GITLAB_DEPLOY_TOKEN_ID=(.*)$/m.exec(fs.readFileSync(sinkFile, "utf8"))?.[1])

const live = Effect.gen(function* () {
  const fake = yield* FakeGitLab
  return [...fake.tokens.values()].filter((t) => !t.foreign)
})

const current = Effect.gen(function* () {
  const state = yield* State
  return Option.getOrThrow(yield* state.load(job.key)).record
})

describe("lifecycle over FileState + FileSink", () => {
  it.effect("mints, delivers, rotates and revokes; no token value ever reaches the state directory", () =>
    withFiles(({ stateDir, sinkFile }) =>
      Effect.gen(function* () {
        const secrets = new Set<string>()
        const first = yield* reconcile(job)
        assert.deepStrictEqual(
          first.actions.map((a) => a.action),
          ["minted", "delivered"],
        )
        const [t1] = yield* live
        assert.strictEqual(tokenIn(sinkFile), t1!.secret)
        assert.strictEqual(idIn(sinkFile), t1!.id)
        secrets.add(t1!.secret)
        assert.strictEqual((yield* current).current?.id, t1!.id)

        // A no-op reconcile: the sink's sidecar proves it still holds the current token.
        assert.deepStrictEqual((yield* reconcile(job)).actions, [])

        yield* TestClock.adjust(HOUR)
        const rotated = yield* reconcile(job)
        assert.strictEqual(rotated.reason, "refresh interval elapsed")
        const newest = (yield* current).current!
        assert.notStrictEqual(newest.id, t1!.id)
        assert.strictEqual(idIn(sinkFile), newest.id)
        const t2 = (yield* live).find((t) => t.id === newest.id)!
        assert.strictEqual(tokenIn(sinkFile), t2.secret)
        secrets.add(t2.secret)
        assert.strictEqual((yield* live).length, 2, "the old token lives through the grace")

        yield* TestClock.adjust(5 * MIN)
        yield* reconcile(job)
        assert.deepStrictEqual(
          (yield* live).map((t) => t.id),
          [newest.id],
        )

        for (const f of filesUnder(stateDir)) {
          const text = fs.readFileSync(path.join(stateDir, f), "utf8")
          for (const s of secrets) assert.notInclude(text, s, `${f} holds a token value`)
          assert.notInclude(text, "glpat-secret-access")
        }
        assert.notInclude(fs.readFileSync(`${sinkFile}.gldt.json`, "utf8"), t2.secret)
        assert.deepStrictEqual(fs.readdirSync(stateDir), ["default%2Fgitlab-deploy-token.json"])
      }),
    ),
  )

  it.effect("an edited credential file triggers a rotation", () =>
    withFiles(({ sinkFile }) =>
      Effect.gen(function* () {
        yield* reconcile(job)
        fs.writeFileSync(sinkFile, fs.readFileSync(sinkFile, "utf8").replace(/^GITLAB_DEPLOY_TOKEN=.*$/m, "GITLAB_DEPLOY_TOKEN=edited"))
        const report = yield* reconcile(job)
        assert.strictEqual(report.reason, "the sink holds a different credential")
        assert.strictEqual(idIn(sinkFile), (yield* current).current!.id)
      }),
    ),
  )

  it.effect("a deleted credential file triggers a new mint", () =>
    withFiles(({ sinkFile }) =>
      Effect.gen(function* () {
        yield* reconcile(job)
        fs.rmSync(sinkFile)
        const report = yield* reconcile(job)
        assert.strictEqual(report.reason, "the sink lost the credential")
        assert.strictEqual(idIn(sinkFile), (yield* current).current!.id)
      }),
    ),
  )

  it.effect("a sink that cannot be written is found before any mint", () =>
    withFiles(
      ({ stateDir }) =>
        Effect.gen(function* () {
          const fake = yield* FakeGitLab
          const failed = yield* Effect.flip(reconcile(job))
          assert.strictEqual(failed._tag, "SinkError")
          assert.include(failed.message, "does not exist")
          assert.strictEqual(fake.calls.filter((c) => c.op === "create").length, 0)
          assert.isFalse(fs.existsSync(stateDir) && fs.readdirSync(stateDir).some((n) => n.endsWith(".json")))
        }),
      "env",
      (base) => path.join(base, "missing", "token.env"),
    ),
  )

  it.effect("a corrupt state file stops the lifecycle with StateError; nothing is minted or overwritten", () =>
    withFiles(({ stateDir }) =>
      Effect.gen(function* () {
        const fake = yield* FakeGitLab
        yield* reconcile(job)
        const file = path.join(stateDir, "default%2Fgitlab-deploy-token.json")
        fs.writeFileSync(file, "not json")
        yield* TestClock.adjust(HOUR)
        const failed = yield* Effect.flip(reconcile(job))
        assert.strictEqual(failed._tag, "StateError")
        assert.include(failed.message, file)
        assert.strictEqual(fake.calls.filter((c) => c.op === "create").length, 1)
        assert.strictEqual(fs.readFileSync(file, "utf8"), "not json")
      }),
    ),
  )

  it.effect("revokeAll revokes every token, removes the credential files and drops the state document", () =>
    withFiles(({ stateDir, outDir }) =>
      Effect.gen(function* () {
        yield* reconcile(job)
        yield* TestClock.adjust(HOUR)
        yield* reconcile(job)
        assert.strictEqual((yield* live).length, 2)
        yield* revokeAll(job, { removeFromSink: true })
        assert.strictEqual((yield* live).length, 0)
        assert.deepStrictEqual(fs.readdirSync(outDir), [])
        assert.deepStrictEqual(fs.readdirSync(stateDir), [])
        assert.deepStrictEqual(yield* (yield* State).list(), [])
      }),
    ),
  )

  it.live("two concurrent rotate requests mint once (real clock, real lock)", () =>
    withFiles(
      ({ sinkFile }) =>
        Effect.gen(function* () {
          const fake = yield* FakeGitLab
          yield* reconcile(job)
          yield* Effect.sleep(5)
          const requestedAt = Date.now()
          yield* Effect.all([rotate(job, requestedAt), rotate(job, requestedAt)], { concurrency: 2 })
          assert.strictEqual(fake.calls.filter((c) => c.op === "create").length, 2, "initial mint + one rotation")
          const body = JSON.parse(fs.readFileSync(sinkFile, "utf8"))
          assert.strictEqual(body.tokenId, (yield* current).current!.id)
        }),
      "json",
    ),
  )
})
