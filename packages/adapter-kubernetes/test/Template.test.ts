/** The template subset and target validation: pure, no cluster. */
import { assert, describe, it } from "@effect/vitest"
import { compileTarget, createdByLabel, heldTokenId, planWrite, type Target } from "../src/Target.ts"
import { compileTemplate, TemplateError } from "../src/Template.ts"
import { goByteMapString, secretDataHash } from "../src/internal/hash.ts"
import { DOCKERCONFIG } from "./fixtures/templates.ts"

const values = { username: "gitlab+deploy-token-7", token: "gldt-AbC_123-xyz" }

const render = (src: string) => compileTemplate(src).render(values)
const rejects = (src: string, pattern: RegExp) => {
  let error: unknown
  try {
    compileTemplate(src)
  } catch (e) {
    error = e
  }
  assert.instanceOf(error, TemplateError, `${src} should be rejected`)
  assert.match((error as Error).message, pattern)
}

describe("template subset", () => {
  it("renders fields, literals, printf, b64enc, pipes and parentheses", () => {
    assert.strictEqual(render("user={{ .username }} token={{.token}}"), `user=${values.username} token=${values.token}`)
    assert.strictEqual(render('{{ "lit" }}{{ `raw\\n` }}'), "litraw\\n")
    assert.strictEqual(render('{{ printf "%s:%s" .username .token }}'), `${values.username}:${values.token}`)
    const auth = Buffer.from(`${values.username}:${values.token}`).toString("base64")
    assert.strictEqual(render('{{ printf "%s:%s" .username .token | b64enc }}'), auth)
    assert.strictEqual(render('{{ b64enc (printf "%s:%s" .username .token) }}'), auth)
    assert.strictEqual(render("{{ .token | b64enc }}"), Buffer.from(values.token).toString("base64"))
    assert.strictEqual(render('{{ printf "100%% %v" .token }}'), `100% ${values.token}`)
    assert.strictEqual(render('{{ "a\\"b\\\\c\\td" }}'), 'a"b\\c\td')
  })

  it("applies the trim markers like Go", () => {
    assert.strictEqual(render("a  \n {{- .username -}} \n  b"), `a${values.username}b`)
    assert.strictEqual(render("a {{ .username }} b"), `a ${values.username} b`)
  })

  it("renders a dockerconfigjson that parses, with the registry auth of username:token", () => {
    const parsed = JSON.parse(render(DOCKERCONFIG)) as { auths: Record<string, { username: string; password: string; auth: string }> }
    const entry = parsed.auths["registry.example.com"]!
    assert.deepStrictEqual(entry, {
      username: values.username,
      password: values.token,
      auth: Buffer.from(`${values.username}:${values.token}`).toString("base64"),
    })
  })

  it("rejects everything outside the subset, naming it", () => {
    rejects("{{ .password }}", /unknown field \.password/)
    rejects("{{ . }}", /bare dot/)
    rejects("{{ .a.b }}", /nested fields/)
    rejects("{{ toJson .token }}", /unknown function "toJson"; supported: printf, b64enc/)
    rejects("{{ .token | upper }}", /unknown function "upper"/)
    rejects("{{ if .token }}x{{ end }}", /"if" is not supported/)
    rejects("{{ range .token }}{{ end }}", /"range" is not supported/)
    rejects("{{ $x := .token }}", /variables/)
    rejects("{{/* note */}}", /comments/)
    rejects("{{ 3 }}", /numbers/)
    rejects("{{ }}", /empty action/)
    rejects("{{ .token ", /unclosed action/)
    rejects('{{ "abc }}', /unterminated string/)
    rejects('{{ "\\x41" }}', /unsupported escape/)
    rejects('{{ printf "%d" .token }}', /printf verb %d/)
    rejects('{{ printf "%s:%s" .token }}', /2 verb\(s\) but gets 1/)
    rejects("{{ printf .token }}", /string literal as its format/)
    rejects("{{ b64enc .username .token }}", /exactly one argument, got 2/)
    rejects("{{ .token .username }}", /cannot take arguments/)
    rejects('{{ "x" | .token }}', /cannot receive a pipe/)
    rejects("{{ b64enc (.token }}", /unclosed "\("/)
    rejects('{{ printf "%s" b64enc .token }}', /wrap it in parentheses/)
  })
})

describe("target validation", () => {
  const base: Target = { name: "registry", creationPolicy: "Owner" }
  const problems = (t: unknown) => compileTarget(t as Target).problems

  it("accepts the plain target and the dockerconfigjson template", () => {
    assert.deepStrictEqual(problems(base), [])
    assert.deepStrictEqual(
      problems({ ...base, template: { type: "kubernetes.io/dockerconfigjson", engineVersion: "v2", data: { ".dockerconfigjson": DOCKERCONFIG } } }),
      [],
    )
  })

  it("names every field it refuses", () => {
    assert.match(problems({ ...base, name: "Not_A_Name" })[0]!, /^target\.name:/)
    assert.match(problems({ ...base, creationPolicy: "Sometimes" })[0]!, /^target\.creationPolicy: must be one of/)
    assert.match(problems({ ...base, creationPolicy: "Merge", deletionPolicy: "Delete" })[0]!, /^target\.deletionPolicy: Delete must not be used/)
    assert.match(problems({ ...base, template: { templateFrom: [{ configMap: { name: "x" } }] } })[0]!, /^target\.template\.templateFrom: is not supported/)
    assert.match(problems({ ...base, template: { engineVersion: "v1" } })[0]!, /^target\.template\.engineVersion: only v2/)
    assert.match(
      problems({ ...base, template: { data: { token: "{{ .token | sha256sum }}" } } })[0]!,
      /^target\.template\.data\["token"\]: unknown function "sha256sum"/,
    )
    assert.match(problems({ ...base, template: { data: { "bad key": "x" } } })[0]!, /^target\.template\.data\["bad key"\]: is not a valid Secret key/)
    assert.match(
      problems({ ...base, template: { type: "kubernetes.io/dockerconfigjson", data: { ".dockerconfigjson": "{{ .token }}" } } })[0]!,
      /^target\.template\.data\["\.dockerconfigjson"\]: does not render a docker config JSON/,
    )
    assert.match(problems({ ...base, template: { type: "kubernetes.io/dockerconfigjson" } })[0]!, /needs the key "\.dockerconfigjson"/)
    assert.match(problems({ ...base, template: { metadata: { labels: { "gldt.dev/token-id": "1" } } } })[0]!, /is reserved/)
    assert.match(problems({ ...base, template: { metadata: { finalizers: ["x"] } } })[0]!, /finalizers: is not supported/)
    assert.match(problems({ ...base, template: { type: "bootstrap.kubernetes.io/token" } })[0]!, /is not allowed/)
    assert.match(problems({ ...base, template: { mergePolicy: "Sometimes" } })[0]!, /mergePolicy: must be Replace or Merge/)
    assert.match(problems({ ...base, template: { unknown: 1 } })[0]!, /^target\.template\.unknown: is not supported/)
  })

  it("mergePolicy Merge keeps the generated keys beside the templated ones", () => {
    const t = compileTarget({ ...base, template: { mergePolicy: "Merge", data: { auth: '{{ printf "%s:%s" .username .token }}' } } }).target!
    assert.deepStrictEqual(Object.keys(t.render(values)).sort(), ["auth", "token", "username"])
    const replace = compileTarget({ ...base, template: { data: { auth: "{{ .token }}" } } }).target!
    assert.deepStrictEqual(Object.keys(replace.render(values)), ["auth"])
  })
})

describe("ESO-compatible hashes", () => {
  it("data-hash is SHA3-224 of Go's %+v of map[string][]byte (keys sorted)", () => {
    assert.strictEqual(goByteMapString({ b: Buffer.from("hi"), a: Buffer.from([1, 2]) }), "map[a:[1 2] b:[104 105]]")
    assert.strictEqual(goByteMapString({}), "map[]")
    // Reference values computed independently (Python hashlib.sha3_224 of the same strings).
    assert.strictEqual(secretDataHash({}), "74a974446e359fb3e6baff9bd0058950e6edd0f040888d9989b0a11b")
    const data = { username: Buffer.from("eso").toString("base64"), token: Buffer.from("t").toString("base64") }
    assert.strictEqual(secretDataHash(data), "475685a0c8e05a89941b93c48725ff55d4f1bf817418979fd07e6e40")
    assert.strictEqual(createdByLabel("default", "gitlab-deploy-token"), "6f7aef656550ae9ca5d7a6ab9ed4659546c7bf4374a4aff0181640f0")
  })

  it("a Secret whose data changed holds no known token", () => {
    const t = compileTarget({ name: "s", creationPolicy: "Orphan" }).target!
    const plan = planWrite(t, "ns", undefined, undefined, values, 42)
    assert.strictEqual(plan.op, "create")
    if (plan.op === "refuse") return
    assert.strictEqual(heldTokenId(plan.secret), 42)
    assert.strictEqual(heldTokenId({ ...plan.secret, data: { ...plan.secret.data, token: Buffer.from("other").toString("base64") } }), 0)
  })
})
