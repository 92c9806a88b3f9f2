/** Calls to the Kubernetes API as Effects, with failures reduced to status code, reason and message. */
import { Effect } from "effect"

/** A failed API call: the HTTP status (0 for a network failure), the Status reason and its message. */
export class KubeCallError {
  readonly _tag = "KubeCallError"
  readonly code: number
  readonly reason: string
  readonly message: string
  constructor(code: number, reason: string, message: string) {
    this.code = code
    this.reason = reason
    this.message = message
  }
  toString(): string {
    return this.code === 0 ? this.message : `${this.code} ${this.reason || "error"}: ${this.message}`
  }
}

const isApiException = (e: unknown): e is { readonly code: number; readonly body: unknown } =>
  typeof e === "object" && e !== null && typeof (e as { code?: unknown }).code === "number" && "body" in e

/**
 * Reduces an error of @kubernetes/client-node to what may be shown: the apiserver's Status
 * message (never the library's message, which repeats the whole response with its headers).
 */
export const toKubeCallError = (e: unknown): KubeCallError => {
  if (isApiException(e)) {
    let status: { readonly message?: unknown; readonly reason?: unknown } | undefined
    if (typeof e.body === "string") {
      try {
        status = JSON.parse(e.body) as typeof status
      } catch {
        status = undefined
      }
    } else if (typeof e.body === "object" && e.body !== null) {
      status = e.body as typeof status
    }
    const message =
      typeof status?.message === "string"
        ? status.message
        : typeof e.body === "string" && e.body.trim() !== "" && e.body.length <= 200
          ? e.body.trim()
          : `HTTP ${e.code}`
    return new KubeCallError(e.code, typeof status?.reason === "string" ? status.reason : "", message)
  }
  if (e instanceof Error) {
    const cause = (e as { cause?: { code?: unknown; message?: unknown } }).cause
    const detail = typeof cause?.code === "string" ? ` (${cause.code})` : typeof cause?.message === "string" ? ` (${cause.message})` : ""
    return new KubeCallError(0, "", `cannot reach the Kubernetes API: ${e.message}${detail}`)
  }
  return new KubeCallError(0, "", `cannot reach the Kubernetes API: ${String(e)}`)
}

export const kubeCall = <A>(f: () => Promise<A>): Effect.Effect<A, KubeCallError> => Effect.tryPromise({ try: f, catch: toKubeCallError })

/** Succeeds with undefined on 404. */
export const orNotFound = <A>(effect: Effect.Effect<A, KubeCallError>): Effect.Effect<A | undefined, KubeCallError> =>
  Effect.catchIf(
    effect,
    (e) => e.code === 404,
    () => Effect.succeed(undefined),
  )

/** An owner of the objects gldt writes (usually the ExternalSecret). Same namespace. */
export interface Owner {
  readonly apiVersion: string
  readonly kind: string
  readonly name: string
  readonly uid: string
}

export interface OwnerReference {
  readonly apiVersion: string
  readonly kind: string
  readonly name: string
  readonly uid: string
  readonly controller?: boolean | undefined
  readonly blockOwnerDeletion?: boolean | undefined
}
