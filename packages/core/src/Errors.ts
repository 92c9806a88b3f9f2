/**
 * Typed errors. None of them carries a token value or an access token: messages are built from
 * status codes, GitLab's own error text (which never echoes secrets) and ids.
 */
import { Schema } from "effect"

/** 401: the access token is unknown, expired or revoked. */
export class Unauthorized extends Schema.TaggedError<Unauthorized>()("Unauthorized", {
  message: Schema.String,
}) {}

/** 403: role too low, or the token lacks the api scope. */
export class Forbidden extends Schema.TaggedError<Forbidden>()("Forbidden", {
  message: Schema.String,
  insufficientScope: Schema.Boolean,
}) {}

/** 404 "Project Not Found" / "Group Not Found", or a raw path that matched no route. */
export class TargetNotFound extends Schema.TaggedError<TargetNotFound>()("TargetNotFound", {
  message: Schema.String,
}) {}

/** 404 "Not found" on a token id: the token is gone (deleted here or elsewhere). */
export class TokenNotFound extends Schema.TaggedError<TokenNotFound>()("TokenNotFound", {
  tokenId: Schema.Number,
}) {
  override get message() {
    return `deploy token ${this.tokenId} not found`
  }
}

/** 400: GitLab refused the request; its message is kept. */
export class Invalid extends Schema.TaggedError<Invalid>()("Invalid", {
  message: Schema.String,
}) {}

/** 429 after retries ran out. */
export class RateLimited extends Schema.TaggedError<RateLimited>()("RateLimited", {
  message: Schema.String,
  retryAfterMs: Schema.Number,
}) {}

/** 301/405: the project moved; use its numeric id. */
export class Moved extends Schema.TaggedError<Moved>()("Moved", {
  message: Schema.String,
  location: Schema.optional(Schema.String),
}) {}

/**
 * 5xx, a timeout, a reset or an unreadable answer. `maybeApplied` is true when the request may have
 * taken effect on the server (a create whose answer was lost), which recovery must resolve.
 */
export class Unavailable extends Schema.TaggedError<Unavailable>()("Unavailable", {
  message: Schema.String,
  maybeApplied: Schema.Boolean,
}) {}

export type GitLabError = Unauthorized | Forbidden | TargetNotFound | TokenNotFound | Invalid | RateLimited | Moved | Unavailable

/** Another writer changed the record since it was loaded (compare-and-set lost). */
export class StateConflict extends Schema.TaggedError<StateConflict>()("StateConflict", {
  key: Schema.String,
}) {
  override get message() {
    return `state for ${this.key} was changed by another writer`
  }
}

/** The state backend failed or holds a record it cannot read; never silently replaced. */
export class StateError extends Schema.TaggedError<StateError>()("StateError", {
  key: Schema.String,
  message: Schema.String,
}) {}

/** Another process holds the key's lock. */
export class StateBusy extends Schema.TaggedError<StateBusy>()("StateBusy", {
  key: Schema.String,
  holder: Schema.String,
}) {
  override get message() {
    return `state for ${this.key} is locked by ${this.holder}`
  }
}

/** The sink cannot take (or refused) the credential. */
export class SinkError extends Schema.TaggedError<SinkError>()("SinkError", {
  key: Schema.String,
  message: Schema.String,
}) {}

/** The lifecycle cannot proceed until a person acts (e.g. revocation blocked by 403). */
export class LifecycleError extends Schema.TaggedError<LifecycleError>()("LifecycleError", {
  key: Schema.String,
  message: Schema.String,
}) {}
