import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // The systemd tests boot a container as root: `npm run test:systemd`, run by .ci/run after `npm test`.
    exclude: ["test/systemd/**", "**/node_modules/**"],
    globalSetup: ["test/helpers/global-setup.ts"],
    setupFiles: ["test/helpers/safe-env.ts"],
    testTimeout: 20_000,
    hookTimeout: 60_000,
    pool: "forks",
    reporters: ["default"],
    coverage: {
      provider: "v8",
      include: ["src/**/*.ts"],
      reporter: ["text-summary", "json-summary"],
      reportsDirectory: "coverage",
    },
  },
});
