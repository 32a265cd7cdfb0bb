// `npm run test:systemd`: the unit under a real systemd in a container (root, systemd-nspawn, debootstrap; .ci/run).
// One file, one container, run serially; the first run builds the cached root (1-3 minutes).
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/systemd/**/*.test.ts"],
    globalSetup: ["test/helpers/global-setup.ts"],
    setupFiles: ["test/helpers/safe-env.ts"],
    fileParallelism: false,
    testTimeout: 120_000,
    // Building the root (debootstrap) plus the boot; every step inside has its own deadline.
    hookTimeout: 20 * 60_000,
    teardownTimeout: 60_000,
    pool: "forks",
    reporters: ["default"],
  },
});
