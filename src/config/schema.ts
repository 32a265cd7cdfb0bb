/**
 * The one configuration schema: every key with its type, default and description. The README's configuration
 * reference is checked against it (test/unit/config/readme.test.ts), so a key cannot be added undocumented.
 */
import { isIPv4, isIPv6 } from "node:net";
import { z } from "zod";

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

// S3 bucket naming rules (general purpose buckets), enough to catch typos and ARNs pasted by mistake.
const bucketName = z
  .string()
  .regex(
    /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/,
    "must be a bucket name (3-63 lowercase letters, digits, '.' or '-'), not an ARN or s3:// URL",
  );

const int = (min: number, max: number) => z.number().int().min(min).max(max);

/** A literal loopback address: 127.0.0.0/8 or ::1 (no names, which could resolve elsewhere). */
export function isLoopbackAddress(host: string): boolean {
  if (isIPv4(host)) return host.startsWith("127.");
  // The URL parser writes an IPv6 address in its shortest form, so every spelling of ::1 compares equal.
  return isIPv6(host) && new URL(`http://[${host}]/`).hostname === "[::1]";
}

/** Tesseract language codes joined by `+`, as Tesseract writes them: `eng`, `eng+deu`, `chi_sim`. */
export const OCR_LANGUAGES_PATTERN = /^[a-z]{3}(?:_[a-z]+)?(?:\+[a-z]{3}(?:_[a-z]+)?)*$/;

/** Field descriptions double as the README's configuration reference. */
export const configSchema = z.strictObject({
  queueUrl: z
    .url({ protocol: /^https?$/, error: "must be the queue's URL (https://sqs.<region>.amazonaws.com/<account>/<name>)" })
    .describe(
      "URL of the SQS queue that receives the source bucket's ObjectCreated notifications, exactly as SQS reports it: `https://sqs.<region>.amazonaws.com/<account>/<name>` (or the FIPS `sqs-fips.<region>.amazonaws.com`, legacy `<region>.queue.amazonaws.com` and China `sqs.<region>.amazonaws.com.cn` forms), in `region` if that is set. Every SQS request goes to that endpoint, or to `AWS_ENDPOINT_URL_SQS` when it is set (local runs: the URL may then be on its origin); any other host is refused. Required.",
    ),
  sourceBucket: bucketName.describe("Bucket the documents are read from (s3:GetObject). Required."),
  outputBucket: bucketName.describe("Bucket the results are written to (s3:PutObject). Must differ from sourceBucket. Required."),
  outputPrefix: z
    .string()
    .max(512)
    .refine((s) => !s.startsWith("/"), "must not start with '/'")
    .default("")
    .describe("Prefix of every output key, e.g. `processed/`."),
  expectedRoleName: z
    .string()
    .regex(/^[\w+=,.@-]{1,64}$/, "must be an IAM role name (not an ARN)")
    .default("EC2DocumentProcessorRole")
    .describe("IAM role the instance profile must carry; the daemon refuses to start as anything else."),
  expectedAccountId: z
    .string()
    .regex(/^\d{12}$/, "must be a 12-digit AWS account id")
    .optional()
    .describe("Account the role must belong to. Default: the account in this instance's identity document."),
  region: z
    .string()
    .regex(/^[a-z]{2}(-[a-z]+)+-\d+$/, "must be a region name such as us-east-1")
    .optional()
    .describe("AWS region. Default: from the queue URL, else from IMDS (placement/region)."),
  processor: z
    .union([z.string().min(1), z.array(z.string().min(1)).min(1)])
    .default("metadata")
    .transform((v) => (typeof v === "string" ? [v] : v))
    .describe(
      "Processor name (`metadata`) or path of a processor module (absolute, or starting with `./`), or a list of them run in order.",
    ),
  concurrency: int(1, 64)
    .default(4)
    .describe("Documents processed at once. 4 suits a t2.micro: the work waits on S3 far more than on the CPU."),
  prefetch: int(0, 100)
    .optional()
    .describe(
      "Documents held beyond `concurrency`, waiting for a slot (kept invisible by the heartbeat), so that each ReceiveMessage asks for a full batch of 10 while about `concurrency` documents still wait. Default: concurrency + 10. 0 receives only what can start at once: best for documents that take minutes on a fleet, where a waiting message could have started on another instance.",
    ),
  maxInFlightBytes: int(1 * MiB, 16 * GiB)
    .default(256 * MiB)
    .describe(
      "Sum of the sizes of the documents held (running or waiting); one larger object still runs alone. It guards processors that keep documents in memory: the built-in ones stream (or cap what they buffer at `maxBufferedBytes`), so for large objects a budget of `concurrency` x object size lets them run side by side (see Performance).",
    ),
  maxObjectBytes: int(1, 5 * 1024 * GiB)
    .default(1 * GiB)
    .describe("Objects larger than this are rejected before download, with a logged reason."),
  visibilityTimeoutSeconds: int(10, 43_200)
    .default(60)
    .describe("Visibility timeout requested on receive; running documents are extended every half of it."),
  maxProcessingSeconds: int(10, 43_200)
    .default(900)
    .describe("Hard cap on one document's processing time (the heartbeat stops extending); then it is aborted and retried."),
  waitTimeSeconds: int(1, 20).default(20).describe("SQS long-poll wait."),
  drainTimeoutSeconds: int(0, 3_600)
    .default(30)
    .describe("On SIGTERM, how long in-flight documents may finish before the daemon exits anyway."),
  transport: z
    .enum(["lean", "sdk"])
    .default("lean")
    .describe(
      "Client of the per-document calls (ReceiveMessage, GetObject, PutObject, DeleteMessageBatch, visibility changes): `lean`, SigV4 over a keep-alive HTTP agent (a fraction of the SDK's CPU per document), or `sdk`, the AWS SDK v3 clients (the fallback). STS, `check`, the start-up probes and multipart uploads always use the SDK.",
    ),
  imdsTimeoutMs: int(100, 60_000).default(2_000).describe("Timeout of one IMDS request (the SDK default is 1000)."),
  imdsMaxRetries: int(0, 10).default(3).describe("Retries of IMDS credential requests (the SDK default is 0)."),
  instanceProfileWaitSeconds: int(0, 600)
    .default(30)
    .describe(
      "At start, how long to keep asking IMDS while it lists no role (the instance profile can lag a fresh launch) or " +
        "answers credentials that cannot be used (not JSON, a bad Expiration); after it the daemon exits 75 and " +
        "systemd restarts it.",
    ),
  logLevel: z
    .enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"])
    .default("info")
    .describe("Log level of the JSON logs on stdout."),
  metricsPort: int(0, 65_535)
    .optional()
    .describe(
      "Port of the Prometheus endpoint (`GET /metrics`) on metricsHost. Unset: no endpoint. 0 picks a free port, logged at start.",
    ),
  metricsHost: z
    .string()
    .refine(isLoopbackAddress, "must be a loopback address such as 127.0.0.1 or ::1: the metrics endpoint has no authentication")
    .default("127.0.0.1")
    .describe("Address the metrics endpoint listens on; loopback only (127.0.0.0/8 or ::1)."),
  maxBufferedBytes: int(1 * MiB, 1 * GiB)
    .default(32 * MiB)
    .describe(
      "`text` processor: largest PDF, DOCX or HTML document it parses (they are buffered: a larger one is refused from its size as soon as its first bytes show the type, with an error record), and largest text extracted from one. At most twice this is buffered at once.",
    ),
  extractionTimeoutSeconds: int(1, 43_200)
    .default(120)
    .describe(
      "`text` processor: time one document's parse (PDF, DOCX, HTML, in the extraction process) may take; past it the process is killed and the document gets an error record (TIMEOUT). Must be below maxProcessingSeconds (checked at start).",
    ),
  // At least 128 MiB: below about 90 MiB the extraction process cannot even load its parsers, so every document
  // would fail transiently and end in the DLQ. 256 MiB lets the largest PDF maxBufferedBytes allows through.
  extractionMemoryBytes: int(128 * MiB, 16 * GiB)
    .default(256 * MiB)
    .describe(
      "`text` processor: ceiling on the extraction process's own memory (its private resident set, parsers included: about 52 MiB idle; its V8 heap is capped 64 MiB below), sampled every 20 ms; past it the process is killed and the document gets an error record (MEMORY_LIMIT). Also the most a DOCX may declare uncompressed.",
    ),
  // The OCR processor's keys (opt-in: `ocr` in `processor`). Its own `maxBufferedBytes` is the shared key above.
  ocrLanguages: z
    .string()
    .regex(OCR_LANGUAGES_PATTERN, "must be Tesseract language codes joined by '+', such as eng or eng+deu")
    .default("eng")
    .describe(
      "`ocr` processor: Tesseract languages, joined by `+` (`eng`, `eng+deu`). Each needs its data package `@tesseract.js-data/<code>` installed next to the daemon (`eng` ships with it); a missing one stops the daemon at start-up with the package to install.",
    ),
  ocrMaxPages: int(1, 10_000)
    .default(50)
    .describe(
      "`ocr` processor: most pages recognised in one document (PDF pages without a text layer, TIFF pages). A document with more is refused before any is recognised (TOO_MANY_PAGES): one page is about 5 s of CPU.",
    ),
  ocrMaxPixels: int(1_000_000, 100_000_000)
    .default(12_000_000)
    .describe(
      "`ocr` processor: largest image, in pixels, read from its header: a larger one is refused (TOO_LARGE) before it is decoded; a larger PDF page is rendered below 300 dpi to fit. 12 million takes a 300-dpi A4 or letter page and a 12-megapixel photo; memory grows with it (see OCR).",
    ),
  ocrPageTimeoutSeconds: int(1, 3_600)
    .default(120)
    .describe("`ocr` processor: time one page's rendering and recognition may take; past it the OCR process is killed and the document gets an error record (TIMEOUT)."),
  ocrTimeoutSeconds: int(1, 43_200)
    .default(600)
    .describe(
      "`ocr` processor: time one document may take in the OCR process; past it the process is killed and the document gets an error record (TIMEOUT). Must be below maxProcessingSeconds (checked at start).",
    ),
  // 280 MiB: the daemon (~100 MiB), two 32 MiB buffers and this stay under the unit's MemoryHigh (448M).
  ocrMemoryBytes: int(128 * MiB, 16 * GiB)
    .default(280 * MiB)
    .describe(
      "`ocr` processor: ceiling on the OCR process's own memory (private resident set: about 75 MiB idle, up to about 260 MiB for scanned PDFs of dense 300-dpi pages), sampled every 20 ms; past it the process is killed and the document gets an error record (MEMORY_LIMIT).",
    ),
});

export type ConfigInput = z.input<typeof configSchema>;
export type Config = Readonly<z.output<typeof configSchema>>;

export const CONFIG_KEYS = Object.keys(configSchema.shape) as readonly (keyof Config)[];

/** `queueUrl` -> `DOC_PROCESSOR_QUEUE_URL` */
export function envNameOf(key: string): string {
  return `DOC_PROCESSOR_${key.replace(/([a-z0-9])([A-Z])/g, "$1_$2").toUpperCase()}`;
}

/**
 * Documents held beyond `concurrency`. A batch is asked for once it fits, so concurrency + 10 keeps about
 * `concurrency` documents waiting while the next receive is on its way: the workers do not run dry between batches.
 */
export function prefetchOf(config: Pick<Config, "prefetch" | "concurrency">): number {
  return config.prefetch ?? config.concurrency + 10;
}
