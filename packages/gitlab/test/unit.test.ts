import { readFileSync } from "node:fs"
import { assert, describe, it } from "@effect/vitest"
import { Result } from "effect"
import { Headers } from "effect/http"
import { decodeEntity } from "../src/internal/entity.ts"
import { parseErrorBody } from "../src/internal/errorBody.ts"
import { certainlyNotSent, classifyNetwork, errorChain } from "../src/internal/network.ts"
import { baseUrl, escapeId, nextPage, targetPath } from "../src/internal/paths.ts"
import { retryAfterMs } from "../src/internal/retryHints.ts"
import { version } from "../src/internal/version.ts"
import { defaults, resolveOptions } from "../src/Options.ts"

const headers = (h: Record<string, string>) => Headers.fromInput(h)

describe("paths and URLs", () => {
  it("escapes a full path once and keeps numeric ids", () => {
    assert.strictEqual(escapeId("group/sub/project"), "group%2Fsub%2Fproject")
    assert.strictEqual(escapeId("42"), "42")
    assert.strictEqual(escapeId("my group/a b"), "my%20group%2Fa%20b")
    assert.strictEqual(targetPath({ kind: "project", id: "g/p" }), "/projects/g%2Fp")
    assert.strictEqual(targetPath({ kind: "group", id: "7" }), "/groups/7")
  })

  it("trims trailing slashes, keeps a path prefix and drops a pasted /api/v4", () => {
    const href = (url: string) => {
      const r = baseUrl({ url })
      assert.isTrue(Result.isSuccess(r), url)
      const u = (r as Result.Success<URL, never>).success
      return `${u.origin}${u.pathname}`
    }
    assert.strictEqual(href("https://gitlab.example.com"), "https://gitlab.example.com/")
    assert.strictEqual(href("https://gitlab.example.com///"), "https://gitlab.example.com/")
    assert.strictEqual(href("https://host/gitlab/"), "https://host/gitlab")
    assert.strictEqual(href("https://host/gitlab/api/v4/"), "https://host/gitlab")
  })

  it("refuses http without allowHttp, credentials, queries and other schemes", () => {
    const fail = (url: string, allowHttp?: boolean) => {
      const r = baseUrl({ url, allowHttp })
      assert.isTrue(Result.isFailure(r), url)
      return (r as Result.Failure<URL, { message: string }>).failure.message
    }
    assert.match(fail("http://gitlab.local"), /use https:\/\/ \(or --allow-http/)
    assert.isTrue(Result.isSuccess(baseUrl({ url: "http://gitlab.local", allowHttp: true })))
    assert.notInclude(fail("https://user:hunter2@gitlab.local"), "hunter2")
    assert.match(fail("https://gitlab.local/?x=1"), /query/)
    assert.match(fail("ftp://gitlab.local"), /https/)
    assert.match(fail("not a url"), /not a valid/)
  })
})

describe("answers", () => {
  it("reads both error body shapes, objects and non-JSON", () => {
    assert.deepStrictEqual(parseErrorBody('{"message":"404 Not found"}', "application/json").message, "404 Not found")
    const oauth = parseErrorBody('{"error":"invalid_token","error_description":"Token is expired."}', undefined)
    assert.strictEqual(oauth.error, "invalid_token")
    assert.strictEqual(oauth.errorDescription, "Token is expired.")
    assert.strictEqual(parseErrorBody('{"message":{"name":["is too long"]}}', undefined).message, '{"name":["is too long"]}')
    assert.strictEqual(parseErrorBody("Retry later\n", "text/plain").text, "Retry later")
    assert.isTrue(parseErrorBody("<!DOCTYPE html><html>502</html>", "text/html").html)
    assert.deepStrictEqual(parseErrorBody("", undefined), {})
  })

  it("computes the server's wait from Retry-After, RateLimit-Reset or RateLimit-ResetTime", () => {
    const now = Date.parse("2026-01-01T00:00:00Z")
    assert.strictEqual(retryAfterMs(headers({ "retry-after": "7" }), now), 7000)
    assert.strictEqual(retryAfterMs(headers({ "retry-after": "Thu, 01 Jan 2026 00:00:30 GMT" }), now), 30_000)
    assert.strictEqual(retryAfterMs(headers({ "ratelimit-reset": String(now / 1000 + 12) }), now), 12_000)
    assert.strictEqual(retryAfterMs(headers({ "ratelimit-resettime": "Thu, 01 Jan 2026 00:00:05 GMT" }), now), 5000)
    assert.strictEqual(retryAfterMs(headers({ "retry-after": "soon", "ratelimit-reset": String(now / 1000 + 3) }), now), 3000)
    assert.strictEqual(retryAfterMs(headers({}), now), undefined)
  })

  it("follows X-Next-Page, and copes without it", () => {
    assert.strictEqual(nextPage(headers({ "x-next-page": "2" }), 1, 100), 2)
    assert.strictEqual(nextPage(headers({ "x-next-page": "" }), 3, 100), undefined)
    assert.strictEqual(nextPage(headers({ "x-next-page": "1" }), 1, 100), undefined)
    assert.strictEqual(nextPage(headers({}), 1, 100), 2)
    assert.strictEqual(nextPage(headers({}), 2, 99), undefined)
    assert.strictEqual(nextPage(headers({ "x-next-page": "5" }), 4, 0), undefined)
  })

  it("decodes entities of old and new GitLab without ever echoing values", () => {
    const now = Date.parse("2026-01-01T00:00:00Z")
    const old = decodeEntity({ id: 3, name: "n", username: "u", expires_at: "2025-06-01T00:00:00.000Z", scopes: ["read_repository"] }, now)
    assert.deepStrictEqual(old, {
      id: 3,
      name: "n",
      username: "u",
      expiresAt: "2025-06-01T00:00:00.000Z",
      scopes: ["read_repository"],
      revoked: false,
      expired: true,
    })
    const withToken = decodeEntity({ id: 4, name: "n", username: "u", expires_at: null, scopes: [], token: "gldt-secret" }, now)
    assert.notProperty(withToken, "token")
    const bad = decodeEntity({ id: "gldt-notanid", name: "n" }, now)
    assert.strictEqual(bad, "an entry lacks a numeric id")
  })
})

describe("options", () => {
  it("has sane defaults and a User-Agent with the package version", () => {
    const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string }
    assert.strictEqual(version, pkg.version)
    assert.strictEqual(defaults.userAgent, `gldt/${pkg.version}`)
    const o = resolveOptions({ maxAttempts: 0, requestTimeout: "2 seconds" })
    assert.strictEqual(o.maxAttempts, 1)
    assert.strictEqual(o.requestTimeout.toString().length > 0, true)
    assert.strictEqual(resolveOptions().maxAttempts, 5)
  })
})

describe("network failures are classified by timing, not by codes (issue 7 §5)", () => {
  const post = { method: "POST", path: "/projects/42/deploy_tokens", kind: "project", targetId: "42" } as const
  const coded = (code: string, extra: Record<string, unknown> = {}) => Object.assign(new Error(code), { code }, extra)

  it("an unreachable-host code deep in the cause chain, after the connection was up, may have been applied", () => {
    const cause = Object.assign(new Error("socket hang up"), { code: "ECONNRESET", cause: coded("EHOSTUNREACH", { gldtRequestWritable: true }) })
    const f = classifyNetwork(post, "https://gitlab.example.com", cause)
    assert.isTrue(f.error._tag === "Unavailable" && f.error.maybeApplied)
    assert.isFalse(f.retryable)
  })

  it("a TLS code after the handshake (request written) may have been applied; during the handshake it was not sent", () => {
    const after = classifyNetwork(post, "https://gitlab.example.com", coded("ERR_SSL_DECRYPTION_FAILED_OR_BAD_RECORD_MAC", { gldtRequestWritable: true }))
    assert.isTrue(after.error._tag === "Unavailable" && after.error.maybeApplied)
    const during = classifyNetwork(post, "https://gitlab.example.com", coded("UNABLE_TO_VERIFY_LEAF_SIGNATURE", { gldtRequestWritable: false }))
    assert.isTrue(during.error._tag === "Unavailable" && !during.error.maybeApplied)
    assert.match(during.error.message, /pass it as caPem/)
  })

  it("without the transport's mark only a resolver failure or refused connect as the outermost error counts as not sent", () => {
    assert.isTrue(certainlyNotSent(errorChain(coded("ECONNREFUSED"))))
    assert.isTrue(certainlyNotSent(errorChain(coded("ENOTFOUND"))))
    assert.isFalse(certainlyNotSent(errorChain(coded("EHOSTUNREACH"))))
    assert.isFalse(certainlyNotSent(errorChain(Object.assign(coded("ECONNRESET"), { cause: coded("ENOTFOUND") }))))
    assert.isFalse(certainlyNotSent(errorChain(coded("CERT_HAS_EXPIRED"))))
  })
})
