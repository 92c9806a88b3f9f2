/** VaultState on a real Vault dev server: layout, compare-and-set on the KV version, races, tombstones, refusals. */
import { emptyRecord } from "@gldt/core/State"
import { Layer, Option } from "effect"
import { describe, expect, it } from "vitest"
import { expectCompareAndSet, expectOneWinnerPerRace, st, withToken } from "../../core/test/support/StateContract.ts"
import * as VaultState from "../src/VaultState.ts"
import { secretName } from "../src/VaultState.ts"
import { api, clientLayer, failure, mountKv, run, tokenAuth, tokenWithPolicy, unique, useVault } from "./helpers.ts"

const vault = useVault()

const stateLayer = (prefix: string, options: { mount?: string; token?: string } = {}) =>
  VaultState.layer({ mount: options.mount ?? "secret", prefix }).pipe(
    Layer.provide(clientLayer(vault(), options.token === undefined ? {} : { auth: tokenAuth(options.token) })),
  )

describe("VaultState", () => {
  it("stores one KV v2 secret per key under mount/prefix, readable with the vault CLI's API, version = KV version", async () => {
    const prefix = unique("layout")
    const key = "default/gitlab-deploy-token"
    const layer = stateLayer(`gldt/${prefix}`)
    const record = withToken(key)
    const v1 = await run(
      layer,
      st((s) => s.save(key, record, null)),
    )
    expect(v1).toBe("1")
    const loaded = Option.getOrThrow(
      await run(
        layer,
        st((s) => s.load(key)),
      ),
    )
    expect(loaded).toEqual({ record, version: "1" })

    expect(secretName(key)).toBe("default%2Fgitlab-deploy-token")
    const raw = (await api(vault(), "GET", `secret/data/gldt/${prefix}/${encodeURIComponent(secretName(key))}`)) as {
      data: { data: Record<string, unknown>; metadata: { version: number } }
    }
    expect(raw.data.metadata.version).toBe(1)
    expect(raw.data.data).toEqual({ gldt: "state", key, record: JSON.parse(JSON.stringify(record)) })

    const v2 = await run(
      layer,
      st((s) => s.save(key, { ...record, generation: 2 }, v1)),
    )
    expect(v2).toBe("2")
    expect(
      await run(
        layer,
        st((s) => s.list()),
      ),
    ).toEqual([key])
    expect(
      Option.isNone(
        await run(
          layer,
          st((s) => s.load("other")),
        ),
      ),
    ).toBe(true)
  })

  it("compare-and-set: creating twice and a stale version are StateConflict; the current version wins", async () => {
    const layer = stateLayer(unique("cas"))
    await expectCompareAndSet(layer, "es", "missing")
    expect(
      (
        await failure(
          layer,
          st((s) => s.save("es", emptyRecord("es"), "not-a-version")),
        )
      )._tag,
    ).toBe("StateConflict")
  })

  it("two writers (separate clients) racing on one key: exactly one wins each round, the other gets StateConflict", async () => {
    const prefix = unique("race")
    await expectOneWinnerPerRace(stateLayer(prefix), stateLayer(prefix), "ns/es", 8)
  })

  it("remove writes a tombstone with compare-and-set; a new record of the key never reuses an old version", async () => {
    const prefix = unique("remove")
    const layer = stateLayer(prefix)
    const key = "k"
    const v1 = await run(
      layer,
      st((s) => s.save(key, emptyRecord(key), null)),
    )
    const v2 = await run(
      layer,
      st((s) => s.save(key, { ...emptyRecord(key), generation: 1 }, v1)),
    )
    expect(
      (
        await failure(
          layer,
          st((s) => s.remove(key, v1)),
        )
      )._tag,
    ).toBe("StateConflict")
    await run(
      layer,
      st((s) => s.remove(key, v2)),
    )
    expect(
      Option.isNone(
        await run(
          layer,
          st((s) => s.load(key)),
        ),
      ),
    ).toBe(true)
    expect(
      await run(
        layer,
        st((s) => s.list()),
      ),
    ).toEqual([])
    // A stale writer still holding v2 cannot write over the tombstone.
    expect(
      (
        await failure(
          layer,
          st((s) => s.save(key, emptyRecord(key), v2)),
        )
      )._tag,
    ).toBe("StateConflict")
    const v4 = await run(
      layer,
      st((s) => s.save(key, { ...emptyRecord(key), generation: 5 }, null)),
    )
    expect(Number(v4)).toBe(4)
    expect(
      Option.getOrThrow(
        await run(
          layer,
          st((s) => s.load(key)),
        ),
      ).record.generation,
    ).toBe(5)
  })

  it("a secret at the key's path that is not its record is a StateError naming the path, and is never overwritten", async () => {
    const prefix = unique("broken")
    const layer = stateLayer(prefix)
    const key = "k"
    await api(vault(), "POST", `secret/data/${prefix}/k`, { data: { password: "hunter2-not-ours" } })
    const e = await failure(
      layer,
      st((s) => s.load(key)),
    )
    expect(e._tag).toBe("StateError")
    expect(e.message).toContain(`secret/data/${prefix}/k`)
    expect(e.message).toContain("is not the gldt state record")
    expect(
      (
        await failure(
          layer,
          st((s) => s.save(key, emptyRecord(key), null)),
        )
      )._tag,
    ).toBe("StateError")
    const after = (await api(vault(), "GET", `secret/data/${prefix}/k`)) as { data: { data: unknown; metadata: { version: number } } }
    expect(after.data).toMatchObject({ data: { password: "hunter2-not-ours" }, metadata: { version: 1 } })
  })

  it("a KV version 1 mount is refused naming the mount and the fix", async () => {
    const mount = unique("kv1")
    await mountKv(vault(), mount, 1)
    const e = await failure(
      stateLayer("gldt", { mount }),
      st((s) => s.load("k")),
    )
    expect(e._tag).toBe("StateError")
    expect(e.message).toContain(`${mount}/ is a KV version 1 mount; gldt needs KV version 2`)
    expect(e.message).toContain(`vault kv enable-versioning ${mount}/`)
    const listing = (await vault().request("LIST", `${mount}/`)).status
    expect(listing).toBe(404) // nothing was written on the v1 mount
  })

  it("a policy without update on the records is refused before any write, naming the path and the capabilities", async () => {
    const prefix = unique("denied")
    const readOnly = await tokenWithPolicy(
      vault(),
      `path "secret/data/${prefix}/*" { capabilities = ["read", "create"] }\npath "sys/internal/ui/mounts/*" { capabilities = ["read"] }`,
    )
    const e = await failure(
      stateLayer(prefix, { token: readOnly }),
      st((s) => s.save("k", emptyRecord("k"), null)),
    )
    expect(e._tag).toBe("StateError")
    expect(e.message).toContain(`permission denied on secret/data/${prefix}/k`)
    expect(e.message).toContain('missing "update"')
    expect((await vault().request("GET", `secret/data/${prefix}/k`)).status).toBe(404)
  })

  it("works with the README's minimal State policy", async () => {
    const prefix = unique("minimal")
    const minimal = await tokenWithPolicy(
      vault(),
      `path "secret/data/${prefix}/*" { capabilities = ["create", "read", "update"] }\npath "secret/metadata/${prefix}/" { capabilities = ["list"] }`,
    )
    const layer = stateLayer(prefix, { token: minimal })
    const v1 = await run(
      layer,
      st((s) => s.save("a/b", emptyRecord("a/b"), null)),
    )
    await run(
      layer,
      st((s) => s.save("a/b", { ...emptyRecord("a/b"), generation: 1 }, v1)),
    )
    expect(
      await run(
        layer,
        st((s) => s.list()),
      ),
    ).toEqual(["a/b"])
    await run(
      layer,
      st((s) => s.remove("a/b", "2")),
    )
    expect(
      await run(
        layer,
        st((s) => s.list()),
      ),
    ).toEqual([])
  })
})
