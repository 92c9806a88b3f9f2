#!/usr/bin/env node
/**
 * Standalone gitlab-sim server. Prints one JSON line on stdout once it is
 * listening: {"url","apiUrl","pat","ca","caPem"}. Stops cleanly on SIGTERM/SIGINT.
 */
import { readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { parseArgs } from "node:util"
import { applySeed, type SeedFile, seedDefaultWorld } from "./seed.ts"
import { startSimulator } from "./server.ts"

const USAGE = `Usage: gitlab-sim [options]

  --port N          port to listen on (default 0 = a free port)
  --host ADDR       address to listen on (default 127.0.0.1)
  --tls             serve HTTPS with a freshly generated CA
  --ca-out PATH     where to write the CA certificate PEM (with --tls;
                    default: a file in the temp directory, removed on exit)
  --seed-file PATH  JSON world description (users, accessTokens, groups,
                    projects, deployTokens, faults, rateLimit, clockOffsetMs)
  --pat VALUE       personal access token for the admin user (env GITLAB_SIM_PAT)
  --rate-limit N[/S]  throttle: N requests per S seconds (default 60) per client
  --seed N          seed of the fault-injection RNG (default 1)
  --verbose         log every request to stderr
  --help            show this help

Prints {"url":…,"apiUrl":…,"pat":…,"ca":…,"caPem":…} on one line when ready.
Control endpoints: /_sim/… (see README.md).`

const fail = (msg: string): never => {
  process.stderr.write(`gitlab-sim: ${msg}\n${USAGE}\n`)
  process.exit(2)
}

const main = async (): Promise<void> => {
  let parsed: ReturnType<typeof parseArgs<{ options: typeof options }>>
  const options = {
    port: { type: "string" },
    host: { type: "string" },
    tls: { type: "boolean" },
    "ca-out": { type: "string" },
    "seed-file": { type: "string" },
    pat: { type: "string" },
    "rate-limit": { type: "string" },
    seed: { type: "string" },
    verbose: { type: "boolean" },
    help: { type: "boolean" },
  } as const
  try {
    parsed = parseArgs({ options, strict: true, allowPositionals: false })
  } catch (e) {
    return fail(e instanceof Error ? e.message : String(e))
  }
  const v = parsed.values
  if (v.help === true) {
    process.stdout.write(`${USAGE}\n`)
    return
  }
  const port = v.port === undefined ? 0 : Number(v.port)
  if (!Number.isInteger(port) || port < 0 || port > 65535) fail(`invalid --port ${v.port}`)
  const seed = v.seed === undefined ? 1 : Number(v.seed)
  if (!Number.isFinite(seed)) fail(`invalid --seed ${v.seed}`)
  let rateLimit: { limit: number; periodSeconds: number } | undefined
  if (v["rate-limit"] !== undefined) {
    const m = /^(\d+)(?:\/(\d+))?$/.exec(v["rate-limit"])
    if (!m) return fail(`invalid --rate-limit ${v["rate-limit"]} (want N or N/SECONDS)`)
    rateLimit = { limit: Number(m[1]), periodSeconds: m[2] === undefined ? 60 : Number(m[2]) }
  }
  let seedFile: SeedFile | undefined
  if (v["seed-file"] !== undefined) {
    try {
      seedFile = JSON.parse(readFileSync(v["seed-file"], "utf8")) as SeedFile
    } catch (e) {
      return fail(`cannot read --seed-file: ${e instanceof Error ? e.message : String(e)}`)
    }
  }
  const patOption = v.pat ?? (process.env.GITLAB_SIM_PAT === "" ? undefined : process.env.GITLAB_SIM_PAT)

  const sim = await startSimulator({
    port,
    host: v.host,
    tls: v.tls === true,
    seed,
    rateLimit,
    onRequest:
      v.verbose === true
        ? (e) =>
            process.stderr.write(
              `${e.method} ${e.path}${e.query === "" ? "" : `?${e.query}`} ${e.status}${e.fault === null ? "" : ` fault=${e.fault}`} ${e.durationMs.toFixed(1)}ms\n`,
            )
        : undefined,
  })

  let pat: string | null = null
  try {
    if (seedFile === undefined) {
      pat = seedDefaultWorld(sim, { pat: patOption }).pat
    } else {
      const pats = applySeed(sim, seedFile)
      if (patOption !== undefined) {
        const users = [...sim.world.users.values()]
        const owner = users.find((u) => u.admin) ?? users[0]
        if (owner === undefined) throw new Error("--pat needs at least one user in the seed file")
        pat = sim.addAccessToken({ user: owner, scopes: ["api"], value: patOption })
      } else {
        pat = pats[0] ?? null
      }
    }
  } catch (e) {
    await sim.close()
    return fail(e instanceof Error ? e.message : String(e))
  }

  let caPath: string | null = null
  let removeCa = false
  if (sim.caPem !== undefined) {
    caPath = v["ca-out"] ?? join(tmpdir(), `gitlab-sim-ca-${process.pid}.pem`)
    removeCa = v["ca-out"] === undefined
    writeFileSync(caPath, sim.caPem)
  }

  // Install the signal handlers before announcing readiness: a supervisor may signal right away.
  let stopping = false
  const stop = (signal: string): void => {
    if (stopping) process.exit(1)
    stopping = true
    if (v.verbose === true) process.stderr.write(`gitlab-sim: ${signal}, shutting down\n`)
    void sim.close().then(() => {
      if (removeCa && caPath !== null) rmSync(caPath, { force: true })
      process.exit(0)
    })
  }
  process.on("SIGTERM", () => stop("SIGTERM"))
  process.on("SIGINT", () => stop("SIGINT"))

  process.stdout.write(`${JSON.stringify({ url: sim.url, apiUrl: sim.apiUrl, pat, ca: caPath, caPem: sim.caPem ?? null })}\n`)
}

await main()
