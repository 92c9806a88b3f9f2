/** VaultSink on a real Vault dev server: versions, custom metadata, inspect, remove modes, refusals before any write. */
import { type Credential, Sink } from "@gldt/core/Sink"
import { Effect, Layer, Redacted } from "effect"
import { describe, expect, it } from "vitest"
import * as VaultSink from "../src/VaultSink.ts"
import { META, type RemoveMode } from "../src/VaultSink.ts"
import { api, clientLayer, failure, mountKv, run, tokenAuth, tokenWithPolicy, unique, useVault } from "./helpers.ts"

const vault = useVault()

const sinkLayer = (path: string, options: { mount?: string; token?: string; removeMode?: RemoveMode } = {}) =>
  VaultSink.layer({ mount: options.mount ?? "secret", path, removeMode: options.removeMode }).pipe(
    Layer.provide(clientLayer(vault(), options.token === undefined ? {} : { auth: tokenAuth(options.token) })),
  )

const sk = <A, E>(f: (s: Sink["Service"]) => Effect.Effect<A, E>) =>
  Effect.gen(function* () {
    return yield* f(yield* Sink)
  })

const credential = (tokenId: number, value = `gldt-secret-value-${tokenId}`): Credential => ({
  username: `gitlab+deploy-token-${tokenId}`,
  token: Redacted.make(value),
  tokenId,
  gitlabUrl: "https://gitlab.example.com",
  expiresAt: tokenId % 2 === 0 ? "2027-01-01T00:00:00.123Z" : null,
})

interface Metadata {
  data: { current_version: number; custom_metadata: Record<string, string> | null; versions: Record<string, { deletion_time: string; destroyed: boolean }> }
}
const metadata = async (path: string) => ((await api(vault(), "GET", `secret/metadata/${path}`)) as Metadata).data
const version = async (path: string, v?: number) =>
  (await vault().request("GET", `secret/data/${path}${v === undefined ? "" : `?version=${v}`}`)) as {
    status: number
    body: { data: { data: Record<string, string> | null } }
  }

describe("VaultSink", () => {
  it("each delivery is a new version holding username and token; the custom metadata names the token without its value", async () => {
    const path = `ci/${unique("deliver")}`
    const layer = sinkLayer(path)
    expect(
      await run(
        layer,
        sk((s) => s.inspect("k")),
      ),
    ).toEqual({ _tag: "Empty" })
    await run(
      layer,
      sk((s) => s.check("k")),
    )
    await run(
      layer,
      sk((s) => s.deliver("k", credential(11))),
    )
    await run(
      layer,
      sk((s) => s.deliver("k", credential(12))),
    )
    expect(
      await run(
        layer,
        sk((s) => s.inspect("k")),
      ),
    ).toEqual({ _tag: "Holds", tokenId: 12 })

    expect((await version(path, 1)).body.data.data).toEqual({ username: "gitlab+deploy-token-11", token: "gldt-secret-value-11" })
    expect((await version(path)).body.data.data).toEqual({ username: "gitlab+deploy-token-12", token: "gldt-secret-value-12" })
    const md = await metadata(path)
    expect(md.current_version).toBe(2)
    expect(md.custom_metadata).toMatchObject({
      [META.tokenId]: "12",
      [META.version]: "2",
      [META.expiresAt]: "2027-01-01T00:00:00.123Z",
      [META.gitlabUrl]: "https://gitlab.example.com",
      [META.username]: "gitlab+deploy-token-12",
      [META.key]: "k",
    })
    expect(Object.keys(md.custom_metadata ?? {}).filter((k) => k.startsWith("gldt-next-"))).toEqual([])
    expect(JSON.stringify(md)).not.toContain("gldt-secret-value")
  })

  it("inspect: an interrupted delivery names the token the latest version really holds; a version written by someone else is an unknown token", async () => {
    const path = `ci/${unique("inspect")}`
    const layer = sinkLayer(path)
    await run(
      layer,
      sk((s) => s.deliver("k", credential(21))),
    )
    // A crash after the data write, before the final metadata: the "next" entry names the new version.
    await api(vault(), "POST", `secret/metadata/${path}`, {
      custom_metadata: { ...(await metadata(path)).custom_metadata, [META.nextTokenId]: "22", [META.nextVersion]: "2" },
    })
    await api(vault(), "POST", `secret/data/${path}`, { data: { username: "u", token: "gldt-secret-value-22" } })
    expect(
      await run(
        layer,
        sk((s) => s.inspect("k")),
      ),
    ).toEqual({ _tag: "Holds", tokenId: 22 })
    // A crash before the data write: the path still holds the previous token.
    await api(vault(), "POST", `secret/metadata/${path}`, {
      custom_metadata: { [META.tokenId]: "22", [META.version]: "2", [META.nextTokenId]: "23", [META.nextVersion]: "3" },
    })
    expect(
      await run(
        layer,
        sk((s) => s.inspect("k")),
      ),
    ).toEqual({ _tag: "Holds", tokenId: 22 })
    // Someone writes the path by hand.
    await api(vault(), "POST", `secret/data/${path}`, { data: { username: "someone", token: "else" } })
    await api(vault(), "POST", `secret/data/${path}`, { data: { username: "someone", token: "else2" } })
    expect(
      await run(
        layer,
        sk((s) => s.inspect("k")),
      ),
    ).toEqual({ _tag: "Holds", tokenId: 0 })
    // Other custom metadata keys survive deliveries.
    await api(vault(), "POST", `secret/metadata/${path}`, { custom_metadata: { ...(await metadata(path)).custom_metadata, owner: "team-a" } })
    await run(
      layer,
      sk((s) => s.deliver("k", credential(24))),
    )
    expect((await metadata(path)).custom_metadata).toMatchObject({ owner: "team-a", [META.tokenId]: "24" })
    expect(
      await run(
        layer,
        sk((s) => s.inspect("k")),
      ),
    ).toEqual({ _tag: "Holds", tokenId: 24 })
  })

  it.each([
    { mode: "delete" as const, latest: "deleted", history: "kept", metadata: "kept" },
    { mode: "destroy" as const, latest: "destroyed", history: "destroyed", metadata: "kept" },
    { mode: "purge" as const, latest: "gone", history: "gone", metadata: "gone" },
  ])("remove with $mode: latest $latest, history $history, metadata $metadata", async ({ mode }) => {
    const path = `ci/${unique(`remove-${mode}`)}`
    const layer = sinkLayer(path, { removeMode: mode })
    await run(
      layer,
      sk((s) => s.deliver("k", credential(31))),
    )
    await run(
      layer,
      sk((s) => s.deliver("k", credential(32))),
    )
    await run(
      layer,
      sk((s) => s.remove("k")),
    )
    expect(
      await run(
        layer,
        sk((s) => s.inspect("k")),
      ),
    ).toEqual({ _tag: "Empty" })
    const latest = await version(path)
    expect(latest.status).toBe(404)
    const first = await version(path, 1)
    if (mode === "delete") {
      expect(first.body.data.data).toEqual({ username: "gitlab+deploy-token-31", token: "gldt-secret-value-31" })
      const md = await metadata(path)
      expect(md.versions["2"]?.deletion_time).not.toBe("")
      expect(md.custom_metadata?.[META.tokenId]).toBe("32")
    } else if (mode === "destroy") {
      expect(first.status).toBe(404)
      const md = await metadata(path)
      expect(md.versions["1"]?.destroyed).toBe(true)
      expect(md.versions["2"]?.destroyed).toBe(true)
    } else {
      expect((await vault().request("GET", `secret/metadata/${path}`)).status).toBe(404)
    }
    // Removing again is a no-op.
    await run(
      layer,
      sk((s) => s.remove("k")),
    )
  })

  it("check refuses a path the policy cannot write, naming the paths and capabilities, before anything is written", async () => {
    const path = `ci/${unique("denied")}`
    const readOnly = await tokenWithPolicy(
      vault(),
      `path "secret/data/${path}" { capabilities = ["read"] }\npath "secret/metadata/${path}" { capabilities = ["read"] }`,
    )
    const e = await failure(
      sinkLayer(path, { token: readOnly }),
      sk((s) => s.check("k")),
    )
    expect(e._tag).toBe("SinkError")
    expect(e.message).toContain(`"create", "update" on secret/data/${path}`)
    expect(e.message).toContain(`"create", "update" on secret/metadata/${path}`)
    // deliver without check: the 403 is still a clear SinkError, and nothing was written.
    const denied = await failure(
      sinkLayer(path, { token: readOnly }),
      sk((s) => s.deliver("k", credential(41))),
    )
    expect(denied.message).toContain(`permission denied on secret/metadata/${path}`)
    expect(denied.message).not.toContain("gldt-secret-value")
    expect((await vault().request("GET", `secret/metadata/${path}`)).status).toBe(404)
  })

  it("works with the README's minimal Sink policy", async () => {
    const path = `ci/${unique("minimal")}`
    const minimal = await tokenWithPolicy(
      vault(),
      `path "secret/data/${path}" { capabilities = ["create", "update", "delete"] }\npath "secret/metadata/${path}" { capabilities = ["create", "read", "update"] }`,
    )
    const layer = sinkLayer(path, { token: minimal })
    await run(
      layer,
      sk((s) => s.check("k")),
    )
    await run(
      layer,
      sk((s) => s.deliver("k", credential(51))),
    )
    expect(
      await run(
        layer,
        sk((s) => s.inspect("k")),
      ),
    ).toEqual({ _tag: "Holds", tokenId: 51 })
    await run(
      layer,
      sk((s) => s.remove("k")),
    )
    expect(
      await run(
        layer,
        sk((s) => s.inspect("k")),
      ),
    ).toEqual({ _tag: "Empty" })
  })

  it("a KV version 1 mount is refused by check, naming the fix", async () => {
    const mount = unique("kv1sink")
    await mountKv(vault(), mount, 1)
    const e = await failure(
      sinkLayer("ci/token", { mount }),
      sk((s) => s.check("k")),
    )
    expect(e.message).toContain(`${mount}/ is a KV version 1 mount`)
  })
})
