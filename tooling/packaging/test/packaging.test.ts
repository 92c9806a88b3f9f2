/**
 * The packages as published: every publishable package is packed (its prepack builds it), the
 * tarballs are checked for completeness, then installed alone into fresh consumers outside the
 * workspace. There a strict NodeNext program and every README's `ts` snippets typecheck, the program
 * runs one reconcile against the GitLab simulator with file State and a file sink, and the installed
 * `gldt` bin runs `--help` and `generate` as compiled JS. A second consumer on another effect 4.x
 * release proves the libraries share the consumer's single copy of effect.
 */
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { basename, join } from "node:path"
import { type DefaultWorld, type Simulator, seedDefaultWorld, startSimulator } from "@gldt/gitlab-sim"
import { afterAll, assert, beforeAll, describe, expect, it } from "vitest"
import { cleanEnv, installConsumer, installedPackages, run, STRICT_TSCONFIG } from "../src/Consumer.ts"
import { pack, publishablePackages, readTarball } from "../src/Pack.ts"
import { tsSnippets } from "../src/Snippets.ts"
import { tarballProblems } from "../src/Tarball.ts"

const CONSUMER_PROGRAM = new URL("../consumer/reconcile.ts", import.meta.url)
const LIBRARIES = ["@gldt/core", "@gldt/gitlab", "@gldt/adapter-file", "@gldt/adapter-kubernetes", "@gldt/adapter-vault"]
const PUBLISHED = [...LIBRARIES, "@gldt/cli"].sort()
/** Another effect 4.x release than the workspace's 4.1.0, inside the libraries' peer range. */
const OTHER_EFFECT = "4.0.6"

const root = mkdtempSync(join(tmpdir(), "gldt-packaging-"))
const tarballs: Record<string, string> = {}
let sim: Simulator
let world: DefaultWorld
let caFile: string

const full = join(root, "consumer")
const otherEffect = join(root, "consumer-effect-4.0")

beforeAll(async () => {
  mkdirSync(join(root, "tarballs"))
  for (const pkg of publishablePackages()) tarballs[pkg.name] = pack(pkg, join(root, "tarballs"))
  await installConsumer({
    dir: full,
    tarballs,
    uses: PUBLISHED,
    dependencies: { effect: "4.1.0", "@kubernetes/client-node": "2.0.1" },
  })
  await installConsumer({
    dir: otherEffect,
    tarballs,
    uses: LIBRARIES,
    dependencies: { effect: OTHER_EFFECT, "@kubernetes/client-node": "2.0.1" },
  })
  sim = await startSimulator({ tls: true })
  world = seedDefaultWorld(sim)
  caFile = join(root, "gitlab-ca.pem")
  writeFileSync(caFile, sim.caPem!)
})

afterAll(async () => {
  await sim?.close()
  rmSync(root, { recursive: true, force: true })
})

/** Gldt-made tokens that are still live, from the simulator's own records (the ground truth). */
const liveTokens = (name: string) => sim.tokens().filter((t) => t.name === name && !t.revoked)

const typecheck = async (dir: string, files: ReadonlyArray<string>) => {
  writeFileSync(join(dir, "tsconfig.json"), JSON.stringify({ ...STRICT_TSCONFIG, files }, null, 2))
  await run(join(dir, "node_modules", ".bin", "tsc"), ["-p", "tsconfig.json"], { cwd: dir, timeout: 180_000 })
}

/** Runs the consumer program in `dir` and returns its report; checks the simulator, sink and State after. */
const reconcileIn = async (dir: string) => {
  const stateDir = join(dir, "state")
  const sinkFile = join(dir, "sink.env")
  const out = await run(process.execPath, ["reconcile.ts"], {
    cwd: dir,
    timeout: 60_000,
    env: cleanEnv({ GITLAB_URL: sim.url, GITLAB_TOKEN: world.pat, GITLAB_CA_FILE: caFile, STATE_DIR: stateDir, SINK_FILE: sinkFile }),
  })
  const report = JSON.parse(out.trim().split("\n").at(-1)!) as { actions: ReadonlyArray<{ action: string; tokenId: number }> }
  const minted = report.actions.find((a) => a.action === "minted")
  assert.isDefined(minted, out)
  const token = sim.tokens().find((t) => t.id === minted!.tokenId)!
  assert.strictEqual(token.revoked, false)
  assert.include(readFileSync(sinkFile, "utf8"), token.token, "the sink holds the minted token")
  const state = readFileSync(join(stateDir, "consumer-pull.json"), "utf8")
  assert.strictEqual((JSON.parse(state) as { record: { current?: { id: number } } }).record.current?.id, token.id)
  assert.notInclude(state, token.token, "State holds ids and metadata, never the token value")
  return { report, token }
}

describe("tarballs", () => {
  it("the publishable packages are exactly core, gitlab, adapter-file, adapter-kubernetes, adapter-vault and cli", () => {
    assert.deepStrictEqual(Object.keys(tarballs).sort(), PUBLISHED)
  })

  it("each tarball holds every file its exports, bin and modules need, and only JS, .d.ts, README, LICENSE and CRDs", () => {
    const problems = Object.values(tarballs).flatMap((file) => tarballProblems(readTarball(file)))
    assert.deepStrictEqual(problems, [])
  })

  it("the adapter-kubernetes tarball ships the CRDs its README tells users to apply, identical to apps/controller/crds", () => {
    const tarball = readTarball(tarballs["@gldt/adapter-kubernetes"]!)
    const crds = tarball.files.filter((f) => f.startsWith("crds/"))
    assert.isAtLeast(crds.length, 4)
    for (const f of crds) {
      const committed = new URL(`../../../apps/controller/crds/${basename(f)}`, import.meta.url)
      assert.strictEqual(tarball.read(f), readFileSync(committed, "utf8"), f)
    }
  })
})

describe("a consumer with only the tarballs installed", () => {
  it("gets one copy of effect and nothing from redis", () => {
    const installed = installedPackages(full)
    assert.deepStrictEqual(
      installed.filter((p) => p.startsWith("effect@")),
      ["effect@4.1.0"],
    )
    assert.deepStrictEqual(
      installed.filter((p) => /^(redis@|@redis\+|@effect\+platform-node@)/.test(p)),
      [],
    )
  })

  it("typechecks a program and every README's ts snippets with strict NodeNext settings", async () => {
    copyFileSync(CONSUMER_PROGRAM, join(full, "reconcile.ts"))
    const files = ["reconcile.ts"]
    mkdirSync(join(full, "snippets"), { recursive: true })
    for (const pkg of publishablePackages()) {
      tsSnippets(readFileSync(join(pkg.dir, "README.md"), "utf8")).forEach((code, i) => {
        const file = `snippets/${basename(pkg.dir)}-${i + 1}.ts`
        writeFileSync(join(full, file), code)
        files.push(file)
      })
    }
    // core, gitlab, adapter-file, adapter-kubernetes and adapter-vault each show at least one program.
    assert.isAtLeast(files.length, 1 + LIBRARIES.length)
    await typecheck(full, files)
  })

  it("runs one reconcile against the simulator with file State and a file sink", async () => {
    copyFileSync(CONSUMER_PROGRAM, join(full, "reconcile.ts"))
    const before = liveTokens("consumer-pull").length
    await reconcileIn(full)
    expect(liveTokens("consumer-pull")).toHaveLength(before + 1)
  })

  it("runs the installed gldt bin as compiled JS: --help, then generate", async () => {
    const gldt = join(full, "node_modules", ".bin", "gldt")
    assert.isTrue(existsSync(gldt), "pnpm linked the gldt bin")
    // No type stripping: a bin that still pointed at TypeScript sources would fail here.
    const env = cleanEnv({ NODE_OPTIONS: "--no-experimental-strip-types", GITLAB_TOKEN: world.pat })
    const help = await run(gldt, ["--help"], { cwd: full, env, timeout: 30_000 })
    expect(help).toMatch(/generate/)
    expect(help).toMatch(/revoke/)

    const manifest = join(full, "cli.yaml")
    writeFileSync(
      manifest,
      [
        "apiVersion: generators.external-secrets.io/v1alpha1",
        "kind: GitlabDeployToken",
        "metadata: { name: cli-pull }",
        "spec:",
        `  url: ${sim.url}`,
        '  projectID: "group/project"',
        "  name: cli-pull",
        "  username: cli-pull",
        "  scopes: [read_registry]",
        "  auth: { token: { secretRef: { name: gitlab-api-token, key: token } } }",
        "",
      ].join("\n"),
    )
    const sink = join(full, "cli.env")
    await run(gldt, ["generate", "-f", manifest, "--state", `file:${join(full, "cli-state")}`, "--sink", `file:${sink}`, "--ca-file", caFile], {
      cwd: full,
      env,
      timeout: 60_000,
    })
    const live = liveTokens("cli-pull")
    expect(live).toHaveLength(1)
    assert.include(readFileSync(sink, "utf8"), live[0]!.token)
  })
})

describe(`a consumer on effect ${OTHER_EFFECT}`, () => {
  it("gets exactly one copy of effect, its own, shared by every @gldt library", () => {
    const installed = installedPackages(otherEffect)
    assert.deepStrictEqual(
      installed.filter((p) => p.startsWith("effect@")),
      [`effect@${OTHER_EFFECT}`],
    )
    assert.deepStrictEqual(
      installed.filter((p) => /^(redis@|@redis\+)/.test(p)),
      [],
    )
  })

  it("typechecks and runs the same program: Redacted values cross package boundaries", async () => {
    copyFileSync(CONSUMER_PROGRAM, join(otherEffect, "reconcile.ts"))
    await typecheck(otherEffect, ["reconcile.ts"])
    const before = liveTokens("consumer-pull").length
    await reconcileIn(otherEffect)
    expect(liveTokens("consumer-pull")).toHaveLength(before + 1)
  })
})
