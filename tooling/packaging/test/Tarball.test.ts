/** The tarball check itself: a complete tarball passes, and each kind of missing piece is named. */
import { assert, describe, it } from "vitest"
import { type Tarball, tarballProblems } from "../src/Tarball.ts"

const complete = (): { manifest: Tarball["manifest"]; texts: Record<string, string> } => ({
  manifest: {
    name: "@gldt/example",
    version: "0.1.0",
    license: "Apache-2.0",
    repository: { url: "git+https://example.invalid/gldt.git" },
    engines: { node: ">=22.19" },
    publishConfig: { access: "public" },
    bin: { example: "./dist/main.js" },
    exports: {
      ".": { types: "./dist/index.d.ts", default: "./dist/index.js" },
      "./*": { types: "./dist/*.d.ts", default: "./dist/*.js" },
      "./internal/*": null,
    },
    dependencies: { "@gldt/core": "^0.1.0" },
  },
  texts: {
    "package.json": "{}",
    "README.md": "# example",
    LICENSE: "Apache License",
    "dist/index.js": 'export * from "./Thing.js"\n',
    "dist/index.d.ts": 'export * from "./Thing.ts";\n',
    "dist/Thing.js": "export const thing = 1\n",
    "dist/Thing.d.ts": "export declare const thing = 1;\n",
    "dist/main.js": '#!/usr/bin/env node\nimport { thing } from "./Thing.js"\n',
    "dist/main.d.ts": "export {};\n",
  },
})

const tarball = (t: ReturnType<typeof complete>): Tarball => ({ manifest: t.manifest, files: Object.keys(t.texts), read: (f) => t.texts[f]! })

describe("tarballProblems", () => {
  it("finds nothing wrong with a complete tarball", () => {
    assert.deepStrictEqual(tarballProblems(tarball(complete())), [])
  })

  it("names a missing bin", () => {
    const t = complete()
    delete t.texts["dist/main.js"]
    delete t.texts["dist/main.d.ts"]
    assert.include(tarballProblems(tarball(t)).join("\n"), "the bin example → dist/main.js is not in the tarball")
  })

  it("names a bin that is TypeScript or lacks its node line", () => {
    const ts = complete()
    ts.manifest = { ...ts.manifest, bin: { example: "./src/main.ts" } }
    ts.texts["src/main.ts"] = "#!/usr/bin/env node\n"
    assert.include(tarballProblems(tarball(ts)).join("\n"), "not compiled JS")
    const noShebang = complete()
    noShebang.texts["dist/main.js"] = 'import "./Thing.js"\n'
    assert.include(tarballProblems(tarball(noShebang)).join("\n"), "lacks a #!/usr/bin/env node line")
  })

  it("names a module another module imports, and the declarations of a module", () => {
    const t = complete()
    delete t.texts["dist/Thing.js"]
    const problems = tarballProblems(tarball(t)).join("\n")
    assert.include(problems, "dist/index.js imports ./Thing.js, which is not in the tarball")
    assert.include(problems, "the module declared by dist/Thing.d.ts, dist/Thing.js is not in the tarball")
  })

  it("names a missing export target, README or LICENSE", () => {
    const t = complete()
    delete t.texts["dist/index.js"]
    delete t.texts.LICENSE
    const problems = tarballProblems(tarball(t)).join("\n")
    assert.include(problems, "export . → dist/index.js is not in the tarball")
    assert.include(problems, "the required file LICENSE is not in the tarball")
  })

  it("refuses sources, tests, source maps, workspace ranges and an open internal/*", () => {
    const t = complete()
    t.texts["src/index.ts"] = ""
    t.texts["dist/index.js.map"] = ""
    t.manifest = { ...t.manifest, dependencies: { "@gldt/core": "workspace:^" }, exports: { ".": "./dist/index.js" } }
    const problems = tarballProblems(tarball(t)).join("\n")
    assert.include(problems, "ships src/index.ts")
    assert.include(problems, "ships dist/index.js.map")
    assert.include(problems, "dependencies.@gldt/core is still workspace:^")
    assert.include(problems, "does not close ./internal/*")
  })
})
