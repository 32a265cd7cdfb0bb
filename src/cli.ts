#!/usr/bin/env node
// Executable entry: snapshot the environment once, run the command, exit with its code.
import { snapshotEnv } from "./config/env.js";
import { main, reportFatal } from "./main.js";
import { createLogger } from "./logging/logger.js";

const log = createLogger({ level: "info" });
process.on("unhandledRejection", (reason) => {
  process.exit(reportFatal(reason, log));
});
main(process.argv.slice(2), snapshotEnv(), log).then(
  (code) => process.exit(code),
  (err: unknown) => process.exit(reportFatal(err, log)),
);
