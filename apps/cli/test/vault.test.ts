/**
 * `gldt` with Vault: State in KV v2 (`--state vault:MOUNT/PREFIX`) and a KV v2 sink
 * (`--sink vault:MOUNT/PATH`), against a real Vault dev server and the standalone simulator, with the
 * seed's manifest without an expiry.
 *
 * - 20 rotations then `gldt revoke`: zero live tokens of ours, the sink's version history shows each
 *   delivered credential, and no access token or deploy-token value in logs, State or the path's metadata.
 * - `kill -9` of `gldt rotate` at random moments, 20 rounds, each followed by `gldt recover`: zero leaks.
 * - Vault and file backends in any mix; bad Vault input is exit 2 with nothing minted.
 */
import { readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { startVault, type Vault } from "@gldt/testenv"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { killRotateRounds } from "./killRounds.ts"
import {
  type GldtResult,
  gldt,
  killStragglers,
  liveGldtTokens,
  median,
  readEnvSink,
  removeTempDirs,
  type Sim,
  show,
  startSim,
  tempDir,
  writeManifest,
} from "./support.ts"

const ROTATIONS = 20
const KILL_ROUNDS = Number(process.env.GLDT_E2E_VAULT_CRASH_ROUNDS ?? 20)
const SEED = Number(process.env.GLDT_E2E_SEED ?? 20261130)

let vault: Vault
let sim: Sim
let dir: string

beforeAll(async () => {
  dir = tempDir("vault")
  ;[vault, sim] = await Promise.all([startVault({ log: () => undefined }), startSim({ tls: true, dir, seed: SEED })])
}, 40 * 60_000)

afterAll(async () => {
  killStragglers()
  await Promise.all([vault?.stop(), sim?.stop()])
  removeTempDirs()
})

const api = async (method: string, path: string, body?: unknown, token?: string): Promise<unknown> => {
  const r = await vault.request(method, path, body, token)
  if (r.status >= 300 && r.status !== 404) throw new Error(`vault ${method} ${path}: ${r.status} ${JSON.stringify(r.body)}`)
  return r.body
}

let n = 0
/** A token holding the README's minimal policies for State under `prefix` and a sink at `path`. */
const minimalToken = async (prefix: string, path: string): Promise<string> => {
  const name = `gldt-cli-${++n}`
  const policy = [
    `path "secret/data/${prefix}/*" { capabilities = ["create", "read", "update"] }`,
    `path "secret/metadata/${prefix}/" { capabilities = ["list"] }`,
    `path "secret/data/${path}" { capabilities = ["create", "update", "delete"] }`,
    `path "secret/metadata/${path}" { capabilities = ["create", "read", "update"] }`,
  ].join("\n")
  await api("PUT", `sys/policies/acl/${name}`, { policy })
  return ((await api("POST", "auth/token/create", { policies: [name] })) as { auth: { client_token: string } }).auth.client_token
}

interface StateRecordDoc {
  readonly current?: { readonly id: number }
  readonly pending?: { readonly id: number }
  readonly retiring: ReadonlyArray<{ readonly id: number }>
  readonly suspects: ReadonlyArray<{ readonly id: number }>
  readonly intent?: unknown
}

/** The record of a key whose name needs no escaping, read straight from Vault. */
const vaultRecord = async (prefix: string, key: string): Promise<StateRecordDoc | undefined> => {
  const body = (await api("GET", `secret/data/${prefix}/${key}`)) as { data?: { data?: { gldt?: string; record?: StateRecordDoc } | null } } | undefined
  return body?.data?.data?.gldt === "state" ? body.data.data.record : undefined
}

const sinkMetadata = async (path: string) =>
  ((await api("GET", `secret/metadata/${path}`)) as { data: { current_version: number; custom_metadata: Record<string, string> } }).data

const sinkVersion = async (path: string, version?: number) =>
  (
    (await vault.request("GET", `secret/data/${path}${version === undefined ? "" : `?version=${version}`}`)).body as {
      data?: { data: { username: string; token: string } | null }
    }
  )?.data?.data

describe("gldt with Vault State and a Vault sink", () => {
  it(`${ROTATIONS} rotations, then revoke: zero live tokens, the version history shows each delivery, no secret in logs, State or metadata`, async () => {
    const work = join(dir, "rotations")
    const manifest = writeManifest(work, { url: sim.url, name: "vault-e2e", expiresAfter: null })
    const prefix = "gldt/cli-state"
    const path = "ci/vault-e2e"
    const vaultToken = await minimalToken(prefix, path)
    // The path keeps every delivery (KV keeps 10 versions unless told otherwise).
    const flags = ["-f", manifest, "--state", `vault:secret/${prefix}`, "--sink", `vault:secret/${path}?versions=50`, "--ca-file", sim.ca!, "--grace", "0"]
    const env = { GITLAB_TOKEN: sim.pat, VAULT_ADDR: vault.addr, VAULT_TOKEN: vaultToken }
    const runs: GldtResult[] = []
    const run = async (args: string[], code = 0) => {
      const r = await gldt(args, { cwd: work, env })
      runs.push(r)
      expect(r.code, show(r)).toBe(code)
      return r
    }

    await run(["generate", ...flags, "--log-level", "debug"])
    const delivered: number[] = [(await vaultRecord(prefix, "vault-e2e"))!.current!.id]
    const times: number[] = []
    for (let i = 1; i <= ROTATIONS; i++) {
      const r = await run(["rotate", ...flags, ...(i % 5 === 0 ? ["--log-level", "debug", "-o", "json"] : [])])
      times.push(r.ms)
      const live = liveGldtTokens(await sim.tokens())
      expect(
        live.map((t) => t.id),
        `rotation ${i}`,
      ).toHaveLength(1)
      const only = live[0]!
      expect((await vaultRecord(prefix, "vault-e2e"))?.current?.id, `rotation ${i}`).toBe(only.id)
      expect(await sinkVersion(path), `rotation ${i}: the latest version holds the live token`).toEqual({ username: only.username, token: only.token })
      expect((await sinkMetadata(path)).custom_metadata["gldt-token-id"]).toBe(String(only.id))
      delivered.push(only.id)
    }
    await run(["status", "--state", `vault:secret/${prefix}`])

    // Every delivery is one version of the path, in order, with its username and its own token.
    const all = new Map((await sim.tokens(true)).map((t) => [t.id, t]))
    const md = await sinkMetadata(path)
    expect(md.current_version).toBe(ROTATIONS + 1)
    for (let version = 1; version <= ROTATIONS + 1; version++) {
      const token = all.get(delivered[version - 1]!)!
      expect(await sinkVersion(path, version), `version ${version}`).toEqual({ username: "eso", token: token.token })
    }
    const last = all.get(delivered.at(-1)!)!
    expect(md.custom_metadata).toMatchObject({
      "gldt-gitlab-url": sim.url,
      "gldt-expires-at": last.expiresAt ?? "never",
      "gldt-key": "vault-e2e",
      "gldt-username": "eso",
    })

    await run(["revoke", ...flags, "--log-level", "debug"])
    expect(liveGldtTokens(await sim.tokens())).toEqual([])
    expect(await vaultRecord(prefix, "vault-e2e")).toBeUndefined()
    // remove=delete: the latest version is deleted (its data reads as null), the history is kept.
    expect(await sinkVersion(path)).toBeNull()
    const afterRevoke = (await api("GET", `secret/metadata/${path}`)) as { data: { versions: Record<string, { deletion_time: string }> } }
    expect(afterRevoke.data.versions[String(ROTATIONS + 1)]?.deletion_time).not.toBe("")
    expect(await sinkVersion(path, 1)).toEqual({ username: "eso", token: all.get(delivered[0]!)!.token })

    // Secrets: the access token and every deploy-token value, nowhere but the sink's data.
    const secrets = [sim.pat, vaultToken, ...(await sim.tokens(true)).map((t) => t.token)]
    const stateVersions = ((await api("GET", `secret/metadata/${prefix}/vault-e2e`)) as { data: { current_version: number } }).data.current_version
    const stateHistory: string[] = []
    for (let v = 1; v <= stateVersions; v++) stateHistory.push(JSON.stringify(await api("GET", `secret/data/${prefix}/vault-e2e?version=${v}`)))
    const texts = {
      logs: runs.map((r) => r.stdout + r.stderr).join("\n"),
      state: stateHistory.join("\n"),
      metadata: JSON.stringify(await api("GET", `secret/metadata/${path}`)),
      vaultLog: readFileSync(vault.logPath, "utf8"),
    }
    for (const [where, text] of Object.entries(texts)) for (const s of secrets) expect(text.includes(s), `${where} holds a secret`).toBe(false)
    console.log(
      `[vault] ${ROTATIONS} rotations: ./gldt rotate wall time median ${median(times).toFixed(0)} ms, min ${Math.min(...times).toFixed(0)} ms, max ${Math.max(...times).toFixed(0)} ms; state versions ${stateVersions}, sink versions ${md.current_version}`,
    )
  })

  it(`kill -9 of rotate at random moments with Vault State, then recover: no leaks over ${KILL_ROUNDS} rounds`, async () => {
    const work = join(dir, "crash")
    const key = "vault-crash"
    const manifest = writeManifest(work, { url: sim.url, name: key, expiresAfter: null })
    const prefix = "gldt/cli-crash"
    const path = "ci/vault-crash"
    const vaultToken = await minimalToken(prefix, path)
    const flags = ["-f", manifest, "--state", `vault:secret/${prefix}`, "--sink", `vault:secret/${path}`, "--ca-file", sim.ca!, "--grace", "0"]
    const env = { GITLAB_TOKEN: sim.pat, VAULT_ADDR: vault.addr, VAULT_TOKEN: vaultToken }
    for (const method of ["POST", "DELETE"]) {
      const p = method === "POST" ? "deploy_tokens$" : "deploy_tokens/\\d+$"
      await sim.addFault({ kind: "latency", method, path: p, ms: 50, phase: "before", probability: 1 })
      await sim.addFault({ kind: "latency", method, path: p, ms: 200, phase: method === "POST" ? "after" : "before", probability: 0.5, seed: SEED + 1 })
    }
    try {
      const leaks: string[] = []
      const problems: string[] = []
      let intentsLeft = 0
      const { full, kills } = await killRotateRounds({
        flags,
        cwd: work,
        env,
        rounds: KILL_ROUNDS,
        seed: SEED,
        calibrations: 2,
        problems,
        afterRotate: async ({ round, delay }) => {
          if ((await vaultRecord(prefix, key))?.intent !== undefined) intentsLeft++
          const rec = await gldt(["recover", ...flags, "--create-settle", "2s"], { cwd: work, env })
          if (rec.code !== 0) problems.push(`round ${round}: recover failed: ${show(rec)}`)
          const record = await vaultRecord(prefix, key)
          // A suspect is still a live credential: only the current token may be live (grace 0).
          for (const t of liveGldtTokens(await sim.tokens())) {
            if (t.id !== record?.current?.id) leaks.push(`round ${round} (kill after ${delay} ms): token ${t.id} is live and not the current token`)
          }
          if (record?.intent !== undefined) problems.push(`round ${round}: intent still open after recover`)
          if ((record?.suspects.length ?? 0) > 0) problems.push(`round ${round}: suspects ${record!.suspects.map((s) => s.id).join(",")}`)
          const held = (await sinkMetadata(path)).custom_metadata
          const current = (await sim.tokens()).find((t) => t.id === record?.current?.id)
          if (current === undefined) problems.push(`round ${round}: no live current token`)
          else if (held["gldt-token-id"] !== String(current.id) || (await sinkVersion(path))?.token !== current.token) {
            problems.push(`round ${round}: the sink does not hold the current token ${current.id}`)
          }
        },
      })
      const rev = await gldt(["revoke", ...flags, "--create-settle", "2s"], { cwd: work, env })
      expect(rev.code, show(rev)).toBe(0)
      const leftover = liveGldtTokens(await sim.tokens())
      console.log(
        `[vault crash] seed ${SEED}, rounds ${KILL_ROUNDS}, kills mid-run ${kills}, intents left for recover ${intentsLeft}, leaks after recover ${leaks.length}, live after revoke ${leftover.length}; uninterrupted rotate ${full.toFixed(0)} ms`,
      )
      expect(leaks).toEqual([])
      expect(problems).toEqual([])
      expect(leftover).toEqual([])
      expect(kills).toBeGreaterThanOrEqual(Math.floor(KILL_ROUNDS / 3))
    } finally {
      await sim.clearFaults()
    }
  })

  it("Vault and file backends mix: Vault State with a file sink, file State with a Vault sink", async () => {
    const work = join(dir, "mix")
    const manifest = writeManifest(work, { url: sim.url, name: "vault-mix", expiresAfter: null })
    const env = { GITLAB_TOKEN: sim.pat, VAULT_ADDR: vault.addr, VAULT_TOKEN: vault.token }
    const a = ["-f", manifest, "--state", "vault:secret/gldt/mix", "--sink", `file:${work}/sink.env`, "--ca-file", sim.ca!, "--grace", "0"]
    expect((await gldt(["generate", ...a], { cwd: work, env })).code).toBe(0)
    const id = (await vaultRecord("gldt/mix", "vault-mix"))!.current!.id
    expect(readEnvSink(`${work}/sink.env`).tokenId).toBe(id)
    expect((await gldt(["revoke", ...a], { cwd: work, env })).code).toBe(0)

    const b = ["-f", manifest, "--key", "mix-b", "--state", `file:${work}/state`, "--sink", "vault:secret/ci/mix-b", "--ca-file", sim.ca!]
    expect((await gldt(["generate", ...b], { cwd: work, env })).code).toBe(0)
    const held = (await sinkMetadata("ci/mix-b")).custom_metadata["gldt-token-id"]
    const state = JSON.parse(readFileSync(`${work}/state/mix-b.json`, "utf8")) as { record: StateRecordDoc }
    expect(held).toBe(String(state.record.current!.id))
    expect((await gldt(["revoke", ...b], { cwd: work, env })).code).toBe(0)
    const mine = new Set([id, Number(held)])
    expect(liveGldtTokens(await sim.tokens()).filter((t) => mine.has(t.id))).toEqual([])
  })
})

describe("bad Vault input and Vault failures: a clear error and nothing minted", () => {
  const cases: Array<{
    name: string
    args: (m: string) => string[]
    env?: Record<string, string | undefined>
    code: number
    stderr: RegExp
    before?: () => Promise<void>
  }> = [
    {
      name: "a state location without a folder",
      args: (m) => ["-f", m, "--state", "vault:secret"],
      code: 2,
      stderr: /--state: "vault:secret" needs a KV v2 mount and a folder under it/,
    },
    {
      name: "an unknown sink option",
      args: (m) => ["-f", m, "--sink", "vault:secret/ci/x?remove=shred"],
      code: 2,
      stderr: /--sink: remove "shred" is not one of delete, destroy, purge/,
    },
    {
      name: "a bad number of versions",
      args: (m) => ["-f", m, "--sink", "vault:secret/ci/x?versions=0"],
      code: 2,
      stderr: /--sink: versions "0" is not a positive number of versions to keep/,
    },
    {
      name: "no Vault address",
      args: (m) => ["-f", m, "--state", "vault:secret/gldt/bad"],
      env: { VAULT_ADDR: undefined },
      code: 2,
      stderr: /set VAULT_ADDR or pass --vault-addr/,
    },
    {
      name: "no Vault token",
      args: (m) => ["-f", m, "--state", "vault:secret/gldt/bad"],
      env: { VAULT_TOKEN: undefined },
      code: 2,
      stderr: /no Vault token; set VAULT_TOKEN/,
    },
    {
      name: "plain http to a remote Vault",
      args: (m) => ["-f", m, "--state", "vault:secret/gldt/bad", "--vault-addr", "http://vault.example.com:8200"],
      code: 2,
      stderr: /refusing to send a Vault token over plain http/,
    },
    {
      name: "an unreachable Vault",
      args: (m) => ["-f", m, "--state", "vault:secret/gldt/bad", "--vault-addr", "http://127.0.0.1:9"],
      code: 2,
      stderr: /cannot reach Vault at http:\/\/127\.0\.0\.1:9: ECONNREFUSED/,
    },
    {
      name: "an unknown Vault token",
      args: (m) => ["-f", m, "--state", "vault:secret/gldt/bad"],
      env: { VAULT_TOKEN: "hvs.not-a-token" },
      code: 2,
      stderr: /the Vault token is invalid, expired or revoked/,
    },
    {
      name: "a KV v1 mount",
      args: (m) => ["-f", m, "--state", "vault:kv1/gldt", "--vault-token-file", `${dir}/root-token`],
      code: 2,
      stderr: /kv1\/ is a KV version 1 mount; gldt needs KV version 2/,
      before: async () => {
        await api("POST", "sys/mounts/kv1", { type: "kv", options: { version: "1" } })
        writeFileSync(`${dir}/root-token`, vault.token)
      },
    },
    {
      name: "a sink path the policy does not allow",
      args: (m) => ["-f", m, "--state", `file:${dir}/bad-state`, "--sink", "vault:secret/elsewhere/token"],
      code: 2,
      stderr: /--sink: Vault sink: permission denied: the Vault token's policy lacks "create", "update" on secret\/data\/elsewhere\/token/,
    },
  ]
  it.each(cases)("$name", async (c) => {
    await c.before?.()
    const manifest = writeManifest(join(dir, "bad"), { url: sim.url, name: "bad", expiresAfter: null })
    const limited = await minimalToken("gldt/bad", "ci/bad")
    const before = (await sim.tokens(true)).length
    const r = await gldt(["generate", ...c.args(manifest), "--ca-file", sim.ca!], {
      cwd: join(dir, "bad"),
      env: { GITLAB_TOKEN: sim.pat, VAULT_ADDR: vault.addr, VAULT_TOKEN: limited, ...c.env },
    })
    expect(r.code, show(r)).toBe(c.code)
    expect(r.stderr).toMatch(c.stderr)
    expect(r.stderr).not.toContain(limited)
    expect((await sim.tokens(true)).length).toBe(before)
  })
})
