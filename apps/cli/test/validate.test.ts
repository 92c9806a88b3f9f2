/**
 * Criterion 8: `gldt validate` prints ok for the seed's manifests (fixtures/seed-manifests.yaml: its
 * GitlabDeployToken and ExternalSecret) and contacts nothing. "Nothing" is checked two ways: a preload that
 * refuses every socket connect and DNS lookup inside gldt, and a simulator whose request log stays empty.
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { afterAll, beforeAll, expect, it } from "vitest"
import { FIXTURES, gldt, killStragglers, removeTempDirs, type Sim, show, startSim, tempDir } from "./support.ts"

const SEED = join(FIXTURES, "seed-manifests.yaml")
const NO_NETWORK = join(FIXTURES, "no-network.ts")

let dir: string
let sim: Sim

beforeAll(async () => {
  dir = tempDir("validate")
  sim = await startSim({ tls: true, dir })
})

afterAll(async () => {
  await sim?.stop()
  killStragglers()
  removeTempDirs()
})

/** gldt with sockets and DNS refused; returns the result and what it tried to reach. */
const offline = async (args: string[]) => {
  const log = join(tempDir("netlog"), "attempts")
  const r = await gldt(args, { cwd: dir, env: { NODE_OPTIONS: `--import ${NO_NETWORK}`, GLDT_E2E_NETWORK_LOG: log } })
  return { r, attempts: existsSync(log) ? readFileSync(log, "utf8").trim().split("\n") : [] }
}

/** The seed's expiresAt is an absolute date; once it has passed the seed manifest is (rightly) refused. */
const seedExpiry = Date.parse(/expiresAt: "([^"]+)"/.exec(readFileSync(SEED, "utf8"))![1]!)

it("the no-network preload really stops gldt from reaching GitLab (so the checks below can fail)", async () => {
  const manifest = join(dir, "reach.yaml")
  writeFileSync(manifest, readFileSync(SEED, "utf8").replace('url: ""', `url: "${sim.url}"`).replace('projectID: "42"', 'projectID: "group/project"'))
  await sim.clearRequests()
  const probe = await gldt(["preflight", "-f", manifest, "--ca-file", sim.ca!, "--state", `file:${dir}/state`, "--sink", `file:${dir}/sink.env`], {
    cwd: dir,
    env: { GITLAB_TOKEN: sim.pat, NODE_OPTIONS: `--import ${NO_NETWORK}`, GLDT_E2E_NETWORK_LOG: join(dir, "probe-attempts") },
  })
  expect(probe.code, show(probe)).toBe(1)
  expect(readFileSync(join(dir, "probe-attempts"), "utf8")).toMatch(/^connect 127\.0\.0\.1:\d+/)
  expect(await sim.requests()).toEqual([])
  // And without the preload the same command does reach it.
  const reach = await gldt(["preflight", "-f", manifest, "--ca-file", sim.ca!, "--state", `file:${dir}/state`, "--sink", `file:${dir}/sink.env`], {
    cwd: dir,
    env: { GITLAB_TOKEN: sim.pat },
  })
  expect(reach.code, show(reach)).toBe(0)
  expect((await sim.requests()).length).toBeGreaterThan(0)
})

it("validate prints ok for the seed's GitlabDeployToken and ExternalSecret, contacting nothing", async () => {
  for (const output of ["text", "json"]) {
    const { r, attempts } = await offline(["validate", "-f", SEED, "-o", output])
    expect(attempts, "network attempts").toEqual([])
    if (Date.now() >= seedExpiry) {
      // After 2027-01-01 the seed's own expiresAt is in the past: validate must say exactly that.
      expect(r.code, show(r)).toBe(2)
      expect(r.stderr).toMatch(/spec\.expiresAt.*in the past/)
      continue
    }
    expect(r.code, show(r)).toBe(0)
    expect(r.stderr, show(r)).toBe("")
    if (output === "text") {
      expect(r.stdout).toBe(
        `${SEED}: ok — GitlabDeployToken/gitlab-deploy-token: project 42 at https://gitlab.com, scopes read_repository,read_registry; ExternalSecret/gitlab-deploy-token refreshes every 1h0m0s\n`,
      )
    } else {
      expect(JSON.parse(r.stdout)).toEqual({
        command: "validate",
        ok: true,
        generator: {
          kind: "GitlabDeployToken",
          name: "gitlab-deploy-token",
          target: { kind: "project", id: "42" },
          scopes: ["read_repository", "read_registry"],
        },
      })
    }
  }
})

it("validate of the seed manifest with a later expiry and the simulator's URL: ok, and the simulator sees no request", async () => {
  const future = new Date(Date.now() + 365 * 86_400_000).toISOString().replace(/\.\d{3}Z$/, "Z")
  const text = readFileSync(SEED, "utf8")
    .replace(/expiresAt: "[^"]+"/, `expiresAt: "${future}"`)
    .replace('url: ""', `url: "${sim.url}"`)
  const manifest = join(dir, "seed-at-sim.yaml")
  writeFileSync(manifest, text)
  await sim.clearRequests()
  // Even with an access token at hand, validate does not use it.
  const r = await gldt(["validate", "-f", manifest], { cwd: dir, env: { GITLAB_TOKEN: sim.pat } })
  expect(r.code, show(r)).toBe(0)
  expect(r.stdout).toMatch(
    new RegExp(
      `: ok — GitlabDeployToken/gitlab-deploy-token: project 42 at ${sim.url.replace(/[.]/g, "\\.")}, scopes read_repository,read_registry; ExternalSecret/gitlab-deploy-token refreshes every 1h0m0s\\n$`,
    ),
  )
  const offlineRun = await offline(["validate", "-f", manifest])
  expect(offlineRun.r.code, show(offlineRun.r)).toBe(0)
  expect(offlineRun.attempts).toEqual([])
  expect(await sim.requests()).toEqual([])
  expect(await sim.tokens(true)).toEqual([])
  // No state or sink appeared either.
  expect(existsSync(join(dir, ".gldt"))).toBe(false)
})
