/**
 * A program a user of the published packages writes: check a spec, build a Job, run one reconcile
 * against GitLab with file State and a file sink, print the report. The packaging test typechecks it
 * (strict, NodeNext) and runs it in a project that has only the tarballs installed.
 * Environment: GITLAB_URL, GITLAB_TOKEN, GITLAB_CA_FILE, STATE_DIR, SINK_FILE.
 */
import { readFileSync } from "node:fs"
import { FileSink, FileState } from "@gldt/adapter-file"
import { Lifecycle, Spec } from "@gldt/core"
import { GitLabClient } from "@gldt/gitlab"
import { Effect, Layer, Redacted } from "effect"

const env = (name: string): string => {
  const value = process.env[name]
  if (value === undefined || value === "") throw new Error(`set ${name}`)
  return value
}

// The manifest users write most: no expiry.
const checked = Spec.validateSpec({
  url: env("GITLAB_URL"),
  projectID: "group/project",
  name: "consumer-pull",
  username: "consumer-pull",
  scopes: ["read_registry"],
  auth: { token: { secretRef: { name: "gitlab-api-token", key: "token" } } },
})
if (checked.spec === undefined) throw new Error(checked.problems.map(Spec.formatProblem).join("\n"))

const job: Lifecycle.Job = {
  key: "consumer-pull",
  spec: checked.spec,
  connection: {
    url: checked.spec.url,
    accessToken: Redacted.make(env("GITLAB_TOKEN")),
    caPem: readFileSync(env("GITLAB_CA_FILE"), "utf8"),
  },
  policy: { refreshIntervalMs: 24 * 3_600_000, graceMs: Spec.DEFAULT_GRACE_MS },
}

const services = Layer.mergeAll(FileState.layer({ dir: env("STATE_DIR") }), FileSink.layer({ path: env("SINK_FILE"), format: "env" }), GitLabClient.layer())

const report = await Effect.runPromise(Lifecycle.reconcile(job).pipe(Effect.provide(services)))
process.stdout.write(`${JSON.stringify(report)}\n`)
