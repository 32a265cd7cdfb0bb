// Tests that need a system tool fail, never skip, when it is missing, and say what to install.
import { accessSync, constants } from "node:fs";

export function requireTool(path: string, install: string): string {
  try {
    accessSync(path, constants.X_OK);
    return path;
  } catch {
    throw new Error(`${path} is required by this test and is missing: install it with \`${install}\` (.ci/run does this)`);
  }
}
