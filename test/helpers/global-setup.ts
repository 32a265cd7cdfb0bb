// Vitest globalSetup (the main process, before any test file): refuses to run the suite on another Node major than
// production's, and says in the log which Node ran it. Test workers are forked from this process's executable.
import { checkRuntime } from "./runtime.js";

export default function setup(): void {
  process.stdout.write(`runtime: ${checkRuntime()}\n`);
}
