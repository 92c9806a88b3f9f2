import { defineProject } from "vitest/config"

// The end-to-end tests start a real Vault dev server and the GitLab simulator as processes.
export default defineProject({
  test: { name: "vault-plugin", include: ["src/**/*.test.ts", "test/**/*.test.ts"], testTimeout: 180_000, hookTimeout: 300_000 },
})
