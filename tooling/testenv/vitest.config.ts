import { defineProject } from "vitest/config"

// One real control plane per test file (started in beforeAll). A cold first run builds etcd and
// Kubernetes from Go modules (about half an hour on 2 cores), hence the long hook timeout.
export default defineProject({
  test: {
    name: "testenv",
    include: ["test/**/*.test.ts"],
    testTimeout: 180_000,
    hookTimeout: 40 * 60_000,
    fileParallelism: false,
  },
})
