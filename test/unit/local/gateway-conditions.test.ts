// S3 conditional writes as the gateway evaluates them (fauxqs ignores them), and the per-key lock that makes the
// evaluation and the write one step. A wrong answer here lets the stand-in store what S3 would refuse.
import { describe, expect, it } from "vitest";
import { evaluateWriteConditions, normalizeEtag, parseWriteConditions, type WriteConditions } from "../../local/gateway/conditional-write.js";
import { AwsError, renderError } from "../../local/gateway/errors.js";
import { KeyLock } from "../../local/gateway/key-lock.js";
import { classifyS3 } from "../../local/gateway/s3-operations.js";
import { parseQuery } from "../../local/gateway/sigv4.js";

const ETAG = '"9a0364b9e99bb480dd25e1f0284c8555"';
const parse = (headers: Record<string, string>) => parseWriteConditions(new Map(Object.entries(headers)));

function conditions(headers: Record<string, string>): WriteConditions {
  const parsed = parse(headers);
  if (parsed === undefined || parsed instanceof AwsError) throw new Error(`not conditions: ${String(parsed)}`);
  return parsed;
}

describe("parseWriteConditions", () => {
  it("no condition headers: an ordinary write", () => {
    expect(parse({ "content-type": "text/plain" })).toBeUndefined();
  });

  it("If-None-Match accepts only '*'; an entity tag is NotImplemented (501), never ignored", () => {
    expect(parse({ "if-none-match": "*" })).toEqual({ ifNoneMatch: true });
    expect(parse({ "if-none-match": " * " })).toEqual({ ifNoneMatch: true });
    const refused = parse({ "if-none-match": ETAG });
    expect(refused).toBeInstanceOf(AwsError);
    expect(refused).toMatchObject({ code: "NotImplemented", status: 501, details: { Header: "If-None-Match" } });
  });

  it("If-Match: quoted, unquoted, weak and listed tags; '*'; an empty value matches nothing", () => {
    expect(parse({ "if-match": ETAG })).toEqual({ ifNoneMatch: false, ifMatch: ["9a0364b9e99bb480dd25e1f0284c8555"] });
    expect(parse({ "if-match": 'W/"a", b' })).toEqual({ ifNoneMatch: false, ifMatch: ["a", "b"] });
    expect(parse({ "if-match": "*" })).toEqual({ ifNoneMatch: false, ifMatch: "*" });
    expect(parse({ "if-match": "" })).toEqual({ ifNoneMatch: false, ifMatch: [] });
    expect(normalizeEtag(' "abc-2" ')).toBe("abc-2");
  });
});

describe("evaluateWriteConditions (S3 User Guide, conditional write behavior)", () => {
  const existing = { eTag: ETAG };

  it("If-Match: the same ETag (quoted or not) writes; another is 412; no object is 404 NoSuchKey", () => {
    expect(evaluateWriteConditions(conditions({ "if-match": ETAG }), existing, "k")).toBeUndefined();
    expect(evaluateWriteConditions(conditions({ "if-match": ETAG.replace(/"/g, "") }), existing, "k")).toBeUndefined();
    expect(evaluateWriteConditions(conditions({ "if-match": '"00000000000000000000000000000000"' }), existing, "k")).toMatchObject({
      code: "PreconditionFailed",
      status: 412,
      details: { Condition: "If-Match" },
    });
    expect(evaluateWriteConditions(conditions({ "if-match": ETAG }), undefined, "dir/k.txt")).toMatchObject({
      code: "NoSuchKey",
      status: 404,
      details: { Key: "dir/k.txt" },
    });
    expect(evaluateWriteConditions(conditions({ "if-match": "" }), existing, "k")).toMatchObject({ status: 412 });
    expect(evaluateWriteConditions(conditions({ "if-match": "*" }), existing, "k")).toBeUndefined();
    expect(evaluateWriteConditions(conditions({ "if-match": "*" }), undefined, "k")).toMatchObject({ status: 404 });
  });

  it("If-None-Match: * writes only where there is no object", () => {
    expect(evaluateWriteConditions(conditions({ "if-none-match": "*" }), undefined, "k")).toBeUndefined();
    expect(evaluateWriteConditions(conditions({ "if-none-match": "*" }), existing, "k")).toMatchObject({
      code: "PreconditionFailed",
      status: 412,
      details: { Condition: "If-None-Match" },
    });
  });

  it("both headers can never both hold: If-Match is answered first", () => {
    const both = conditions({ "if-match": ETAG, "if-none-match": "*" });
    expect(evaluateWriteConditions(both, undefined, "k")).toMatchObject({ code: "NoSuchKey" });
    expect(evaluateWriteConditions(both, existing, "k")).toMatchObject({ details: { Condition: "If-None-Match" } });
  });

  it("the 412 renders as S3's XML, with the condition that failed", () => {
    const error = evaluateWriteConditions(conditions({ "if-match": '"x"' }), existing, "k")!;
    const rendered = renderError("s3", error, "REQ");
    expect(rendered.status).toBe(412);
    expect(rendered.body).toContain(
      "<Error><Code>PreconditionFailed</Code><Message>At least one of the pre-conditions you specified did not hold</Message>" +
        "<Condition>If-Match</Condition><RequestId>REQ</RequestId>",
    );
  });
});

describe("IAM for conditional writes", () => {
  const B = "bucket";
  const classify = (method: string, url: string, headers: Record<string, string>) => {
    const q = url.indexOf("?");
    return classifyS3({
      method,
      rawPath: q === -1 ? url : url.slice(0, q),
      query: parseQuery(q === -1 ? "" : url.slice(q + 1)),
      headers: new Map(Object.entries(headers)),
    });
  };

  it("If-Match also needs s3:GetObject on the target (it reads the ETag); If-None-Match needs only s3:PutObject", () => {
    const target = `arn:aws:s3:::${B}/k`;
    expect(classify("PUT", `/${B}/k`, { "if-match": ETAG }).checks).toEqual([
      { action: "s3:PutObject", resource: target },
      { action: "s3:GetObject", resource: target },
    ]);
    expect(classify("PUT", `/${B}/k`, { "if-none-match": "*" }).checks).toEqual([{ action: "s3:PutObject", resource: target }]);
    expect(classify("POST", `/${B}/k?uploadId=u`, { "if-match": ETAG }).checks.map((c) => c.action)).toEqual(["s3:PutObject", "s3:GetObject"]);
    expect(classify("PUT", `/${B}/k`, { "if-match": ETAG, "x-amz-copy-source": "src/a" }).checks).toEqual([
      { action: "s3:GetObject", resource: "arn:aws:s3:::src/a" },
      { action: "s3:PutObject", resource: target },
      { action: "s3:GetObject", resource: target },
    ]);
    // UploadPart takes no condition; a copy's source condition is not a write condition.
    expect(classify("PUT", `/${B}/k?partNumber=1&uploadId=u`, { "if-match": ETAG }).checks.map((c) => c.action)).toEqual(["s3:PutObject"]);
    expect(classify("PUT", `/${B}/k`, { "x-amz-copy-source": "src/a", "x-amz-copy-source-if-match": ETAG }).checks).toHaveLength(2);
  });
});

describe("KeyLock", () => {
  const tick = () => new Promise((resolve) => setImmediate(resolve));

  it("runs tasks for one key one at a time, in order, and tasks for other keys alongside", async () => {
    const lock = new KeyLock();
    const events: string[] = [];
    let releaseFirst!: () => void;
    const first = lock.run("b/k", async () => {
      events.push("first start");
      await new Promise<void>((resolve) => (releaseFirst = resolve));
      events.push("first end");
      return 1;
    });
    const second = lock.run("b/k", async () => {
      events.push("second");
      return 2;
    });
    const other = lock.run("b/other", async () => {
      events.push("other");
      return 3;
    });
    await tick();
    expect(events).toEqual(["first start", "other"]);
    expect(lock.size).toBe(1);
    releaseFirst();
    expect(await Promise.all([first, second, other])).toEqual([1, 2, 3]);
    expect(events).toEqual(["first start", "other", "first end", "second"]);
    expect(lock.size).toBe(0);
  });

  it("a task that throws releases the key for the next one", async () => {
    const lock = new KeyLock();
    const failed = lock.run("k", () => Promise.reject(new Error("boom")));
    const next = lock.run("k", () => Promise.resolve("ran"));
    await expect(failed).rejects.toThrow("boom");
    expect(await next).toBe("ran");
    expect(lock.size).toBe(0);
  });
});
