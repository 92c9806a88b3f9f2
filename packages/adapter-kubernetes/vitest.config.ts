import { defineProject } from "vitest/config"

// Tests run against a real control plane (etcd + kube-apiserver + kube-controller-manager from
// @gldt/testenv), one per test file, started in beforeAll; tests inside a file use their own
// namespace. The files mostly wait on the apiserver and the garbage collector, so they run side by
// side even on two cores (measured: 40 s instead of 75 s one after another).
export default defineProject({
  test: {
    name: "adapter-kubernetes",
    include: ["src/**/*.test.ts", "test/**/*.test.ts"],
    testTimeout: 120_000,
    hookTimeout: 40 * 60_000,
    maxWorkers: 4,
  },
})
