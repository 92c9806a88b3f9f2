/** The GitLab service: the deploy-token calls, target resolution and an access preflight. Implemented by @gldt/gitlab. */
import { Context, type Effect, type Redacted } from "effect"
import type { GitLabError } from "./Errors.ts"
import type { Scope, Target } from "./Spec.ts"

/** Where and as whom to call GitLab. The access token stays `Redacted` end to end. */
export interface Connection {
  /** The instance this access token belongs to; gldt never sends the token anywhere else. */
  readonly url: string
  readonly accessToken: Redacted.Redacted<string>
  /** Extra PEM CAs to trust (self-managed GitLab). */
  readonly caPem?: string | undefined
  /** Permit plain http:// (local tests only). */
  readonly allowHttp?: boolean | undefined
}

export interface CreateRequest {
  readonly name: string
  readonly scopes: ReadonlyArray<Scope>
  readonly username?: string | undefined
  /** ISO 8601 UTC with milliseconds. */
  readonly expiresAt?: string | undefined
}

/** A deploy token as list and get return it: no secret. */
export interface DeployToken {
  readonly id: number
  readonly name: string
  readonly username: string
  readonly expiresAt: string | null
  readonly scopes: ReadonlyArray<string>
  readonly revoked: boolean
  readonly expired: boolean
}

/** The `201` of create: the only time GitLab returns the secret. */
export interface MintedToken extends DeployToken {
  readonly token: Redacted.Redacted<string>
}

export interface AccessReport {
  /** Number of deploy tokens the target holds now (listing needs Maintainer+). */
  readonly tokenCount: number
  /**
   * Whether the caller may create and delete deploy tokens (api scope; Maintainer on a project,
   * Owner on a group). Probed with `DELETE …/deploy_tokens/0`: no token has id 0, so GitLab answers
   * 404 when allowed and 403 when not, and nothing changes.
   */
  readonly canManage: boolean
  /** Why `canManage` is false (missing api scope, or role too low). */
  readonly reason?: string | undefined
}

export class GitLab extends Context.Service<
  GitLab,
  {
    /** POST; never retried once it may have been applied (fails with `Unavailable{maybeApplied}`). */
    create(conn: Connection, target: Target, req: CreateRequest): Effect.Effect<MintedToken, GitLabError>
    /** DELETE; `TokenNotFound` on 404 "Not found" for the id. */
    revoke(conn: Connection, target: Target, tokenId: number): Effect.Effect<void, GitLabError>
    /** GET every page of the target's tokens, id ascending. */
    list(conn: Connection, target: Target): Effect.Effect<ReadonlyArray<DeployToken>, GitLabError>
    /**
     * The target by numeric id: a numeric id as given; a path is looked up (`GET /projects/:path`,
     * `GET /groups/:path`), following a moved project's redirect within the instance.
     */
    resolveTarget(conn: Connection, target: Target): Effect.Effect<Target, GitLabError>
    /** Checks that the access token reaches the target; mints nothing. */
    preflight(conn: Connection, target: Target): Effect.Effect<AccessReport, GitLabError>
  }
>()("@gldt/core/GitLab") {}
