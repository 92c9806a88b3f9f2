/** The last line of defence: no secret the client knows leaves it inside an error message. */
import { Forbidden, type GitLabError, Invalid, Moved, RateLimited, TargetNotFound, Unauthorized, Unavailable } from "@gldt/core/Errors"

const replaceAll = (s: string, secret: string) => (secret.length >= 4 ? s.split(secret).join("[REDACTED]") : s)

/** Returns the error with every secret removed from its message. */
export const scrub = (error: GitLabError, secrets: ReadonlyArray<string>): GitLabError => {
  if (error._tag === "TokenNotFound") return error
  const clean = secrets.reduce(replaceAll, error.message)
  return clean === error.message ? error : withMessage(error, clean)
}

/** The same error with another message. */
export const withMessage = (error: GitLabError, message: string): GitLabError => {
  switch (error._tag) {
    case "Unauthorized":
      return new Unauthorized({ message })
    case "Forbidden":
      return new Forbidden({ message, insufficientScope: error.insufficientScope })
    case "TargetNotFound":
      return new TargetNotFound({ message })
    case "TokenNotFound":
      return error
    case "Invalid":
      return new Invalid({ message })
    case "RateLimited":
      return new RateLimited({ message, retryAfterMs: error.retryAfterMs })
    case "Moved":
      return new Moved({ message, location: error.location })
    case "Unavailable":
      return new Unavailable({ message, maybeApplied: error.maybeApplied })
  }
}
