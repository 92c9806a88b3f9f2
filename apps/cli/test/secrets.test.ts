/**
 * Criterion 5: the GitLab access token never appears in stdout, stderr, state files or the sink, whatever the
 * command, output mode, log level or failure. Deploy-token values appear only in the sink (and on stdout only
 * when stdout is the sink).
 */
import { mkdirSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { afterAll, expect, it } from "vitest"
import { filesUnder, type GldtResult, gldt, killStragglers, readEnvSink, removeTempDirs, show, startSim, tempDir, writeManifest } from "./support.ts"

afterAll(() => {
  killStragglers()
  removeTempDirs()
})

interface Captured {
  readonly label: string
  readonly result: GldtResult
  /** stdout is the sink: it may (must) hold a deploy-token value. */
  readonly stdoutIsSink?: boolean
}

it("the access token is never printed or stored; deploy-token values only reach the sink", async () => {
  const dir = tempDir("secrets")
  const secretsDir = tempDir("secrets-pat")
  const sim = await startSim({ tls: true, dir })
  try {
    const work = join(dir, "work")
    mkdirSync(work)
    const manifest = writeManifest(work, { url: sim.url, name: "secrets", refreshInterval: "1h" })
    const bare = writeManifest(work, { url: sim.url, name: "secrets-run" }, "run.yaml")
    const stateDir = join(work, "state")
    const sinkDir = join(work, "sink")
    mkdirSync(sinkDir)
    const sinkPath = join(sinkDir, "deploy-token.env")
    const flags = ["-f", manifest, "--state", `file:${stateDir}`, "--sink", `file:${sinkPath}`, "--ca-file", sim.ca!]
    const patFile = join(secretsDir, "pat")
    writeFileSync(patFile, `${sim.pat}\n`, { mode: 0o600 })
    const wrongPat = "glpat-NotTheRealOne-1234"
    const env = { GITLAB_TOKEN: sim.pat }

    const captured: Captured[] = []
    const sinkSnapshots: Array<{ label: string; files: Array<{ path: string; content: string }> }> = []
    const step = async (label: string, args: string[], opts: { env?: Record<string, string | undefined>; stdoutIsSink?: boolean; code?: number } = {}) => {
      const result = await gldt(args, { cwd: work, env: opts.env ?? env })
      if (opts.code !== undefined) expect(result.code, `${label}: ${show(result)}`).toBe(opts.code)
      captured.push({ label, result, ...(opts.stdoutIsSink ? { stdoutIsSink: true } : {}) })
      sinkSnapshots.push({ label, files: filesUnder(sinkDir) })
      return result
    }

    await step("validate", ["validate", "-f", manifest], { code: 0 })
    await step("validate json", ["validate", "-f", manifest, "-o", "json"], { code: 0 })
    await step("preflight", ["preflight", ...flags, "--log-level", "debug"], { code: 0 })
    await step("preflight json", ["preflight", ...flags, "-o", "json"], { code: 0 })
    await step("generate debug", ["generate", ...flags, "--log-level", "all"], { code: 0 })
    await step("rotate grace 0", ["rotate", ...flags, "--grace", "0", "--log-level", "debug"], { code: 0 })
    await step("rotate default grace", ["rotate", ...flags, "-o", "json", "--log-level", "debug"], { code: 0 })
    await step("rotate token-file", ["rotate", ...flags, "--token-file", patFile, "--token-env", "UNSET_VAR", "--grace", "0"], {
      env: { GITLAB_TOKEN: undefined },
      code: 0,
    })
    await step("status", ["status", "--state", `file:${stateDir}`], { code: 0 })
    await step("status json", ["status", "--state", `file:${stateDir}`, "-o", "json"], { code: 0 })
    await step("recover", ["recover", ...flags, "--create-settle", "1s", "--log-level", "debug"], { code: 0 })

    // Failures: GitLab errors, a lost create, a wrong access token, a transport error.
    await sim.addFault({ kind: "status5xx", status: 500, method: "POST", path: "deploy_tokens$" })
    await step("rotate 500", ["rotate", ...flags, "--log-level", "debug"], { code: 1 })
    // A 500 may have been applied: the intent stays open until it settles, so recover before the next mint.
    await step("recover after 500", ["recover", ...flags, "--create-settle", "1s", "--log-level", "debug"], { code: 0 })
    await sim.addFault({ kind: "appliedButLost", method: "POST", path: "deploy_tokens$", lose: "reset" })
    await step("rotate lost", ["rotate", ...flags, "--log-level", "debug", "-o", "json"], { code: 1 })
    await step("recover after lost", ["recover", ...flags, "--create-settle", "1s", "--log-level", "debug"], { code: 0 })
    await step("rotate wrong pat", ["rotate", ...flags, "--log-level", "debug"], { env: { GITLAB_TOKEN: wrongPat }, code: 1 })
    await step("preflight wrong pat", ["preflight", ...flags, "-o", "json"], { env: { GITLAB_TOKEN: wrongPat } })
    await step("rotate no ca", ["rotate", "-f", manifest, "--state", `file:${stateDir}`, "--sink", `file:${sinkPath}`, "--log-level", "debug"], {
      code: 1,
    })
    await step(
      "run",
      [
        "run",
        "-f",
        bare,
        "--state",
        `file:${stateDir}`,
        "--sink",
        `file:${join(sinkDir, "run.json")}?format=json`,
        "--ca-file",
        sim.ca!,
        "--refresh",
        "100ms",
        "--grace",
        "0",
        "--max-rotations",
        "2",
        "--log-level",
        "debug",
      ],
      { code: 0 },
    )
    // Default locations (./.gldt/state and ./.gldt/<key>.env under the working directory).
    await step("generate default paths", ["generate", "-f", manifest, "--key", "defaults", "--ca-file", sim.ca!], { code: 0 })
    // stdout as the sink: stdout then carries the credential, and still never the access token.
    const stdoutSink = await step(
      "generate stdout sink",
      ["generate", "-f", manifest, "--key", "stdout-sink", "--state", `file:${stateDir}`, "--sink", "stdout?format=json", "--ca-file", sim.ca!],
      { code: 0, stdoutIsSink: true },
    )
    const finalSink = readEnvSink(sinkPath)
    const allFilesBeforeRevoke = filesUnder(work)
    await step("revoke", ["revoke", ...flags, "--log-level", "debug"], { code: 0 })
    await step(
      "revoke run key",
      ["revoke", "-f", bare, "--state", `file:${stateDir}`, "--sink", `file:${join(sinkDir, "run.json")}?format=json`, "--ca-file", sim.ca!],
      {
        code: 0,
      },
    )

    const minted = (await sim.tokens(true)).filter((t) => t.createdBy === "api")
    const deployValues = minted.map((t) => t.token)
    expect(deployValues.length).toBeGreaterThanOrEqual(8)
    const pats = [sim.pat, wrongPat]

    // Every captured output.
    for (const { label, result, stdoutIsSink } of captured) {
      for (const pat of pats) {
        expect(result.stdout.includes(pat), `${label}: access token on stdout\n${show(result)}`).toBe(false)
        expect(result.stderr.includes(pat), `${label}: access token on stderr\n${show(result)}`).toBe(false)
      }
      for (const v of deployValues) {
        expect(result.stderr.includes(v), `${label}: deploy token on stderr\n${show(result)}`).toBe(false)
        if (!stdoutIsSink) expect(result.stdout.includes(v), `${label}: deploy token on stdout\n${show(result)}`).toBe(false)
      }
    }
    // With --sink stdout, stdout is the sink: it holds exactly that key's token.
    const printed = minted.find((t) => stdoutSink.stdout.includes(t.token))
    expect(printed, show(stdoutSink)).toBeDefined()
    expect(deployValues.filter((v) => stdoutSink.stdout.includes(v))).toHaveLength(1)

    // Every file gldt wrote under the working directory (state dirs, sinks, sidecars, ./.gldt), at the end and
    // before the final revoke removed the sinks, plus every sink snapshot taken after each command.
    const sinkFiles = new Set([sinkPath, join(sinkDir, "run.json"), join(work, ".gldt", "defaults.env")])
    const everyFile = [
      ...filesUnder(work).map((f) => ({ ...f, when: "end" })),
      ...allFilesBeforeRevoke.map((f) => ({ ...f, when: "before revoke" })),
      ...sinkSnapshots.flatMap((s) => s.files.map((f) => ({ ...f, when: `after ${s.label}` }))),
    ]
    expect(everyFile.some((f) => f.path.startsWith(stateDir) && f.path.endsWith(".json"))).toBe(true)
    expect(everyFile.some((f) => f.path === sinkPath)).toBe(true)
    expect(everyFile.some((f) => f.path.endsWith(".gldt.json"))).toBe(true)
    for (const f of everyFile) {
      for (const pat of pats) expect(f.content.includes(pat), `${f.path} (${f.when}) holds the access token`).toBe(false)
      const held = deployValues.filter((v) => f.content.includes(v))
      if (sinkFiles.has(f.path)) expect(held.length, `${f.path} (${f.when}) holds ${held.length} deploy tokens`).toBeLessThanOrEqual(1)
      else expect(held, `${f.path} (${f.when}) holds a deploy-token value`).toEqual([])
    }
    // The env sink held the token the simulator knows under the id it names.
    expect(minted.find((t) => t.id === finalSink.tokenId)?.token).toBe(finalSink.token)
  } finally {
    await sim.stop()
  }
})
