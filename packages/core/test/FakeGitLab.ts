/** An in-memory GitLab for unit tests of the lifecycle (the simulator proves the real HTTP path). */
import { Context, Effect, Layer, Redacted } from "effect"
import { Forbidden, type GitLabError, TargetNotFound, TokenNotFound, Unauthorized, Unavailable } from "../src/Errors.ts"
import { GitLab } from "../src/GitLab.ts"

export interface FakeToken {
  id: number
  target: string
  name: string
  username: string
  scopes: string[]
  expiresAt: string | null
  secret: string
  foreign: boolean
}

export type Op = "create" | "revoke" | "list"

export class FakeGitLab extends Context.Service<
  FakeGitLab,
  {
    readonly tokens: Map<number, FakeToken>
    readonly calls: Array<{ op: Op; target: string; id?: number }>
    /** Next failure per op; consumed once. `applied` makes create/revoke take effect anyway. */
    readonly failNext: Map<Op, { error: GitLabError; applied?: boolean }>
    addForeign(target: string, t: Omit<FakeToken, "id" | "target" | "secret" | "foreign">): FakeToken
  }
>()("test/FakeGitLab") {
  static readonly layer = Layer.effect(
    FakeGitLab,
    Effect.sync(() => {
      const tokens = new Map<number, FakeToken>()
      let nextId = 100
      return FakeGitLab.of({
        tokens,
        calls: [],
        failNext: new Map(),
        addForeign: (target, t) => {
          const token = { ...t, id: nextId++, target, secret: `gldt-foreign${nextId}`, foreign: true }
          tokens.set(token.id, token)
          return token
        },
      })
    }),
  )

  static readonly gitlabLayer = Layer.effect(
    GitLab,
    Effect.gen(function* () {
      const fake = yield* FakeGitLab
      let nextId = 1000
      const key = (t: { kind: string; id: string }) => `${t.kind}:${t.id}`
      const failure = (op: Op) => {
        const f = fake.failNext.get(op)
        if (f) fake.failNext.delete(op)
        return f
      }
      return GitLab.of({
        create: (_conn, target, req) =>
          Effect.suspend(() => {
            fake.calls.push({ op: "create", target: key(target) })
            const f = failure("create")
            const apply = () => {
              const id = nextId++
              const token: FakeToken = {
                id,
                target: key(target),
                name: req.name,
                username: req.username ?? `gitlab+deploy-token-${id}`,
                scopes: [...req.scopes],
                expiresAt: req.expiresAt ?? null,
                secret: `gldt-secret-value-${id}`,
                foreign: false,
              }
              fake.tokens.set(id, token)
              return token
            }
            if (f) {
              if (f.applied) apply()
              return Effect.fail(f.error)
            }
            const t = apply()
            return Effect.succeed({
              id: t.id,
              name: t.name,
              username: t.username,
              expiresAt: t.expiresAt,
              scopes: t.scopes,
              revoked: false,
              expired: false,
              token: Redacted.make(t.secret),
            })
          }),
        revoke: (_conn, target, id) =>
          Effect.suspend(() => {
            fake.calls.push({ op: "revoke", target: key(target), id })
            const f = failure("revoke")
            if (f && !f.applied) return Effect.fail(f.error)
            const t = fake.tokens.get(id)
            if (t === undefined || t.target !== key(target)) return Effect.fail(new TokenNotFound({ tokenId: id }))
            fake.tokens.delete(id)
            return f ? Effect.fail(f.error) : Effect.void
          }),
        list: (_conn, target) =>
          Effect.suspend(() => {
            fake.calls.push({ op: "list", target: key(target) })
            const f = failure("list")
            if (f) return Effect.fail(f.error)
            return Effect.succeed(
              [...fake.tokens.values()]
                .filter((t) => t.target === key(target))
                .sort((a, b) => a.id - b.id)
                .map((t) => ({ id: t.id, name: t.name, username: t.username, expiresAt: t.expiresAt, scopes: t.scopes, revoked: false, expired: false })),
            )
          }),
        preflight: () => Effect.succeed({ tokenCount: 0, canManage: true }),
      })
    }),
  ).pipe(Layer.provideMerge(FakeGitLab.layer))
}

export const errors = {
  unauthorized: () => new Unauthorized({ message: "401 Unauthorized" }),
  forbidden: () => new Forbidden({ message: "403 Forbidden", insufficientScope: false }),
  projectNotFound: () => new TargetNotFound({ message: "404 Project Not Found" }),
  lost: () => new Unavailable({ message: "502 Bad Gateway", maybeApplied: true }),
}
