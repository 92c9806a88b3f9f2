import { defineProject } from "vitest/config"

// End-to-end tests start a real control plane, the standalone simulator and ./gldt-controller.
export default defineProject({ test: { name: "controller", include: ["test/**/*.test.ts"], testTimeout: 300_000, hookTimeout: 180_000 } })
