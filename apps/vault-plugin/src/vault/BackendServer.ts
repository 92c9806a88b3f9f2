/**
 * The `pb.Backend` gRPC service over a `LogicalBackend`: decodes the wire request (JSON strings,
 * nanosecond TTLs), calls the backend, encodes its answer. `Setup` dials the host's Storage and
 * SystemView back through the broker, as go-plugin's Go servers do.
 */
import type * as grpc from "@grpc/grpc-js"
import type { Broker } from "../goplugin/Broker.ts"
import { log } from "../goplugin/Log.ts"
import type { ProtocolServices } from "../protocol/Protocol.ts"
import {
  type LeaseOptions,
  type LogicalBackend,
  type Request,
  type Response,
  type Storage,
  type SystemView,
  UnsupportedOperation,
  UnsupportedPath,
  VaultError,
} from "./Logical.ts"

/** `logical.BackendType`: 1 is a secrets engine. */
const TYPE_LOGICAL = 1

/** `pb.ProtoError` types (sdk/plugin/pb/translation.go). */
const ERR_CODED = 3
const ERR_UNSUPPORTED_OPERATION = 5
const ERR_UNSUPPORTED_PATH = 6
const ERR_INTERNAL = 2

const NS_PER_MS = 1_000_000n

const nsToMs = (ns: string | number | undefined): number => (ns === undefined || ns === "" ? 0 : Number(BigInt(ns) / NS_PER_MS))
const msToNs = (ms: number): string => (BigInt(Math.max(0, Math.round(ms))) * NS_PER_MS).toString()

const parseJson = (text: string | undefined): Record<string, unknown> => {
  if (!text) return {}
  const parsed = JSON.parse(text) as unknown
  return typeof parsed === "object" && parsed !== null && !Array.isArray(parsed) ? (parsed as Record<string, unknown>) : {}
}

interface WireLeaseOptions {
  TTL?: string
  MaxTTL?: string
  renewable?: boolean
  increment?: string
  issue_time?: { seconds?: string; nanos?: number } | null
}
interface WireSecret {
  lease_options?: WireLeaseOptions | null
  internal_data?: string
  lease_id?: string
}
interface WireRequest {
  id?: string
  operation?: string
  path?: string
  data?: string
  secret?: WireSecret | null
  mount_point?: string
}

const decodeLease = (l: WireLeaseOptions | null | undefined): LeaseOptions => ({
  ttlMs: nsToMs(l?.TTL),
  maxTtlMs: nsToMs(l?.MaxTTL),
  renewable: l?.renewable ?? false,
  incrementMs: nsToMs(l?.increment),
  issueTime: l?.issue_time?.seconds ? Number(l.issue_time.seconds) * 1000 + Math.floor((l.issue_time.nanos ?? 0) / 1e6) : undefined,
})

export const decodeRequest = (r: WireRequest): Request => ({
  id: r.id ?? "",
  operation: r.operation ?? "",
  path: r.path ?? "",
  data: parseJson(r.data),
  secret: r.secret
    ? { leaseId: r.secret.lease_id ?? "", leaseOptions: decodeLease(r.secret.lease_options), internalData: parseJson(r.secret.internal_data) }
    : undefined,
  mountPoint: r.mount_point ?? "",
})

/** Go's zero time.Time, which is what a Go engine sends for a new secret's issue time. */
const GO_ZERO_TIME = { seconds: "-62135596800", nanos: 0 }

const timestamp = (ms: number | undefined) =>
  ms === undefined ? GO_ZERO_TIME : { seconds: String(Math.floor(ms / 1000)), nanos: (((ms % 1000) + 1000) % 1000) * 1_000_000 }

export const encodeResponse = (res: Response | undefined): object | null => {
  if (res === undefined) return null
  return {
    // Vault's translation parses this field as JSON: an absent body is `null`, as Go marshals a nil map.
    data: JSON.stringify(res.data ?? null),
    warnings: res.warnings ?? [],
    secret: res.secret
      ? {
          // Vault's translation refuses a lease without an issue time (nil Timestamp).
          lease_options: {
            TTL: msToNs(res.secret.ttlMs),
            MaxTTL: msToNs(res.secret.maxTtlMs),
            renewable: res.secret.renewable,
            issue_time: timestamp(res.secret.issueTime),
          },
          internal_data: JSON.stringify(res.secret.internalData),
        }
      : null,
  }
}

export const encodeError = (e: unknown): object => {
  if (e instanceof VaultError) return { err_type: ERR_CODED, err_msg: e.message, err_code: String(e.status) }
  if (e instanceof UnsupportedPath) return { err_type: ERR_UNSUPPORTED_PATH, err_msg: "unsupported path", err_code: "0" }
  if (e instanceof UnsupportedOperation) return { err_type: ERR_UNSUPPORTED_OPERATION, err_msg: "unsupported operation", err_code: "0" }
  return { err_type: ERR_INTERNAL, err_msg: e instanceof Error ? e.message : String(e), err_code: "0" }
}

const unary =
  <Q>(f: (req: Q) => Promise<object>) =>
  (call: grpc.ServerUnaryCall<Q, object>, callback: grpc.sendUnaryData<object>): void => {
    f(call.request).then(
      (reply) => callback(null, reply),
      (e: unknown) => callback({ code: 13, details: e instanceof Error ? e.message : String(e) } as grpc.ServiceError, null),
    )
  }

const promisify =
  <A, R>(client: grpc.Client, method: string) =>
  (arg: A): Promise<R> =>
    new Promise((resolve, reject) => {
      ;(client as unknown as Record<string, (a: A, cb: (e: grpc.ServiceError | null, r: R) => void) => void>)[method]!(arg, (e, r) =>
        e ? reject(e) : resolve(r),
      )
    })

/** The host's Storage service as a `Storage`; an `err` string in a reply becomes a thrown error. */
export const storageClient = (client: grpc.Client): Storage => {
  const list = promisify<object, { keys: string[]; err: string }>(client, "List")
  const get = promisify<object, { entry: { key: string; value: Buffer } | null; err: string }>(client, "Get")
  const put = promisify<object, { err: string }>(client, "Put")
  const del = promisify<object, { err: string }>(client, "Delete")
  const check = <T extends { err: string }>(r: T, what: string): T => {
    if (r.err) throw new Error(`storage ${what}: ${r.err}`)
    return r
  }
  return {
    list: async (prefix) => check(await list({ prefix }), "list").keys,
    get: async (key) => {
      const r = check(await get({ key }), "get")
      return r.entry ? { key: r.entry.key, value: Buffer.from(r.entry.value) } : undefined
    },
    put: async (key, value, sealWrap = false) => {
      check(await put({ entry: { key, value, seal_wrap: sealWrap } }), "put")
    },
    delete: async (key) => {
      check(await del({ key }), "delete")
    },
  }
}

export const systemViewClient = (client: grpc.Client): SystemView => {
  const def = promisify<object, { TTL: string }>(client, "DefaultLeaseTTL")
  const max = promisify<object, { TTL: string }>(client, "MaxLeaseTTL")
  return {
    defaultLeaseTtlMs: async () => nsToMs((await def({})).TTL),
    maxLeaseTtlMs: async () => nsToMs((await max({})).TTL),
  }
}

/** The `pb.Backend` implementation. */
export const backendService = (protocol: ProtocolServices, broker: Broker, backend: LogicalBackend): grpc.UntypedServiceImplementation => {
  let ready = false
  const guard = () => {
    if (!ready) throw new Error("backend is not set up")
  }
  return {
    Setup: unary(async (args: { broker_id: number; Config: Record<string, string>; backendUUID: string }) => {
      try {
        const { target, credentials, options } = await broker.dial(args.broker_id)
        const storage = new protocol.StorageClient(target, credentials, options)
        const system = new protocol.SystemViewClient(target, credentials, { ...options, channelOverride: storage.getChannel() })
        await backend.setup({
          storage: storageClient(storage),
          system: systemViewClient(system),
          config: args.Config ?? {},
          backendUuid: args.backendUUID ?? "",
        })
        ready = true
        return { err: "" }
      } catch (e) {
        log("error", "setup failed", { error: e instanceof Error ? e.message : String(e) })
        return { err: e instanceof Error ? e.message : String(e) }
      }
    }),
    Initialize: unary(async () => {
      guard()
      try {
        await backend.initialize()
        return { err: null }
      } catch (e) {
        return { err: encodeError(e) }
      }
    }),
    Type: unary(async () => ({ type: TYPE_LOGICAL })),
    SpecialPaths: unary(async () => {
      const p = backend.specialPaths()
      return {
        paths: {
          root: p.root ?? [],
          unauthenticated: p.unauthenticated ?? [],
          local_storage: p.localStorage ?? [],
          seal_wrap_storage: p.sealWrapStorage ?? [],
          write_forwarded_storage: [],
          binary: [],
          limited: [],
          allow_snapshot_read: [],
        },
      }
    }),
    HandleRequest: unary(async (args: { request: WireRequest }) => {
      guard()
      try {
        const res = await backend.handleRequest(decodeRequest(args.request ?? {}))
        return { response: encodeResponse(res), err: null }
      } catch (e) {
        return { response: null, err: encodeError(e) }
      }
    }),
    // Vault decides create vs update from this; "not checked" keeps every write an update.
    HandleExistenceCheck: unary(async () => ({ check_found: false, exists: false, err: null })),
    Cleanup: unary(async () => {
      await backend.cleanup().catch(() => undefined)
      return {}
    }),
    InvalidateKey: unary(async () => ({})),
  }
}
