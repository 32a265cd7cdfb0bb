// The baselines' job as a daemon processor, loaded by path (plain JavaScript: the daemon imports it untranspiled):
// sha256 over the stream and a small JSON record, nothing else (no type sniffing, no text statistics). The bench runs
// the daemon with it as well as with `metadata`, so the table separates what the framework costs from what the
// built-in processor does.
import { createHash } from "node:crypto";

export default {
  name: "bench-sha256",
  version: "1.0.0",
  outputSuffixes: [".json"],
  async process({ input, source }) {
    const hash = createHash("sha256");
    let bytes = 0;
    for await (const chunk of input) {
      hash.update(chunk);
      bytes += chunk.length;
    }
    const record = { source: { bucket: source.bucket, key: source.key }, bytes, sha256: hash.digest("hex") };
    return [{ suffix: ".json", body: JSON.stringify(record), contentType: "application/json" }];
  },
};
