import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadConfig, DEFAULT_CONFIG_PATH } from "../../../src/config/load.js";
import { envNameOf, prefetchOf } from "../../../src/config/schema.js";
import { ConfigError, ExitCode } from "../../../src/errors/fatal.js";

const valid = {
  queueUrl: "https://sqs.eu-west-1.amazonaws.com/123456789012/doc-events",
  sourceBucket: "cloudboxio-lab-source-123456789012",
  outputBucket: "cloudboxio-lab-output-123456789012",
};

function files(map: Record<string, unknown>) {
  return (path: string): string => {
    if (!(path in map)) throw Object.assign(new Error(`ENOENT: ${path}`), { code: "ENOENT" });
    const v = map[path];
    return typeof v === "string" ? v : JSON.stringify(v);
  };
}

function problemsOf(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error("expected a ConfigError");
}

describe("loadConfig", () => {
  it("applies defaults to a minimal file", () => {
    const config = loadConfig({ configPath: "/c.json", env: {}, readFile: files({ "/c.json": valid }) });
    expect(config).toMatchObject({
      ...valid,
      outputPrefix: "",
      expectedRoleName: "EC2DocumentProcessorRole",
      processor: ["metadata"],
      concurrency: 4,
      visibilityTimeoutSeconds: 60,
      logLevel: "info",
    });
    expect(config.expectedAccountId).toBeUndefined();
    expect(Object.isFrozen(config)).toBe(true);
  });

  it("reads the path from DOC_PROCESSOR_CONFIG, then the default path", () => {
    const env = { DOC_PROCESSOR_CONFIG: "/from-env.json" };
    expect(loadConfig({ env, readFile: files({ "/from-env.json": valid }) }).queueUrl).toBe(valid.queueUrl);
    expect(loadConfig({ env: {}, readFile: files({ [DEFAULT_CONFIG_PATH]: valid }) }).sourceBucket).toBe(valid.sourceBucket);
    // --config wins over the variable
    const both = loadConfig({
      configPath: "/flag.json",
      env,
      readFile: files({ "/flag.json": { ...valid, concurrency: 2 }, "/from-env.json": valid }),
    });
    expect(both.concurrency).toBe(2);
  });

  it("lets DOC_PROCESSOR_* variables override the file, typed by the schema", () => {
    const config = loadConfig({
      configPath: "/c.json",
      env: {
        DOC_PROCESSOR_CONCURRENCY: "8",
        DOC_PROCESSOR_PROCESSOR: "metadata, ./my-proc.js",
        DOC_PROCESSOR_EXPECTED_ACCOUNT_ID: "123456789012",
        DOC_PROCESSOR_OUTPUT_PREFIX: "", // empty means unset
      },
      readFile: files({ "/c.json": { ...valid, outputPrefix: "out/" } }),
    });
    expect(config.concurrency).toBe(8);
    expect(config.processor).toEqual(["metadata", "./my-proc.js"]);
    expect(config.expectedAccountId).toBe("123456789012");
    expect(config.outputPrefix).toBe("out/");
  });

  it("works from the environment alone when the default file is absent", () => {
    const config = loadConfig({
      env: {
        DOC_PROCESSOR_QUEUE_URL: valid.queueUrl,
        DOC_PROCESSOR_SOURCE_BUCKET: valid.sourceBucket,
        DOC_PROCESSOR_OUTPUT_BUCKET: valid.outputBucket,
      },
      readFile: files({}),
    });
    expect(config.outputBucket).toBe(valid.outputBucket);
  });

  it("reports every problem at once: unknown key, missing queueUrl, source == output", () => {
    const err = problemsOf(() =>
      loadConfig({
        configPath: "/bad.json",
        env: {},
        readFile: files({ "/bad.json": { sourceBucket: "same-bucket", outputBucket: "same-bucket", concurency: 3 } }),
      }),
    );
    expect(err.exitCode).toBe(ExitCode.config);
    const keys = err.problems.map((p) => p.key);
    expect(keys).toEqual(expect.arrayContaining(["concurency", "queueUrl", "outputBucket"]));
    expect(err.message).toContain("did you mean concurrency?");
    expect(err.message).toMatch(/queueUrl: is required/);
    expect(err.message).toMatch(/outputBucket: must differ from sourceBucket/);
    expect(err.message).toContain('"same-bucket"');
  });

  it("names the key and the bad value for type and range errors", () => {
    const err = problemsOf(() =>
      loadConfig({
        configPath: "/c.json",
        env: { DOC_PROCESSOR_CONCURRENCY: "lots" },
        readFile: files({
          "/c.json": { ...valid, sourceBucket: "arn:aws:s3:::x", visibilityTimeoutSeconds: 5, logLevel: "loud" },
        }),
      }),
    );
    const byKey = Object.fromEntries(err.problems.map((p) => [p.key, p]));
    expect(byKey["concurrency"]?.value).toBe("lots");
    expect(byKey["sourceBucket"]?.message).toMatch(/bucket name/);
    expect(byKey["visibilityTimeoutSeconds"]?.value).toBe(5);
    expect(byKey["logLevel"]?.value).toBe("loud");
  });

  it("refuses unknown DOC_PROCESSOR_ variables, suggesting the right one", () => {
    const err = problemsOf(() =>
      loadConfig({ configPath: "/c.json", env: { DOC_PROCESSOR_QUEUE_ULR: "x" }, readFile: files({ "/c.json": valid }) }),
    );
    expect(err.problems[0]?.key).toBe("DOC_PROCESSOR_QUEUE_ULR");
    expect(err.message).toContain("did you mean DOC_PROCESSOR_QUEUE_URL?");
  });

  it("reports a non-object file", () => {
    expect(
      problemsOf(() => loadConfig({ configPath: "/c.json", env: {}, readFile: files({ "/c.json": "[1]" }) })).message,
    ).toMatch(/\/c.json must hold a JSON object of settings .*, not an array/);
  });
  it("refuses static credentials put in the config file as unknown keys", () => {
    const err = problemsOf(() =>
      loadConfig({
        configPath: "/c.json",
        env: {},
        readFile: files({ "/c.json": { ...valid, accessKeyId: "AKIAEXAMPLE", secretAccessKey: "x" } }),
      }),
    );
    expect(err.problems.map((p) => p.key)).toEqual(expect.arrayContaining(["accessKeyId", "secretAccessKey"]));
    expect(err.message).toMatch(/credentials come only from the instance profile/);
  });

  it("requires the processing cap to cover the visibility timeout", () => {
    const err = problemsOf(() =>
      loadConfig({
        configPath: "/c.json",
        env: {},
        readFile: files({ "/c.json": { ...valid, visibilityTimeoutSeconds: 600, maxProcessingSeconds: 120 } }),
      }),
    );
    expect(err.problems.map((p) => p.key)).toEqual(["maxProcessingSeconds"]);
  });

  it("requires a configured processor's own time limit to end a document before the processing cap does", () => {
    const load = (settings: Record<string, unknown>, env: Record<string, string> = {}) =>
      loadConfig({ configPath: "/c.json", env, readFile: files({ "/c.json": { ...valid, ...settings } }) });
    // The defaults fit (120 s and 600 s against 900 s), with both processors.
    expect(load({ processor: ["metadata", "text", "ocr"] }).maxProcessingSeconds).toBe(900);
    // A cap below the OCR default: the cap would abort every long scan and retry it until the DLQ.
    const ocr = problemsOf(() => load({ processor: ["metadata", "ocr"], maxProcessingSeconds: 300 }));
    expect(ocr.problems).toEqual([expect.objectContaining({ key: "ocrTimeoutSeconds", value: 600 })]);
    expect(ocr.message).toMatch(/ocrTimeoutSeconds: must be below maxProcessingSeconds \(300\) while the `ocr` processor runs/);
    // Equal is too late as well; the override comes from the environment like any other key.
    const text = problemsOf(() => load({ processor: "text" }, { DOC_PROCESSOR_EXTRACTION_TIMEOUT_SECONDS: "900" }));
    expect(text.problems.map((p) => [p.key, p.value])).toEqual([["extractionTimeoutSeconds", 900]]);
    // A processor that is not configured does not constrain anything.
    expect(load({ processor: "metadata", maxProcessingSeconds: 60, ocrTimeoutSeconds: 3_600 }).ocrTimeoutSeconds).toBe(3_600);
  });
});

describe("loadConfig: a config file that exists but cannot be used (each its own message, exit 78)", () => {
  const failing = (code: string, message = code) => () => {
    throw Object.assign(new Error(`${code}: ${message}`), { code });
  };
  const load = (readFile: (path: string) => string, options: { configPath?: string; env?: Record<string, string> } = {}) =>
    problemsOf(() => loadConfig({ configPath: options.configPath, env: options.env ?? {}, readFile }));
  const envOnly = {
    DOC_PROCESSOR_QUEUE_URL: valid.queueUrl,
    DOC_PROCESSOR_SOURCE_BUCKET: valid.sourceBucket,
    DOC_PROCESSOR_OUTPUT_BUCKET: valid.outputBucket,
  };

  it.each([
    ["unreadable (EACCES)", failing("EACCES", "permission denied"), /\/c.json exists but this user may not read it \(EACCES\)\. Fix: .*chmod 0640 \/c.json/],
    ["a directory (EISDIR)", failing("EISDIR", "illegal operation on a directory"), /\/c.json is a directory, not a file \(given by --config\)\. Fix: give the JSON file itself, for example \/c.json\/config.json/],
    ["not valid JSON", files({ "/c.json": '{"queueUrl": "x",}' }), /\/c.json is not valid JSON \(.*\)\. Fix: correct the syntax there/],
    ["empty", files({ "/c.json": " \n" }), /\/c.json is empty\. Fix: /],
    ["missing, given explicitly", files({}), /\/c.json does not exist \(given by --config\)\. Fix: create it, or correct the path/],
    ["below a file (ENOTDIR)", failing("ENOTDIR"), /a part of this path is a file, not a directory/],
    ["unreadable for another reason", failing("EIO", "i/o error"), /cannot read \/c.json: EIO \(EIO: i\/o error\)/],
  ])("%s: says what is wrong with which path, and never 'not found; environment only'", (_case, readFile, expected) => {
    const err = load(readFile, { configPath: "/c.json" });
    expect(err.exitCode).toBe(ExitCode.config);
    expect(err.message).toMatch(expected);
    expect(err.message).toContain("invalid configuration (/c.json)");
    expect(err.message).not.toContain("not found");
    expect(err.message).not.toContain("environment only");
    // The file's problem is the one problem: no "is required" for every setting it would have held.
    expect(err.problems.map((p) => p.key)).toEqual(["(file)"]);
  });

  it("the default path: unreadable or a directory is an error too, even when the environment has every setting", () => {
    const unreadable = load(failing("EACCES"), { env: envOnly });
    expect(unreadable.message).toContain(`${DEFAULT_CONFIG_PATH} exists but this user may not read it`);
    expect(unreadable.message).not.toContain("environment only");
    const directory = load(failing("EISDIR"), { env: envOnly });
    expect(directory.message).toContain(`${DEFAULT_CONFIG_PATH} is a directory, not a file (the default path; --config or DOC_PROCESSOR_CONFIG choose another)`);
    expect(load(files({ [DEFAULT_CONFIG_PATH]: "{oops" }), { env: envOnly }).message).toContain(`${DEFAULT_CONFIG_PATH} is not valid JSON`);
  });

  it("names DOC_PROCESSOR_CONFIG when the path came from it", () => {
    const err = load(files({}), { env: { DOC_PROCESSOR_CONFIG: "/etc/dp.json" } });
    expect(err.message).toContain("/etc/dp.json does not exist (given by DOC_PROCESSOR_CONFIG)");
  });

  it("only an absent default file means 'environment only'", () => {
    const err = load(files({}), { env: { DOC_PROCESSOR_SOURCE_BUCKET: valid.sourceBucket } });
    expect(err.message).toContain(`(${DEFAULT_CONFIG_PATH} not found; environment only)`);
    expect(err.message).toMatch(/queueUrl: is required/);
  });

  it("a file with a UTF-8 byte-order mark loads", () => {
    const config = loadConfig({ configPath: "/c.json", env: {}, readFile: () => `\uFEFF${JSON.stringify(valid)}` });
    expect(config.queueUrl).toBe(valid.queueUrl);
  });

  it("really: a directory given as the config file", () => {
    const dir = mkdtempSync(join(tmpdir(), "dp-config-"));
    const err = problemsOf(() => loadConfig({ configPath: dir, env: {} }));
    expect(err.message).toContain(`${dir} is a directory, not a file`);
    expect(err.message).not.toContain("environment only");
  });

});

describe("schema helpers", () => {
  it("maps keys to environment names", () => {
    expect(envNameOf("queueUrl")).toBe("DOC_PROCESSOR_QUEUE_URL");
    expect(envNameOf("maxInFlightBytes")).toBe("DOC_PROCESSOR_MAX_IN_FLIGHT_BYTES");
  });
});

describe("prefetchOf", () => {
  it("defaults to concurrency + 10 and keeps an explicit value, 0 included", () => {
    expect(prefetchOf({ concurrency: 4 })).toBe(14);
    expect(prefetchOf({ concurrency: 16 })).toBe(26);
    expect(prefetchOf({ concurrency: 4, prefetch: 0 })).toBe(0);
    expect(prefetchOf({ concurrency: 4, prefetch: 3 })).toBe(3);
  });
});

describe("transport and AWS_ENDPOINT_URL_S3", () => {
  const load = (env: Record<string, string>, extra: Record<string, unknown> = {}) =>
    loadConfig({ configPath: "/c.json", env, readFile: files({ "/c.json": { ...valid, ...extra } }) });

  it("defaults to the lean transport and takes sdk as the fallback; anything else is refused", () => {
    expect(load({}).transport).toBe("lean");
    expect(load({}, { transport: "sdk" }).transport).toBe("sdk");
    expect(load({ DOC_PROCESSOR_TRANSPORT: "sdk" }).transport).toBe("sdk");
    expect(problemsOf(() => load({}, { transport: "fetch" })).problems.map((p) => p.key)).toEqual(["transport"]);
  });

  it("accepts an https origin or plain http to loopback for S3, like the SQS endpoint", () => {
    expect(() => load({ AWS_ENDPOINT_URL_S3: "https://s3.eu-west-1.amazonaws.com" })).not.toThrow();
    expect(() => load({ AWS_ENDPOINT_URL_S3: "http://127.0.0.1:4566" })).not.toThrow();
    expect(() => load({ AWS_ENDPOINT_URL_S3: "" })).not.toThrow();
  });

  it.each([
    ["plain http off the machine", "http://s3.example.com", "must use https, or plain http only to a loopback address"],
    ["a path", "https://s3.example.com/bucket", "must be an origin only"],
    ["credentials in the URL", "https://user:pw@s3.example.com", "must not contain a user name or password"],
    ["not a URL", "s3 endpoint", "must be an endpoint URL"],
  ])("refuses %s, naming the variable and the fix", (_case, value, says) => {
    const problems = problemsOf(() => load({ AWS_ENDPOINT_URL_S3: value })).problems;
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatchObject({ key: "AWS_ENDPOINT_URL_S3", value });
    expect(problems[0]!.message).toContain(says);
    expect(problems[0]!.message).toContain("Fix: unset AWS_ENDPOINT_URL_S3");
  });
});
