import { defineProject } from "vitest/config"

export default defineProject({ test: { name: "adapter-file", include: ["src/**/*.test.ts", "test/**/*.test.ts"] } })
