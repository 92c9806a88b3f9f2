import { defineProject } from "vitest/config"

// Packing, installing and running takes a while; the files share nothing, so they may run side by side.
export default defineProject({ test: { name: "packaging", include: ["test/**/*.test.ts"], testTimeout: 240_000, hookTimeout: 420_000 } })
