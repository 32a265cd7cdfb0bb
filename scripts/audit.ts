// `npm run audit -- …`: the operator's least-privilege audit of the instance role, before launch, with the
// deployer's credentials (the daemon's own CLI refuses static credentials by design, so it cannot host this).
import { runAudit } from "./audit/main.js";

process.exitCode = await runAudit(process.argv.slice(2), process.env, {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
});
