import { defineProject } from "vitest/config"

// End-to-end tests spawn ./gldt and the standalone simulator; they need more time than unit tests.
export default defineProject({ test: { name: "cli", include: ["test/**/*.test.ts"], testTimeout: 300_000, hookTimeout: 120_000 } })
