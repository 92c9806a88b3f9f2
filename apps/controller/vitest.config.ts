import { defineProject } from "vitest/config"

// End-to-end tests start a real control plane, the standalone simulator and ./gldt-controller.
// Files run one after another: each brings its own control plane and controllers.
export default defineProject({
  test: {
    name: "controller",
    include: ["test/**/*.test.ts"],
    // Brings the bundle ./gldt-controller runs up to date once, before any test times a start.
    globalSetup: ["test/globalSetup.ts"],
    testTimeout: 300_000,
    hookTimeout: 600_000,
    fileParallelism: false,
  },
})
