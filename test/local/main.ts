// `npm run local`: the main job, locally. Starts the stand-in (mock IMDS + policy-enforcing gateway + emulator),
// starts the built daemon against it as a child process (processors `metadata` and `text`), uploads sample documents
// as the uploader identity, shows progress, and prints a one-line JSON summary. --once: exit when every upload is
// processed; --docs N: add N generated documents. Without --once it keeps running (and keeps accepting uploads) until
// Ctrl-C. Success: every good document has `<key>.json`, `<key>.txt` and `<key>.text.json`, every broken one (the
// samples in BROKEN_SAMPLES) its `<key>.error.json` with the expected code, nothing failed, nothing denied.
// --ocr: processors `metadata` and `ocr` instead: the scanned samples (a PDF of a page image, a photo of a receipt)
// must come out as text with the words SCANNED_SAMPLES names, and `<key>.ocr.json` replaces `<key>.text.json`; the
// samples only `text` reads (plain text, Markdown, CSV, JSON, HTML, DOCX) get UNSUPPORTED_TYPE records.
import { GetObjectCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import { readdirSync, readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { documentLines, startDaemonProcess, type LogLine } from "./daemon-process.js";
import { startStandIn } from "./stand-in.js";

const SAMPLES = new URL("./samples/", import.meta.url);
/** Samples the text processor must refuse, with the code of their error record; every other sample is good. */
const TEXT_BROKEN_SAMPLES: Readonly<Record<string, string>> = {
  "broken-truncated.pdf": "CORRUPT",
  "pixel.png": "UNSUPPORTED_TYPE",
  "receipt photo.jpg": "UNSUPPORTED_TYPE",
};
/** The same for the ocr processor, which reads images and PDFs only. */
const OCR_BROKEN_SAMPLES: Readonly<Record<string, string>> = {
  "broken-truncated.pdf": "CORRUPT",
  "data.json": "UNSUPPORTED_TYPE",
  "letter.docx": "UNSUPPORTED_TYPE",
  "notes+plus.md": "UNSUPPORTED_TYPE",
  "page.html": "UNSUPPORTED_TYPE",
  "quarterly report.txt": "UNSUPPORTED_TYPE",
  "ünïcödé — naïve.csv": "UNSUPPORTED_TYPE",
  // Its IDAT chunk declares 13 bytes and holds 12: the header walk finds no IEND where it should be.
  "pixel.png": "CORRUPT",
};
/** With --ocr: words each scanned sample's text must contain (made by make-scanned-samples.ts). */
const SCANNED_SAMPLES: Readonly<Record<string, readonly string[]>> = {
  "scanned letter.pdf": ["Dear Ms Almeida", "dispatched", "Peter Lindqvist"],
  "receipt photo.jpg": ["CORNER BAKERY", "TOTAL EUR 9.00"],
};
/** Outcomes that finish a document (its message is deleted). */
const FINISHED = new Set(["done", "failed-permanently"]);

const { values } = parseArgs({
  options: {
    once: { type: "boolean", default: false },
    docs: { type: "string", default: "0" },
    concurrency: { type: "string", default: "4" },
    "timeout-seconds": { type: "string" },
    "metrics-port": { type: "string" },
    quiet: { type: "boolean", default: false },
    ocr: { type: "boolean", default: false },
  },
});
const BROKEN_SAMPLES = values.ocr ? OCR_BROKEN_SAMPLES : TEXT_BROKEN_SAMPLES;
const RECORD_SUFFIX = values.ocr ? ".ocr.json" : ".text.json";
const generated = Number(values.docs);
if (!Number.isInteger(generated) || generated < 0) {
  console.error(`--docs takes a whole number (got ${values.docs})`);
  process.exit(64);
}
const say = (text: string) => {
  if (!values.quiet) process.stderr.write(`${text}\n`);
};

function sampleDocuments(): { key: string; body: Buffer }[] {
  const docs = readdirSync(SAMPLES).map((name) => ({ key: `samples/${name}`, body: readFileSync(new URL(name, SAMPLES)) }));
  for (let i = 1; i <= generated; i++) {
    const words = Array.from({ length: 20 + (i % 50) }, (_, j) => `word${(i * 31 + j) % 997}`);
    docs.push({ key: `generated/doc-${String(i).padStart(5, "0")}.txt`, body: Buffer.from(`${words.join(" ")}\n`) });
  }
  return docs;
}

async function main(): Promise<number> {
  const started = Date.now();
  let denied = 0;
  const standIn = await startStandIn({
    logger: (entry) => {
      if (entry.decision !== "allow") denied++;
    },
  });
  say(`stand-in: IMDS ${standIn.urls.imds}, AWS gateway ${standIn.urls.gateway}`);
  say(`          role ${standIn.config.expectedRoleName} on ${standIn.instanceId()}, queue ${standIn.queue.url}`);

  // Resolved by the log stream once every uploaded key has a finishing line (set after the uploads are known).
  const done = new Set<string>();
  let wanted = new Set<string>();
  let markAllDone: () => void = () => {};
  const allDone = new Promise<void>((r) => (markAllDone = r));
  const checkAllDone = () => {
    if (wanted.size > 0 && [...wanted].every((k) => done.has(k))) markAllDone();
  };

  const daemon = startDaemonProcess({
    config: {
      ...standIn.config,
      processor: ["metadata", values.ocr ? "ocr" : "text"],
      concurrency: Number(values.concurrency),
      waitTimeSeconds: 2,
      drainTimeoutSeconds: 10,
      ...(values["metrics-port"] !== undefined && { metricsPort: Number(values["metrics-port"]) }),
    },
    env: standIn.env,
    onStderr: (text) => process.stderr.write(text),
    onLog: (line: LogLine) => {
      if (line.msg === "metrics endpoint listening") say(`metrics: ${String(line["url"])}`);
      if (line.msg === "document") {
        const outcome = String(line["outcome"]);
        if (FINISHED.has(outcome)) done.add(String(line["key"]));
        checkAllDone();
        const mark = outcome === "done" ? "✓" : outcome === "failed-permanently" ? "⊘" : "✗";
        const code = outcome === "done" ? "" : `: ${String(line["code"])}`;
        say(`  ${mark} ${String(line["key"])} (${outcome}${code}, ${String(line["durationMs"])} ms)`);
      } else if (line.level === "warn" || line.level === "error" || line.level === "fatal") {
        say(`  daemon ${line.level}: ${line.msg ?? ""}`);
      }
    },
  });

  let exitCode = 0;
  try {
    const ready = await daemon.waitForLog((l) => l.msg === "ready: consuming notifications", 60_000);
    const identity = daemon.logs.find((l) => typeof l.msg === "string" && l.msg.startsWith("identity verified"));
    say(`daemon ready (pid ${daemon.child.pid}) as ${typeof identity?.["roleArn"] === "string" ? identity["roleArn"] : "?"}; processors ${JSON.stringify(ready["processors"])}`);

    const docs = sampleDocuments();
    say(`uploading ${docs.length} documents as ${standIn.users.uploader.principal.arn}`);
    const s3 = standIn.clients.uploader.s3;
    for (let i = 0; i < docs.length; i += 8) {
      await Promise.all(
        docs.slice(i, i + 8).map(({ key, body }) =>
          s3.send(new PutObjectCommand({ Bucket: standIn.config.sourceBucket, Key: key, Body: body })),
        ),
      );
    }
    wanted = new Set(docs.map((d) => d.key));
    checkAllDone();

    if (!values.once) {
      say("running; upload more with the uploader keys, or press Ctrl-C to stop");
      await new Promise<void>((resolve) => {
        process.once("SIGINT", resolve);
        process.once("SIGTERM", resolve);
      });
    } else {
      const timeoutMs = Number(values["timeout-seconds"] ?? 60 + docs.length / 5) * 1_000;
      const finished = await Promise.race([
        allDone.then(() => true),
        daemon.exited.then(() => false),
        new Promise<boolean>((r) => setTimeout(() => r(false), timeoutMs).unref()),
      ]);
      if (!finished) {
        say(`not all documents were processed (daemon exit: ${daemon.child.exitCode ?? "running"}, timeout ${timeoutMs} ms)`);
        exitCode = 1;
      }
    }

    const result = await daemon.stop();
    const lines = documentLines(daemon.logs);
    const outcomeOf = new Map(lines.map((l) => [String(l["key"]), String(l["outcome"])]));
    const expectedCode = (key: string): string | undefined => BROKEN_SAMPLES[key.replace(/^samples\//, "")];
    const good = [...wanted].filter((k) => expectedCode(k) === undefined);
    const broken = [...wanted].filter((k) => expectedCode(k) !== undefined);
    const processed = good.filter((k) => outcomeOf.get(k) === "done").length;
    const refused = broken.filter((k) => outcomeOf.get(k) === "failed-permanently").length;
    const failed = lines.filter((l) => !FINISHED.has(String(l["outcome"])) && l["outcome"] !== "superseded").length;

    // Check the outputs as the admin identity: the role itself cannot read the output bucket.
    const read = async (key: string): Promise<string | undefined> => {
      try {
        const out = await standIn.clients.admin.s3.send(new GetObjectCommand({ Bucket: standIn.config.outputBucket, Key: key }));
        return await out.Body!.transformToString();
      } catch {
        return undefined; // counted as missing
      }
    };
    const recordOf = async (key: string): Promise<{ source?: { key?: string }; code?: string } | undefined> => {
      const body = await read(key);
      return body === undefined ? undefined : (JSON.parse(body) as { source?: { key?: string }; code?: string });
    };
    let outputs = 0;
    for (const key of good) {
      const [metadata, text, textRecord] = [await recordOf(`${key}.json`), await read(`${key}.txt`), await recordOf(`${key}${RECORD_SUFFIX}`)];
      const expectedWords = values.ocr ? (SCANNED_SAMPLES[key.replace(/^samples\//, "")] ?? []) : [];
      const missingWords = expectedWords.filter((w) => !(text ?? "").replace(/\s+/g, " ").includes(w));
      if (metadata?.source?.key === key && text !== undefined && textRecord?.source?.key === key && missingWords.length === 0) {
        outputs++;
        if (expectedWords.length > 0) say(`  ${key}: ${JSON.stringify(text.replace(/\s+/g, " ").trim().slice(0, 120))}`);
      } else if (missingWords.length > 0) say(`  ${key}: its text lacks ${JSON.stringify(missingWords)}: ${JSON.stringify(text)}`);
      else say(`  missing outputs for ${key}`);
    }
    let errorRecords = 0;
    for (const key of broken) {
      const record = await recordOf(`${key}.error.json`);
      if (record?.source?.key === key && record.code === expectedCode(key)) errorRecords++;
      else say(`  ${key}: expected an error record with code ${expectedCode(key)}, got ${JSON.stringify(record?.code)}`);
    }
    const summary = {
      uploaded: wanted.size,
      processed,
      outputs,
      refused,
      errorRecords,
      failed,
      denied,
      daemonExit: result.code ?? result.signal,
      gatewayRequests: standIn.counters().requests,
      seconds: Math.round((Date.now() - started) / 100) / 10,
    };
    const ok =
      processed === good.length &&
      outputs === good.length &&
      refused === broken.length &&
      errorRecords === broken.length &&
      failed === 0 &&
      denied === 0 &&
      result.code === 0;
    if (values.once && !ok) exitCode = 1;
    process.stdout.write(`${JSON.stringify(summary)}\n`);
  } catch (err) {
    daemon.kill();
    process.stderr.write(`npm run local: ${err instanceof Error ? err.message : String(err)}\n`);
    exitCode = 1;
  } finally {
    await standIn.close();
  }
  return exitCode;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`npm run local: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
