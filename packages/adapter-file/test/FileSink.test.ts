import { execFileSync } from "node:child_process"
import { createHash } from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import type { Credential } from "@gldt/core/Sink"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Redacted } from "effect"
import * as FileSink from "../src/FileSink.ts"
import type { FileSinkOptions } from "../src/FileSink.ts"
import * as StdoutSink from "../src/StdoutSink.ts"
import { defaultRegistry, type Format, render } from "../src/Format.ts"
import { modeOf, tempDir } from "./helpers.ts"

const KEY = "default/gitlab-deploy-token"
const TOKEN = "gldt-AbC_123-xyz"

const cred = (overrides: Partial<Credential> = {}): Credential => ({
  username: "gitlab+deploy-token-42",
  token: Redacted.make(TOKEN),
  tokenId: 42,
  gitlabUrl: "https://gitlab.example.com",
  ...overrides,
})

const EXPECTED: Record<Format, string> = {
  env: "GITLAB_DEPLOY_USERNAME=gitlab+deploy-token-42\nGITLAB_DEPLOY_TOKEN=gldt-AbC_123-xyz\nGITLAB_DEPLOY_TOKEN_ID=42\n",
  json: '{"username":"gitlab+deploy-token-42","token":"gldt-AbC_123-xyz","tokenId":42,"gitlabUrl":"https://gitlab.example.com"}\n',
  dockerconfigjson:
    '{"auths":{"registry.gitlab.example.com":{"username":"gitlab+deploy-token-42","password":"gldt-AbC_123-xyz","auth":"Z2l0bGFiK2RlcGxveS10b2tlbi00MjpnbGR0LUFiQ18xMjMteHl6"}}}\n',
  netrc: "machine gitlab.example.com login gitlab+deploy-token-42 password gldt-AbC_123-xyz\n",
  raw: "gldt-AbC_123-xyz",
}

/** A sink on `<tmp>/out/<name>`, with the directory created. */
const sinkIn = (options: Omit<FileSinkOptions, "path"> & { readonly name?: string }) =>
  Effect.gen(function* () {
    const dir = path.join(yield* tempDir, "out")
    fs.mkdirSync(dir)
    const file = path.join(dir, options.name ?? "credential")
    const sink = yield* FileSink.make({ ...options, path: file })
    return { dir, file, sidecar: `${file}.gldt.json`, sink }
  })

describe("FileSink", () => {
  for (const format of Object.keys(EXPECTED) as Format[]) {
    it.effect(`${format}: exact content, mode 0600, sidecar without the secret`, () =>
      Effect.scoped(
        Effect.gen(function* () {
          const { dir, file, sidecar, sink } = yield* sinkIn({ format })
          yield* sink.check(KEY)
          yield* sink.deliver(KEY, cred())
          assert.strictEqual(fs.readFileSync(file, "utf8"), EXPECTED[format])
          assert.strictEqual(modeOf(file), 0o600)
          assert.strictEqual(modeOf(sidecar), 0o600)
          const meta = JSON.parse(fs.readFileSync(sidecar, "utf8"))
          assert.strictEqual(meta.tokenId, 42)
          assert.strictEqual(meta.format, format)
          assert.isUndefined(meta.next)
          assert.notInclude(fs.readFileSync(sidecar, "utf8"), TOKEN)
          assert.deepStrictEqual(yield* sink.inspect(KEY), { _tag: "Holds", tokenId: 42 })
          // Atomic writes leave no temp file behind.
          assert.deepStrictEqual(fs.readdirSync(dir).sort(), ["credential", "credential.gldt.json"])
        }),
      ),
    )
  }

  it("dockerconfigjson registry: gitlab.com, a self-managed guess, or the configured one", () => {
    assert.strictEqual(defaultRegistry("https://gitlab.com"), "registry.gitlab.com")
    assert.strictEqual(defaultRegistry("https://gitlab.example.com:8443/"), "registry.gitlab.example.com")
    const text = render("dockerconfigjson", cred({ gitlabUrl: "https://gitlab.com" }))
    assert.deepStrictEqual(Object.keys(JSON.parse(text).auths), ["registry.gitlab.com"])
    const custom = render("dockerconfigjson", cred(), { registry: "gitlab.example.com:5050" })
    assert.deepStrictEqual(Object.keys(JSON.parse(custom).auths), ["gitlab.example.com:5050"])
  })

  it("env quoting: bare when safe, single-quoted otherwise, refused when ambiguous", () => {
    assert.include(render("env", cred({ token: Redacted.make("a b$c") })), "GITLAB_DEPLOY_TOKEN='a b$c'\n")
    assert.throws(() => render("env", cred({ token: Redacted.make("a\nb") })))
    assert.throws(() => render("env", cred({ token: Redacted.make("it's") })))
    assert.throws(() => render("netrc", cred({ token: Redacted.make("a b") })))
  })

  it.effect("a credential that cannot be written in the format is a SinkError, and nothing is written", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const { dir, sink } = yield* sinkIn({ format: "env" })
        const e = yield* Effect.flip(sink.deliver(KEY, cred({ token: Redacted.make("bad\ntoken") })))
        assert.strictEqual(e._tag, "SinkError")
        assert.strictEqual(e.key, KEY)
        assert.notInclude(e.message, "bad\ntoken")
        assert.deepStrictEqual(fs.readdirSync(dir), [])
      }),
    ),
  )

  it.effect("mode option", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const { file, sidecar, sink } = yield* sinkIn({ format: "raw", mode: 0o640 })
        yield* sink.deliver(KEY, cred())
        assert.strictEqual(modeOf(file), 0o640)
        assert.strictEqual(modeOf(sidecar), 0o600)
      }),
    ),
  )

  it.effect("check fails, naming the path and the fix, for targets that fail even as root", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const base = yield* tempDir
        const regular = path.join(base, "file")
        fs.writeFileSync(regular, "x")
        fs.mkdirSync(path.join(base, "a-dir"))
        fs.symlinkSync(regular, path.join(base, "link"))
        const cases: Array<[string, string]> = [
          [path.join(base, "missing", "credential"), "does not exist"],
          [path.join(base, "a-dir"), "is a directory"],
          [path.join(regular, "sub"), "is not a directory"],
          [path.join(base, "link"), "symbolic link"],
          // procfs refuses new files even to root.
          ["/proc/gldt-credential", "cannot create files in /proc"],
          // A file gldt did not write (no sidecar) is not clobbered.
          [regular, "was not written by gldt"],
        ]
        for (const [target, expected] of cases) {
          const sink = yield* FileSink.make({ path: target, format: "env" })
          const e = yield* Effect.flip(sink.check(KEY))
          assert.strictEqual(e._tag, "SinkError")
          assert.include(e.message, target.startsWith("/proc") ? "/proc" : target)
          assert.include(e.message, expected)
        }
        // Opting in takes over the unmanaged file.
        const adopt = yield* FileSink.make({ path: regular, format: "env", adopt: true })
        yield* adopt.check(KEY)
        yield* adopt.deliver(KEY, cred())
        // Once gldt wrote it, check passes without adopt.
        yield* (yield* FileSink.make({ path: regular, format: "env" })).check(KEY)
        assert.deepStrictEqual(fs.readdirSync(base).sort(), ["a-dir", "file", "file.gldt.json", "link"])
      }),
    ),
  )

  it.effect("check fails for a path that is not a regular file (a FIFO)", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const base = yield* tempDir
        const fifo = path.join(base, "fifo")
        const made = yield* Effect.exit(Effect.sync(() => execFileSync("mkfifo", [fifo])))
        if (made._tag === "Failure") return
        const sink = yield* FileSink.make({ path: fifo, format: "raw" })
        const e = yield* Effect.flip(sink.check(KEY))
        assert.include(e.message, "is not a regular file")
      }),
    ),
  )

  it.effect("inspect: Empty when missing, the delivered id, 0 when altered, the in-flight id after a crash", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const { file, sidecar, sink } = yield* sinkIn({ format: "json" })
        assert.deepStrictEqual(yield* sink.inspect(KEY), { _tag: "Empty" })
        yield* sink.deliver(KEY, cred())
        yield* sink.deliver(KEY, cred({ tokenId: 43, token: Redacted.make("gldt-second") }))
        assert.deepStrictEqual(yield* sink.inspect(KEY), { _tag: "Holds", tokenId: 43 })
        // Someone edited the file.
        const delivered = fs.readFileSync(file, "utf8")
        fs.writeFileSync(file, delivered.replace("gldt-second", "gldt-edited"))
        assert.deepStrictEqual(yield* sink.inspect(KEY), { _tag: "Holds", tokenId: 0 })
        // A crash after the credential was replaced but before the sidecar's final write:
        // the sidecar still names the previous token and announces the next one.
        const meta = JSON.parse(fs.readFileSync(sidecar, "utf8"))
        fs.writeFileSync(file, delivered)
        fs.writeFileSync(sidecar, JSON.stringify({ format: "json", tokenId: 42, sha256: "0".repeat(64), next: { tokenId: 43, sha256: meta.sha256 } }))
        assert.deepStrictEqual(yield* sink.inspect(KEY), { _tag: "Holds", tokenId: 43 })
        // A crash before the credential was replaced: the file still holds the previous token.
        const previous = render("json", cred())
        fs.writeFileSync(file, previous)
        fs.writeFileSync(
          sidecar,
          JSON.stringify({
            format: "json",
            tokenId: 42,
            sha256: createHash("sha256").update(previous).digest("hex"),
            next: { tokenId: 43, sha256: meta.sha256 },
          }),
        )
        assert.deepStrictEqual(yield* sink.inspect(KEY), { _tag: "Holds", tokenId: 42 })
        // Sidecar gone or damaged: the file holds no token gldt can vouch for.
        fs.writeFileSync(sidecar, "{")
        assert.deepStrictEqual(yield* sink.inspect(KEY), { _tag: "Holds", tokenId: 0 })
        fs.rmSync(sidecar)
        assert.deepStrictEqual(yield* sink.inspect(KEY), { _tag: "Holds", tokenId: 0 })
        // The credential file gone: Empty.
        fs.rmSync(file)
        assert.deepStrictEqual(yield* sink.inspect(KEY), { _tag: "Empty" })
      }),
    ),
  )

  it.effect("inspect: a file written in another format holds nothing usable", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const { file, sink } = yield* sinkIn({ format: "json" })
        yield* sink.deliver(KEY, cred())
        const asEnv = yield* FileSink.make({ path: file, format: "env" })
        assert.deepStrictEqual(yield* asEnv.inspect(KEY), { _tag: "Holds", tokenId: 0 })
        const docker = yield* FileSink.make({ path: file, format: "dockerconfigjson", registry: "r.example.com" })
        yield* docker.deliver(KEY, cred())
        const otherRegistry = yield* FileSink.make({ path: file, format: "dockerconfigjson", registry: "other.example.com" })
        assert.deepStrictEqual(yield* otherRegistry.inspect(KEY), { _tag: "Holds", tokenId: 0 })
        assert.deepStrictEqual(yield* docker.inspect(KEY), { _tag: "Holds", tokenId: 42 })
      }),
    ),
  )

  it.effect("remove deletes the credential and its sidecar", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const { dir, sink } = yield* sinkIn({ format: "netrc" })
        yield* sink.deliver(KEY, cred())
        yield* sink.remove(KEY)
        assert.deepStrictEqual(fs.readdirSync(dir), [])
        assert.deepStrictEqual(yield* sink.inspect(KEY), { _tag: "Empty" })
        yield* sink.remove(KEY)
      }),
    ),
  )

  it.effect("remove succeeds when the sink's directory is gone (a decommissioned consumer stays revocable)", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const { dir, sink } = yield* sinkIn({ format: "env" })
        yield* sink.deliver(KEY, cred())
        fs.rmSync(dir, { recursive: true })
        yield* sink.remove(KEY)
        assert.deepStrictEqual(yield* sink.inspect(KEY), { _tag: "Empty" })
      }),
    ),
  )

  it.effect("deliver to a missing directory is a SinkError naming the path", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const file = path.join(yield* tempDir, "nope", "credential")
        const sink = yield* FileSink.make({ path: file, format: "raw" })
        const e = yield* Effect.flip(sink.deliver(KEY, cred()))
        assert.strictEqual(e._tag, "SinkError")
        assert.include(e.message, file)
      }),
    ),
  )
})

describe("StdoutSink", () => {
  it.effect("prints the credential in the format; check passes; inspect is Unknown", () =>
    Effect.gen(function* () {
      const out: string[] = []
      const sink = yield* StdoutSink.make({ format: "env", write: (t) => void out.push(t) })
      yield* sink.check(KEY)
      yield* sink.deliver(KEY, cred())
      assert.deepStrictEqual(out, [EXPECTED.env])
      assert.deepStrictEqual(yield* sink.inspect(KEY), { _tag: "Unknown" })
      yield* sink.remove(KEY)
      const failing = yield* StdoutSink.make({
        format: "raw",
        write: () => Promise.reject(new Error("EPIPE")),
      })
      const e = yield* Effect.flip(failing.deliver(KEY, cred()))
      assert.include(e.message, "EPIPE")
    }),
  )
})
