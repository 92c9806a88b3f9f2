/** Flags: defaults, environment variables, the flag winning over its variable, errors naming the flag. */
import { describe, expect, it } from "vitest"
import { FLAG_DOCS, FlagError, helpText, parseFlags } from "../src/Flags.ts"

describe("parseFlags", () => {
  it("has the contract's defaults", () => {
    const f = parseFlags([], {})
    expect(f.kubeconfig).toBeUndefined()
    expect(f.namespaces).toEqual([])
    expect(f.leaderElect).toBe(false)
    expect(f.leaderElectionId).toBe("gldt-controller")
    expect(f.metricsBindAddress).toBe(":8080")
    expect(f.healthProbeBindAddress).toBe(":8081")
    expect(f.allowHttp).toBe(false)
    expect(f.logFormat).toBe("json")
    expect(f.suspectWaitMs).toBe(3_600_000)
  })

  it("--suspect-wait bounds how long suspects hold a deletion", () => {
    expect(parseFlags(["--suspect-wait", "10m"], {}).suspectWaitMs).toBe(600_000)
    expect(parseFlags([], { GLDT_SUSPECT_WAIT: "90s" }).suspectWaitMs).toBe(90_000)
    expect(() => parseFlags(["--suspect-wait", "a while"], {})).toThrow("--suspect-wait")
  })

  it("reads environment variables; a flag wins over its variable", () => {
    const env = { GLDT_NAMESPACES: "a,b", GLDT_CONCURRENCY: "8", GLDT_LEADER_ELECT: "true", GLDT_METRICS_BIND_ADDRESS: "0" }
    const f = parseFlags(["--concurrency", "2"], env)
    expect(f.namespaces).toEqual(["a", "b"])
    expect(f.concurrency).toBe(2)
    expect(f.leaderElect).toBe(true)
    expect(f.metricsBindAddress).toBeUndefined()
    expect(parseFlags(["--namespace", "x", "--namespace", "y"], env).namespaces).toEqual(["x", "y"])
  })

  it("refuses bad values naming the flag", () => {
    for (const [args, name] of [
      [["--concurrency", "0"], "--concurrency"],
      [["--lease-duration", "5s", "--renew-deadline", "10s"], "--lease-duration"],
      [["--retry-period", "soon"], "--retry-period"],
      [["--health-probe-bind-address", "localhost"], "--health-probe-bind-address"],
      [["--eso-coexistence", "maybe"], "--eso-coexistence"],
    ] as const) {
      expect(() => parseFlags([...args], {})).toThrow(FlagError)
      expect(() => parseFlags([...args], {})).toThrow(name)
    }
  })

  it("--help lists every flag with its variable", () => {
    const text = helpText()
    for (const f of FLAG_DOCS) {
      expect(text).toContain(`--${f.name}`)
      if (f.env !== "") expect(text).toContain(`env ${f.env}`)
    }
  })
})
