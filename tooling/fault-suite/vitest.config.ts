import { defineProject } from "vitest/config"

export default defineProject({ test: { name: "fault-suite", include: ["test/**/*.test.ts"], testTimeout: 1_200_000 } })
