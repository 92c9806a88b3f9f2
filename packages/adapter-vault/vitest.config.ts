import { defineProject } from "vitest/config"

// Tests run against a real Vault dev server (@gldt/testenv), one per test file, started in beforeAll.
export default defineProject({
  test: {
    name: "adapter-vault",
    include: ["src/**/*.test.ts", "test/**/*.test.ts"],
    testTimeout: 120_000,
    hookTimeout: 40 * 60_000,
  },
})
