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

export type Op = "create" | "revoke" | "list" | "resolve"

export class FakeGitLab extends Context.Service<
  FakeGitLab,
  {
    readonly tokens: Map<number, FakeToken>
    readonly calls: Array<{ op: Op; target: string; id?: number }>
    /** Next failure per op; consumed once. `applied` makes create/revoke take effect anyway. */
    readonly failNext: Map<Op, { error: GitLabError; applied?: boolean }>
    /** Failures that never go away (a revocation GitLab refuses for good). */
    readonly failAlways: Map<Op, GitLabError>
    addForeign(target: string, t: Omit<FakeToken, "id" | "target" | "secret" | "foreign">): FakeToken
    /** Path → numeric id of projects and groups (`project:group/project` → "7"); unknown paths get a new id on first lookup. */
    readonly paths: Map<string, string>
    /** Renames or moves a namespace: its id (and tokens) stay, the old path is free for another. */
    move(kind: "project" | "group", from: string, to: string): void
    /** `kind:id` of a target, a path looked up (and given a new id when unknown). */
    targetKey(t: { readonly kind: string; readonly id: string }): string
  }
>()("test/FakeGitLab") {
  static readonly layer = Layer.effect(
    FakeGitLab,
    Effect.sync(() => {
      const tokens = new Map<number, FakeToken>()
      const paths = new Map<string, string>()
      let nextId = 100
      let nextNamespace = 7
      const targetKey = (t: { readonly kind: string; readonly id: string }) => {
        if (/^\d+$/.test(t.id)) return `${t.kind}:${t.id}`
        const p = `${t.kind}:${t.id}`
        let id = paths.get(p)
        if (id === undefined) {
          id = String(nextNamespace++)
          paths.set(p, id)
        }
        return `${t.kind}:${id}`
      }
      return FakeGitLab.of({
        targetKey,
        tokens,
        calls: [],
        failNext: new Map(),
        failAlways: new Map(),
        paths,
        move: (kind, from, to) => {
          const id = paths.get(`${kind}:${from}`)
          if (id === undefined) throw new Error(`no ${kind} at ${from}`)
          paths.delete(`${kind}:${from}`)
          paths.set(`${kind}:${to}`, id)
        },
        addForeign: (target, t) => {
          const [kind = "", ...rest] = target.split(":")
          const token = { ...t, id: nextId++, target: targetKey({ kind, id: rest.join(":") }), secret: `gldt-foreign${nextId}`, foreign: true }
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
      /** Tokens live under the numeric id; a path is looked up as GitLab would. */
      const key = fake.targetKey
      const failure = (op: Op) => {
        const always = fake.failAlways.get(op)
        if (always) return { error: always, applied: false }
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
        resolveTarget: (_conn, target) =>
          Effect.suspend(() => {
            fake.calls.push({ op: "resolve", target: `${target.kind}:${target.id}` })
            const f = failure("resolve")
            if (f) return Effect.fail(f.error)
            return Effect.succeed({ kind: target.kind, id: key(target).split(":")[1]! })
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
