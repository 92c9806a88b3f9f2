import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    projects: ["packages/*", "apps/*", "tooling/gitlab-sim", "tooling/testenv", "tooling/fault-suite", "tooling/packaging"],
  },
})
