/**
 * Vault's logical backend contract as this plugin sees it: requests in, responses or typed errors
 * out, storage reached back through the host. Shapes follow the wire (`pb.Request`, `pb.Response`)
 * with JSON bodies decoded and TTLs in milliseconds instead of nanoseconds.
 */

export type Operation = "create" | "read" | "update" | "patch" | "delete" | "list" | "help" | "revoke" | "renew" | "rollback" | (string & {})

export interface LeaseOptions {
  readonly ttlMs: number
  readonly maxTtlMs: number
  readonly renewable: boolean
  /** Requested increment on renew. */
  readonly incrementMs: number
  /** When the lease was first issued (renew/revoke only). */
  readonly issueTime: number | undefined
}

export interface SecretIn {
  readonly leaseId: string
  readonly leaseOptions: LeaseOptions
  readonly internalData: Record<string, unknown>
}

export interface Request {
  readonly id: string
  readonly operation: Operation
  readonly path: string
  readonly data: Record<string, unknown>
  readonly secret: SecretIn | undefined
  readonly mountPoint: string
}

export interface SecretOut {
  /** Issue time of a renewed lease (echoed back); unset for a new secret. */
  readonly issueTime?: number | undefined
  readonly ttlMs: number
  readonly maxTtlMs: number
  readonly renewable: boolean
  readonly internalData: Record<string, unknown>
}

export interface Response {
  readonly data?: Record<string, unknown> | undefined
  readonly secret?: SecretOut | undefined
  readonly warnings?: ReadonlyArray<string> | undefined
}

/** An error with the HTTP status Vault answers with (a coded error on the wire). */
export class VaultError extends Error {
  readonly status: number

  constructor(status: number, message: string) {
    super(message)
    this.status = status
  }
}

/** No handler for this path: Vault answers 404 "unsupported path". */
export class UnsupportedPath extends Error {}
/** The path exists but not for this operation: Vault answers 405. */
export class UnsupportedOperation extends Error {}

export interface StorageEntry {
  readonly key: string
  readonly value: Buffer
}

/** The mount's storage, served by the host. */
export interface Storage {
  list(prefix: string): Promise<ReadonlyArray<string>>
  get(key: string): Promise<StorageEntry | undefined>
  put(key: string, value: Buffer, sealWrap?: boolean): Promise<void>
  delete(key: string): Promise<void>
}

/** What the host tells the backend about its mount. */
export interface SystemView {
  defaultLeaseTtlMs(): Promise<number>
  maxLeaseTtlMs(): Promise<number>
}

export interface Paths {
  readonly root?: ReadonlyArray<string>
  readonly unauthenticated?: ReadonlyArray<string>
  readonly localStorage?: ReadonlyArray<string>
  readonly sealWrapStorage?: ReadonlyArray<string>
}

export interface SetupContext {
  readonly storage: Storage
  readonly system: SystemView
  readonly config: Readonly<Record<string, string>>
  readonly backendUuid: string
}

export interface LogicalBackend {
  /** Called once per process (and by type detection, with an empty config). Must not block on storage. */
  setup(ctx: SetupContext): Promise<void>
  /** After the mount is set up, and again after the host restarted a crashed plugin. */
  initialize(): Promise<void>
  specialPaths(): Paths
  handleRequest(req: Request): Promise<Response | undefined>
  cleanup(): Promise<void>
}
