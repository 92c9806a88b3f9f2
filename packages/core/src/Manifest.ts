/**
 * Reads the seed's manifests (already parsed from YAML): a `GitlabDeployToken` or a `ClusterGenerator`
 * of that kind, optionally with the `ExternalSecret` that references it.
 */
import { parseGoDuration } from "./GoDuration.ts"
import { type DeployTokenSpec, GENERATOR_API_VERSION, GENERATOR_KIND, type Problem, type ValidateOptions, validateSpec } from "./Spec.ts"

export const EXTERNAL_SECRET_API_VERSION = "external-secrets.io/v1"
export const DEFAULT_REFRESH_INTERVAL_MS = 3_600_000

export interface GeneratorManifest {
  readonly kind: "GitlabDeployToken" | "ClusterGenerator"
  readonly name: string
  readonly namespace: string | undefined
  readonly spec: DeployTokenSpec
}

export interface ConsumerManifest {
  readonly name: string
  readonly namespace: string | undefined
  /** 0 means: mint once, never refresh (ESO's `refreshInterval: 0s`). */
  readonly refreshIntervalMs: number
  readonly refreshPolicy: "Periodic" | "CreatedOnce" | "OnChange"
  readonly targetName: string
}

export interface ManifestSet {
  readonly generator: GeneratorManifest
  readonly consumer: ConsumerManifest | undefined
}

type Obj = Record<string, unknown>
const isObj = (u: unknown): u is Obj => typeof u === "object" && u !== null && !Array.isArray(u)

const metaName = (doc: Obj, where: string, problems: Problem[]): { name: string; namespace: string | undefined } | undefined => {
  const meta = doc.metadata
  if (!isObj(meta) || typeof meta.name !== "string" || meta.name.length === 0) {
    problems.push({ path: `${where}.metadata.name`, message: "is required" })
    return undefined
  }
  return { name: meta.name, namespace: typeof meta.namespace === "string" ? meta.namespace : undefined }
}

const readGenerator = (doc: Obj, where: string, problems: Problem[], options: ValidateOptions): GeneratorManifest | undefined => {
  const meta = metaName(doc, where, problems)
  let specInput: unknown = doc.spec
  if (doc.kind === "ClusterGenerator") {
    const spec = doc.spec
    if (!isObj(spec) || spec.kind !== GENERATOR_KIND) {
      problems.push({ path: `${where}.spec.kind`, message: `must be ${GENERATOR_KIND} for gldt` })
      return undefined
    }
    const generator = spec.generator
    if (!isObj(generator) || !isObj(generator.gitlabDeployTokenSpec)) {
      problems.push({
        path: `${where}.spec.generator.gitlabDeployTokenSpec`,
        message: "when kind is GitlabDeployToken, gitlabDeployTokenSpec must be set",
      })
      return undefined
    }
    specInput = generator.gitlabDeployTokenSpec
  }
  const before = problems.length
  const result = validateSpec(specInput, options)
  for (const p of result.problems) {
    const path = doc.kind === "ClusterGenerator" ? p.path.replace(/^spec/, "spec.generator.gitlabDeployTokenSpec") : p.path
    problems.push({ path: `${where === "" ? "" : `${where}.`}${path}`.replace(/^\./, ""), message: p.message })
  }
  if (result.spec === undefined || meta === undefined || problems.length > before) return undefined
  return { kind: doc.kind as GeneratorManifest["kind"], name: meta.name, namespace: meta.namespace, spec: result.spec }
}

const generatorRefs = (doc: Obj): Array<{ kind: unknown; name: unknown; apiVersion: unknown }> => {
  const spec = isObj(doc.spec) ? doc.spec : {}
  const dataFrom = Array.isArray(spec.dataFrom) ? spec.dataFrom : []
  return dataFrom
    .flatMap((d) => (isObj(d) && isObj(d.sourceRef) && isObj(d.sourceRef.generatorRef) ? [d.sourceRef.generatorRef as Obj] : []))
    .map((r) => ({ kind: r.kind, name: r.name, apiVersion: r.apiVersion }))
}

const readConsumer = (doc: Obj, where: string, generator: GeneratorManifest | undefined, problems: Problem[]): ConsumerManifest | undefined => {
  const meta = metaName(doc, where, problems)
  const spec = isObj(doc.spec) ? doc.spec : {}
  let refreshIntervalMs = DEFAULT_REFRESH_INTERVAL_MS
  if (spec.refreshInterval !== undefined) {
    const ms = typeof spec.refreshInterval === "string" ? parseGoDuration(spec.refreshInterval) : undefined
    if (ms === undefined) {
      problems.push({
        path: `${where}.spec.refreshInterval`,
        message: `"${String(spec.refreshInterval)}" is not a duration; write it like 1h or 30m (0s = never refresh)`,
      })
    } else refreshIntervalMs = ms
  }
  const policy = spec.refreshPolicy ?? "Periodic"
  if (policy !== "Periodic" && policy !== "CreatedOnce" && policy !== "OnChange") {
    problems.push({ path: `${where}.spec.refreshPolicy`, message: "must be Periodic, CreatedOnce or OnChange" })
  }
  const refs = generatorRefs(doc)
  if (refs.length === 0) {
    problems.push({ path: `${where}.spec.dataFrom`, message: "has no sourceRef.generatorRef; point it at the GitlabDeployToken" })
  }
  for (const [i, ref] of refs.entries()) {
    if (ref.apiVersion !== undefined && ref.apiVersion !== GENERATOR_API_VERSION) {
      problems.push({ path: `${where}.spec.dataFrom[${i}].sourceRef.generatorRef.apiVersion`, message: `must be ${GENERATOR_API_VERSION}` })
    }
    if (generator !== undefined && (ref.kind !== generator.kind || ref.name !== generator.name)) {
      problems.push({
        path: `${where}.spec.dataFrom[${i}].sourceRef.generatorRef`,
        message: `refers to ${String(ref.kind)}/${String(ref.name)}, but the file defines ${generator.kind}/${generator.name}`,
      })
    }
  }
  const target = isObj(spec.target) ? spec.target : {}
  if (meta === undefined) return undefined
  return {
    name: meta.name,
    namespace: meta.namespace,
    refreshIntervalMs,
    refreshPolicy: policy as ConsumerManifest["refreshPolicy"],
    targetName: typeof target.name === "string" && target.name !== "" ? target.name : meta.name,
  }
}

/** Picks the generator (and its ExternalSecret, if present) out of a list of YAML documents. */
export const readManifests = (
  docs: ReadonlyArray<unknown>,
  options: ValidateOptions = {},
): { readonly manifests: ManifestSet; readonly problems: readonly [] } | { readonly manifests: undefined; readonly problems: ReadonlyArray<Problem> } => {
  const problems: Problem[] = []
  const generators: Array<[number, Obj]> = []
  const consumers: Array<[number, Obj]> = []
  docs.forEach((doc, i) => {
    const where = `document ${i + 1}`
    if (doc === null || doc === undefined) return
    if (!isObj(doc)) {
      problems.push({ path: where, message: "is not a mapping; expected a Kubernetes object with apiVersion and kind" })
      return
    }
    if (doc.kind === GENERATOR_KIND || doc.kind === "ClusterGenerator") {
      if (doc.apiVersion !== GENERATOR_API_VERSION) {
        problems.push({ path: `${where}.apiVersion`, message: `must be ${GENERATOR_API_VERSION} for kind ${String(doc.kind)}` })
      }
      generators.push([i, doc])
    } else if (doc.kind === "ExternalSecret") {
      if (doc.apiVersion !== EXTERNAL_SECRET_API_VERSION) {
        problems.push({ path: `${where}.apiVersion`, message: `must be ${EXTERNAL_SECRET_API_VERSION} for kind ExternalSecret` })
      }
      consumers.push([i, doc])
    } else {
      problems.push({
        path: `${where}.kind`,
        message: `${JSON.stringify(doc.kind ?? null)} is not supported; expected GitlabDeployToken, ClusterGenerator or ExternalSecret`,
      })
    }
  })
  if (generators.length === 0) {
    problems.push({ path: "file", message: "contains no GitlabDeployToken (or ClusterGenerator of that kind)" })
  }
  if (generators.length > 1) {
    problems.push({ path: "file", message: `contains ${generators.length} generators; put one GitlabDeployToken per file` })
  }
  if (consumers.length > 1) {
    problems.push({ path: "file", message: `contains ${consumers.length} ExternalSecrets; put at most one per file` })
  }
  const [gi, gdoc] = generators[0] ?? [0, undefined]
  const generator = gdoc === undefined ? undefined : readGenerator(gdoc, `document ${gi + 1}`, problems, options)
  const [ci, cdoc] = consumers[0] ?? [0, undefined]
  const consumer = cdoc === undefined ? undefined : readConsumer(cdoc, `document ${ci + 1}`, generator, problems)
  if (problems.length > 0 || generator === undefined) return { manifests: undefined, problems }
  return { manifests: { generator, consumer }, problems: [] }
}
