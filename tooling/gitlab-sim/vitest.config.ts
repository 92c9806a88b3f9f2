import { defineProject } from "vitest/config"

export default defineProject({ test: { name: "gitlab-sim", include: ["src/**/*.test.ts", "test/**/*.test.ts"] } })
