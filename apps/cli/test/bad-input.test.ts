/**
 * Criterion 6: bad input exits 2 with one clear `gldt: error: …` line per problem on stderr, and GitLab is not
 * contacted (the simulator's request log shows no POST — in fact no request at all).
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { type GldtResult, gldt, killStragglers, manifestYaml, removeTempDirs, type Sim, show, startSim, tempDir, writeManifest } from "./support.ts"

let sim: Sim
let dir: string

beforeAll(async () => {
  dir = tempDir("bad-input")
  sim = await startSim({ tls: true, dir })
})

afterAll(async () => {
  await sim?.stop()
  killStragglers()
  removeTempDirs()
})

/** Runs gldt in a fresh directory and checks the request log stayed empty. */
const badRun = async (args: (d: string) => string[], env: Record<string, string | undefined> = { GITLAB_TOKEN: sim.pat }) => {
  await sim.clearRequests()
  const d = tempDir("case")
  const r = await gldt(args(d), { cwd: d, env })
  const requests = await sim.requests()
  expect(
    requests.filter((q) => q.method === "POST"),
    `no POST was made: ${show(r)}`,
  ).toEqual([])
  expect(requests, `GitLab was not contacted at all: ${show(r)}`).toEqual([])
  expect((await sim.tokens(true)).filter((t) => t.createdBy === "api")).toEqual([])
  return { r, d }
}

/** Exit 2, nothing on stdout, and exactly `count` stderr lines, each `gldt: error: <text>`. */
const expectProblems = (r: GldtResult, count: number, ...patterns: RegExp[]) => {
  expect(r.code, show(r)).toBe(2)
  expect(r.stdout, show(r)).toBe("")
  expect(r.stderr.endsWith("\n"), show(r)).toBe(true)
  const lines = r.stderr.slice(0, -1).split("\n")
  for (const line of lines) expect(line, show(r)).toMatch(/^gldt: error: \S.{10,}$/)
  expect(lines, show(r)).toHaveLength(count)
  patterns.forEach((p, i) => {
    expect(lines[i], show(r)).toMatch(p)
  })
}

const common = (d: string, manifest: string, o: { sink?: string; ca?: string } = {}) => [
  "-f",
  manifest,
  "--state",
  `file:${d}/state`,
  "--sink",
  o.sink ?? `file:${d}/sink.env`,
  "--ca-file",
  o.ca ?? sim.ca!,
]

describe("bad input exits 2, one line per problem, no request", () => {
  it("malformed YAML", async () => {
    const { r } = await badRun((d) => {
      writeFileSync(join(d, "m.yaml"), "apiVersion: generators.external-secrets.io/v1alpha1\nkind: [GitlabDeployToken\nmetadata:\n  name: x\n")
      return ["rotate", ...common(d, join(d, "m.yaml"))]
    })
    expectProblems(r, 1, /m\.yaml: document 1: malformed YAML at line \d+/)
  })

  it("wrong kind", async () => {
    const { r } = await badRun((d) => ["rotate", ...common(d, writeManifest(d, { url: sim.url, kind: "GitlabDeployKey" }))])
    expect(r.code, show(r)).toBe(2)
    expect(r.stderr).toMatch(/^gldt: error: .*"GitlabDeployKey" is not supported/)
    expectProblems(r, r.stderr.split("\n").length - 1)
  })

  it("missing access token (no GITLAB_TOKEN)", async () => {
    const { r } = await badRun((d) => ["rotate", ...common(d, writeManifest(d, { url: sim.url }))], {})
    expectProblems(r, 1, /no GitLab access token: set GITLAB_TOKEN/)
  })

  it("an empty --token-file", async () => {
    const { r } = await badRun((d) => {
      writeFileSync(join(d, "pat"), "\n")
      return ["rotate", ...common(d, writeManifest(d, { url: sim.url })), "--token-file", join(d, "pat")]
    })
    expectProblems(r, 1, /--token-file: .* is empty/)
  })

  it("both projectID and groupID", async () => {
    const { r } = await badRun((d) => ["rotate", ...common(d, writeManifest(d, { url: sim.url, projectID: "42", groupID: "7" }))])
    expectProblems(r, 1, /set exactly one of projectID or groupID/)
  })

  // Issue 7 §4: each of these minted in a loop, crashed, or listed the whole instance before.
  it("renewBeforeExpiry at or above the token lifetime", async () => {
    const { r } = await badRun((d) => {
      writeFileSync(
        join(d, "m.yaml"),
        manifestYaml({ url: sim.url, expiresAfter: "24h" }).replace("  expiresAfter:", '  renewBeforeExpiry: "48h"\n  expiresAfter:'),
      )
      return ["rotate", ...common(d, join(d, "m.yaml"))]
    })
    expectProblems(r, 1, /spec\.renewBeforeExpiry: 48h0m0s is not well below the token lifetime \(expiresAfter 24h0m0s\); use at most half of it/)
  })

  it("expiresAfter large enough to overflow a date", async () => {
    const { r } = await badRun((d) => ["generate", ...common(d, writeManifest(d, { url: sim.url, expiresAfter: "9000000000h" }))])
    expectProblems(r, 1, /spec\.expiresAfter: "9000000000h" is too long; use at most 876000h \(100 years\)/)
  })

  it("groupID '..' (would list every token of the instance)", async () => {
    const { r } = await badRun((d) => ["generate", ...common(d, writeManifest(d, { url: sim.url, groupID: ".." }))])
    expectProblems(r, 1, /spec\.groupID: "\.\." has a '\.' or '\.\.' segment/)
  })

  it("several problems at once: one line each", async () => {
    const { r } = await badRun((d) => [
      "rotate",
      ...common(d, writeManifest(d, { url: sim.url, projectID: "42", groupID: "7", scopes: ["write_everything"], expiresAfter: "1h" })),
    ])
    expect(r.code, show(r)).toBe(2)
    expectProblems(r, 3, /projectID or groupID|scopes|expiresAfter/, /projectID or groupID|scopes|expiresAfter/, /projectID or groupID|scopes|expiresAfter/)
  })

  it("corrupt state file: reported in one line, left untouched", async () => {
    const garbage = "garbage\n{ not: json\n"
    const { r, d } = await badRun((d) => {
      mkdirSync(join(d, "state"))
      writeFileSync(join(d, "state", "e2e.json"), garbage)
      return ["rotate", ...common(d, writeManifest(d, { url: sim.url }))]
    })
    expectProblems(r, 1, /--state: state file .*e2e\.json is not valid JSON/)
    expect(readFileSync(join(d, "state", "e2e.json"), "utf8")).toBe(garbage)
  })

  it("state file with a record of the wrong shape", async () => {
    const { r } = await badRun((d) => {
      mkdirSync(join(d, "state"))
      writeFileSync(join(d, "state", "e2e.json"), JSON.stringify({ version: 1, record: { key: "e2e", generation: "two" } }))
      return ["rotate", ...common(d, writeManifest(d, { url: sim.url }))]
    })
    expectProblems(r, 1, /--state: /)
  })

  it("unwritable sink under /proc", async () => {
    const { r } = await badRun((d) => ["rotate", ...common(d, writeManifest(d, { url: sim.url }), { sink: "file:/proc/x/y" })])
    expectProblems(r, 1, /--sink: cannot deliver to \/proc\/x\/y/)
  })

  it("sink path below a regular file", async () => {
    const { r } = await badRun((d) => {
      writeFileSync(join(d, "plain"), "x")
      return ["rotate", ...common(d, writeManifest(d, { url: sim.url }), { sink: `file:${join(d, "plain", "sink.env")}` })]
    })
    expectProblems(r, 1, /--sink: cannot deliver to .*plain\/sink\.env: .*plain is not a directory/)
  })

  it("a file at the sink path that gldt did not write", async () => {
    const { r, d } = await badRun((d) => {
      writeFileSync(join(d, "sink.env"), "SOMEONE_ELSES=1\n")
      return ["rotate", ...common(d, writeManifest(d, { url: sim.url }))]
    })
    expectProblems(r, 1, /--sink: /)
    expect(readFileSync(join(d, "sink.env"), "utf8")).toBe("SOMEONE_ELSES=1\n")
  })

  it("plain http:// without --allow-http", async () => {
    const { r } = await badRun((d) => ["rotate", ...common(d, writeManifest(d, { url: sim.url.replace("https:", "http:") }))])
    expectProblems(r, 1, /spec\.url/)
  })

  it("a --ca-file that holds no certificate, a bad --grace", async () => {
    const ca = await badRun((d) => {
      writeFileSync(join(d, "ca.pem"), "not a pem\n")
      return ["rotate", ...common(d, writeManifest(d, { url: sim.url }), { ca: join(d, "ca.pem") })]
    })
    expectProblems(ca.r, 1, /--ca-file: .* holds no PEM certificate/)
    const grace = await badRun((d) => ["rotate", ...common(d, writeManifest(d, { url: sim.url })), "--grace", "soon"])
    expectProblems(grace.r, 1, /--grace: "soon" is not a duration/)
  })

  it("--output json prints one JSON document with ok:false and exitCode", async () => {
    const { r } = await badRun((d) => ["rotate", ...common(d, writeManifest(d, { url: sim.url, projectID: "42", groupID: "7" })), "-o", "json"], {})
    expect(r.code, show(r)).toBe(2)
    const lines = r.stdout.trimEnd().split("\n")
    expect(lines, show(r)).toHaveLength(1)
    const doc = JSON.parse(lines[0]!) as { ok: boolean; exitCode: number; errors: string[] }
    expect(doc.ok).toBe(false)
    expect(doc.exitCode).toBe(2)
    expect(doc.errors.length).toBeGreaterThanOrEqual(1)
    expect(doc.errors.join("\n")).toMatch(/projectID or groupID/)
    expect(r.stderr).toMatch(/^gldt: error: /)
  })

  it("an unknown flag exits 2", async () => {
    const { r } = await badRun((d) => ["rotate", ...common(d, writeManifest(d, { url: sim.url })), "--no-such-flag"])
    expect(r.code, show(r)).toBe(2)
    expect(r.stderr).toContain("gldt: error: Unrecognized flag: --no-such-flag in command gldt rotate")
    expect(r.stdout, "stdout stays free for the answer").toBe("")
    const json = await badRun((d) => ["rotate", ...common(d, writeManifest(d, { url: sim.url })), "--no-such-flag", "-o", "json"])
    expect(json.r.code, show(json.r)).toBe(2)
    expect(JSON.parse(json.r.stdout)).toMatchObject({ ok: false, exitCode: 2, errors: [expect.stringContaining("--no-such-flag")] })
  })

  it("a missing -f and an unknown subcommand exit 2", async () => {
    const missing = await badRun(() => ["rotate"])
    expect(missing.r.code, show(missing.r)).toBe(2)
    expect(missing.r.stderr).toContain("gldt: error: Missing required flag: --file")
    const unknown = await badRun(() => ["rotat"])
    expect(unknown.r.code, show(unknown.r)).toBe(2)
  })

  it("--help exits 0 and contacts nothing", async () => {
    const top = await badRun(() => ["--help"])
    expect(top.r.code, show(top.r)).toBe(0)
    expect(top.r.stdout).toMatch(/Exit codes: 0 done; 1 failure/)
    const sub = await badRun(() => ["rotate", "--help"])
    expect(sub.r.code, show(sub.r)).toBe(0)
    expect(sub.r.stdout).toContain("--grace")
  })

  it("the same manifest is accepted once the problem is fixed (the cases above fail for their stated reason)", async () => {
    await sim.clearRequests()
    const d = tempDir("case-ok")
    const manifest = join(d, "m.yaml")
    writeFileSync(manifest, manifestYaml({ url: sim.url }))
    const r = await gldt(["rotate", ...common(d, manifest)], { cwd: d, env: { GITLAB_TOKEN: sim.pat } })
    expect(r.code, show(r)).toBe(0)
    expect((await sim.requests()).filter((q) => q.method === "POST")).toHaveLength(1)
    const rev = await gldt(["revoke", ...common(d, manifest)], { cwd: d, env: { GITLAB_TOKEN: sim.pat } })
    expect(rev.code, show(rev)).toBe(0)
  })
})
