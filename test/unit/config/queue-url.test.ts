// queueUrl decides where the role's signed SQS requests go: only a real SQS queue URL (https, an SQS endpoint of its
// region, /<account>/<name>) or, when AWS_ENDPOINT_URL_SQS is set, a URL on exactly that origin is accepted.
import { describe, expect, it } from "vitest";
import { loadConfig } from "../../../src/config/load.js";
import { checkQueueUrl, queueLocationOf, sqsHostRegion } from "../../../src/config/queue-url.js";
import { ConfigError, ExitCode } from "../../../src/errors/fatal.js";

const ACCOUNT = "123456789012";
const LOCAL = "http://127.0.0.1:4566";

const check = (queueUrl: string, options: { region?: string; endpoint?: string } = {}) =>
  checkQueueUrl({ queueUrl, region: options.region, endpointOverride: options.endpoint });

describe("checkQueueUrl accepts SQS queue URLs", () => {
  it.each([
    [`https://sqs.us-east-1.amazonaws.com/${ACCOUNT}/doc-events`, "us-east-1", "https://sqs.us-east-1.amazonaws.com"],
    [`https://sqs.eu-west-1.amazonaws.com/${ACCOUNT}/Doc_Events-2`, "eu-west-1", "https://sqs.eu-west-1.amazonaws.com"],
    [`https://sqs-fips.us-gov-west-1.amazonaws.com/${ACCOUNT}/q`, "us-gov-west-1", "https://sqs-fips.us-gov-west-1.amazonaws.com"],
    [`https://sqs-fips.us-east-2.amazonaws.com/${ACCOUNT}/q`, "us-east-2", "https://sqs-fips.us-east-2.amazonaws.com"],
    [`https://us-west-2.queue.amazonaws.com/${ACCOUNT}/q`, "us-west-2", "https://us-west-2.queue.amazonaws.com"],
    [`https://sqs.cn-north-1.amazonaws.com.cn/${ACCOUNT}/q`, "cn-north-1", "https://sqs.cn-north-1.amazonaws.com.cn"],
    [`https://sqs.cn-northwest-1.amazonaws.com.cn/${ACCOUNT}/events.fifo`, "cn-northwest-1", "https://sqs.cn-northwest-1.amazonaws.com.cn"],
    [`https://sqs.ap-southeast-4.amazonaws.com/${ACCOUNT}/${"q".repeat(80)}`, "ap-southeast-4", "https://sqs.ap-southeast-4.amazonaws.com"],
    [`https://sqs.ap-southeast-4.amazonaws.com/${ACCOUNT}/${"q".repeat(75)}.fifo`, "ap-southeast-4", "https://sqs.ap-southeast-4.amazonaws.com"],
  ])("%s (region %s, requests to %s)", (url, region, endpoint) => {
    const r = check(url);
    expect(r).toEqual({ ok: true, queue: { url, endpoint, account: ACCOUNT, name: url.split("/").at(-1), region } });
  });

  it("accepts the configured region when it is the queue's", () => {
    expect(check(`https://sqs.eu-west-1.amazonaws.com/${ACCOUNT}/q`, { region: "eu-west-1" }).ok).toBe(true);
  });

  it("with AWS_ENDPOINT_URL_SQS: a URL on exactly that origin (loopback http allowed), and every request goes there", () => {
    const url = `${LOCAL}/${ACCOUNT}/doc-events`;
    expect(check(url, { endpoint: LOCAL })).toEqual({
      ok: true,
      queue: { url, endpoint: LOCAL, account: ACCOUNT, name: "doc-events", region: undefined },
    });
    expect(check(`http://[::1]:4566/${ACCOUNT}/q`, { endpoint: "http://[::1]:4566/" }).ok).toBe(true);
    // A real SQS URL is fine too, but its requests still go to the configured endpoint (a VPC endpoint, a stand-in).
    expect(check(`https://sqs.us-east-1.amazonaws.com/${ACCOUNT}/q`, { endpoint: "http://127.0.0.1:9/" })).toMatchObject({
      ok: true,
      queue: { endpoint: "http://127.0.0.1:9", region: "us-east-1" },
    });
    expect(
      check(`https://vpce-1a2b.sqs.us-east-1.vpce.amazonaws.com/${ACCOUNT}/q`, {
        endpoint: "https://vpce-1a2b.sqs.us-east-1.vpce.amazonaws.com",
      }),
    ).toMatchObject({ ok: true, queue: { endpoint: "https://vpce-1a2b.sqs.us-east-1.vpce.amazonaws.com" } });
  });
});

describe("checkQueueUrl refuses anything that could send signed requests elsewhere", () => {
  const Q = `/${ACCOUNT}/q`;
  it.each([
    // [case, queueUrl, AWS_ENDPOINT_URL_SQS, what the message must say]
    ["userinfo hiding the host", `https://sqs.us-east-1.amazonaws.com@evil.example${Q}`, undefined, 'the host this URL names is "evil.example"'],
    ["userinfo with a password", `https://sqs.us-east-1.amazonaws.com:443@evil.example${Q}`, undefined, "user name or password"],
    ["userinfo on the stand-in's origin", `http://x@127.0.0.1:4566${Q}`, LOCAL, "user name or password"],
    ["a lookalike suffix", `https://sqs.us-east-1.amazonaws.com.evil.net${Q}`, undefined, "is not an SQS endpoint"],
    ["a lookalike prefix", `https://evilsqs.us-east-1.amazonaws.com${Q}`, undefined, "is not an SQS endpoint"],
    ["another amazonaws.com service", `https://s3.us-east-1.amazonaws.com${Q}`, undefined, "is not an SQS endpoint"],
    ["a trailing dot", `https://sqs.us-east-1.amazonaws.com.${Q}`, undefined, "drop the trailing dot"],
    ["a port", `https://sqs.us-east-1.amazonaws.com:8443${Q}`, undefined, "drop the port"],
    ["the default port written out", `https://sqs.us-east-1.amazonaws.com:443${Q}`, undefined, "must be written exactly as SQS reports it"],
    ["an IPv4 literal", `https://52.94.0.1${Q}`, undefined, "an IP address is not an SQS endpoint"],
    ["an IPv6 literal", `https://[2600:1f18::1]${Q}`, undefined, "an IP address is not an SQS endpoint"],
    ["a loopback literal without AWS_ENDPOINT_URL_SQS", `http://127.0.0.1:4566${Q}`, undefined, "a local stand-in takes AWS_ENDPOINT_URL_SQS set to its origin"],
    ["another loopback listener than AWS_ENDPOINT_URL_SQS", `http://127.0.0.1:4567${Q}`, LOCAL, "nor on AWS_ENDPOINT_URL_SQS (http://127.0.0.1:4566)"],
    ["the same port on another loopback address", `http://127.0.0.2:4566${Q}`, LOCAL, "is not an SQS endpoint"],
    ["https on the stand-in's host and port", `https://127.0.0.1:4566${Q}`, LOCAL, "is not an SQS endpoint"],
    ["uppercase host", `https://SQS.us-east-1.amazonaws.com${Q}`, undefined, `must be written exactly as SQS reports it. Fix: write https://sqs.us-east-1.amazonaws.com${Q}`],
    ["percent-encoded host", `https://sqs%2Eus-east-1.amazonaws.com${Q}`, undefined, "must be written exactly as SQS reports it"],
    ["percent-encoded path", `https://sqs.us-east-1.amazonaws.com/${ACCOUNT}/%71`, undefined, "invalid queue name"],
    ["percent-encoded slash in the name", `https://sqs.us-east-1.amazonaws.com/${ACCOUNT}/a%2Fb`, undefined, "invalid queue name"],
    ["backslashes", `https:\\\\sqs.us-east-1.amazonaws.com\\${ACCOUNT}\\q`, undefined, "must be written exactly as SQS reports it"],
    ["a query", `https://sqs.us-east-1.amazonaws.com${Q}?Action=SendMessage`, undefined, "no query, fragment"],
    ["an empty query", `https://sqs.us-east-1.amazonaws.com${Q}?`, undefined, "no query, fragment"],
    ["a fragment", `https://sqs.us-east-1.amazonaws.com${Q}#x`, undefined, "no query, fragment"],
    ["a newline (the URL parser would drop it)", `https://sqs.us-east-1.amazonaws.com${Q}\n`, undefined, "control or non-ASCII"],
    ["an internationalised lookalike host", `https://sqs.us-east-1.amazonaws.cοm${Q}`, undefined, "control or non-ASCII"],
    ["http to a real SQS host", `http://sqs.us-east-1.amazonaws.com${Q}`, undefined, "must use https"],
    ["http to a real SQS host while AWS_ENDPOINT_URL_SQS is set", `http://sqs.us-east-1.amazonaws.com${Q}`, LOCAL, "must use https"],
    ["China's domain for a non-China region", `https://sqs.us-east-1.amazonaws.com.cn${Q}`, undefined, "is not an SQS endpoint"],
    ["a China region under amazonaws.com", `https://sqs.cn-north-1.amazonaws.com${Q}`, undefined, "is not an SQS endpoint"],
    ["the global legacy host", `https://queue.amazonaws.com${Q}`, undefined, "is not an SQS endpoint"],
    ["another scheme", `ftp://sqs.us-east-1.amazonaws.com${Q}`, undefined, "must use https"],
    ["not a URL", "doc-events", undefined, "must be the queue's URL"],
    ["no account", "https://sqs.us-east-1.amazonaws.com/doc-events", undefined, "/<12-digit account>/<queue name>"],
    ["an 11-digit account", "https://sqs.us-east-1.amazonaws.com/12345678901/q", undefined, "/<12-digit account>/<queue name>"],
    ["a trailing slash", `https://sqs.us-east-1.amazonaws.com${Q}/`, undefined, "/<12-digit account>/<queue name>"],
    ["a deeper path", `https://sqs.us-east-1.amazonaws.com${Q}/x`, undefined, "/<12-digit account>/<queue name>"],
    ["a dotted path", `https://sqs.us-east-1.amazonaws.com/${ACCOUNT}/../q`, undefined, "/<12-digit account>/<queue name>"],
    ["a name over 80 characters", `https://sqs.us-east-1.amazonaws.com/${ACCOUNT}/${"q".repeat(81)}`, undefined, "invalid queue name"],
    ["a FIFO name over 80 characters", `https://sqs.us-east-1.amazonaws.com/${ACCOUNT}/${"q".repeat(76)}.fifo`, undefined, "invalid queue name"],
    ["a name with a dot", `https://sqs.us-east-1.amazonaws.com/${ACCOUNT}/a.b`, undefined, "invalid queue name"],
  ])("%s: %j", (_case, url, endpoint, reason) => {
    const r = check(url, endpoint === undefined ? {} : { endpoint });
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.problems).toHaveLength(1);
    expect(r.problems[0]).toMatchObject({ key: "queueUrl", value: url });
    expect(r.problems[0]!.message).toContain(reason);
    expect(r.problems[0]!.message).toContain("Fix: ");
  });

  it("every refusal of a foreign host says what to use instead", () => {
    const r = check(`https://sqs.us-east-1.amazonaws.com.evil.net/${ACCOUNT}/q`);
    expect(!r.ok && r.problems[0]!.message).toContain("Fix: use the URL the SQS console or `aws sqs get-queue-url --queue-name <name>` shows");
  });

  it("a queue in another region than `region`: refused, naming both and the fix", () => {
    const r = check(`https://sqs.eu-west-1.amazonaws.com/${ACCOUNT}/q`, { region: "us-east-1" });
    expect(r.ok).toBe(false);
    expect(!r.ok && r.problems[0]!.message).toContain("is a queue in eu-west-1, but region is us-east-1");
    expect(!r.ok && r.problems[0]!.message).toContain("set region to eu-west-1, or leave it unset");
    // Even when AWS_ENDPOINT_URL_SQS names the very host, the region must match.
    const same = "https://sqs.eu-west-1.amazonaws.com";
    expect(check(`${same}/${ACCOUNT}/q`, { region: "us-east-1", endpoint: same }).ok).toBe(false);
  });

  it.each([
    ["http to a non-loopback host", "http://10.0.0.5:4566", "plain http only to a loopback address"],
    ["http to a name (it could resolve anywhere)", "http://localhost:4566", "plain http only to a loopback address"],
    ["userinfo", "https://sqs.us-east-1.amazonaws.com@evil.example", "user name or password"],
    ["a path", "http://127.0.0.1:4566/prefix", "origin only"],
    ["a query", "http://127.0.0.1:4566/?x=1", "query or fragment"],
    ["not a URL", "127.0.0.1:4566", "must be an endpoint URL"],
  ])("an AWS_ENDPOINT_URL_SQS with %s is refused", (_case, endpoint, reason) => {
    const r = check(`${LOCAL}/${ACCOUNT}/q`, { endpoint });
    expect(r.ok).toBe(false);
    expect(!r.ok && r.problems[0]).toMatchObject({ key: "AWS_ENDPOINT_URL_SQS", value: endpoint });
    expect(!r.ok && r.problems[0]!.message).toContain(reason);
    expect(!r.ok && r.problems[0]!.message).toContain(`Fix: unset AWS_ENDPOINT_URL_SQS on an instance`);
  });
});

describe("sqsHostRegion", () => {
  it("reads the region only from SQS hosts, China's only under amazonaws.com.cn", () => {
    expect(sqsHostRegion("sqs.us-east-1.amazonaws.com")).toBe("us-east-1");
    expect(sqsHostRegion("sqs.cn-north-1.amazonaws.com.cn")).toBe("cn-north-1");
    expect(sqsHostRegion("sqs.cn-north-1.amazonaws.com")).toBeUndefined();
    expect(sqsHostRegion("sqs.us-east-1.amazonaws.com.cn")).toBeUndefined();
    expect(sqsHostRegion("sqs.us-east-1.amazonaws.com.")).toBeUndefined();
    expect(sqsHostRegion("x.sqs.us-east-1.amazonaws.com")).toBeUndefined();
  });
});

describe("queueUrl in loadConfig (exit 78 at start)", () => {
  const base = { sourceBucket: "source-bucket", outputBucket: "output-bucket" };
  const load = (settings: Record<string, unknown>, env: Record<string, string> = {}) =>
    loadConfig({ configPath: "/c.json", env, readFile: () => JSON.stringify({ ...base, ...settings }) });

  it("refuses a queue URL on another host than AWS_ENDPOINT_URL_SQS, with the reason and the fix", () => {
    let error: unknown;
    try {
      load({ queueUrl: `http://127.0.0.1:4567/${ACCOUNT}/q` }, { AWS_ENDPOINT_URL_SQS: LOCAL });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const e = error as ConfigError;
    expect(e.exitCode).toBe(ExitCode.config);
    expect(e.message).toContain("queueUrl: host \"127.0.0.1:4567\" is not an SQS endpoint");
    expect(e.message).toContain("Fix: use http://127.0.0.1:4566/<12-digit account>/<queue name>");
  });

  it("reports the queue URL with the config's other problems, once", () => {
    let error: unknown;
    try {
      load({ queueUrl: `https://sqs.us-east-1.amazonaws.com@evil/${ACCOUNT}/q`, concurrency: 0 });
    } catch (err) {
      error = err;
    }
    expect((error as ConfigError).problems.map((p) => p.key).sort()).toEqual(["concurrency", "queueUrl"]);
  });

  it("does not repeat a queueUrl the schema already refused", () => {
    let error: unknown;
    try {
      load({ queueUrl: "not a url" });
    } catch (err) {
      error = err;
    }
    expect((error as ConfigError).problems.filter((p) => p.key === "queueUrl")).toHaveLength(1);
  });

  it("loads a stand-in URL when AWS_ENDPOINT_URL_SQS is that origin (an empty variable counts as unset)", () => {
    expect(load({ queueUrl: `${LOCAL}/${ACCOUNT}/q` }, { AWS_ENDPOINT_URL_SQS: `${LOCAL}/` }).queueUrl).toBe(`${LOCAL}/${ACCOUNT}/q`);
    expect(() => load({ queueUrl: `${LOCAL}/${ACCOUNT}/q` }, { AWS_ENDPOINT_URL_SQS: " " })).toThrow(ConfigError);
  });

  it("queueLocationOf gives the endpoint the SQS client is built with, and refuses what loadConfig would", () => {
    expect(queueLocationOf({ queueUrl: `https://sqs.us-east-1.amazonaws.com/${ACCOUNT}/q` }, {}).endpoint).toBe(
      "https://sqs.us-east-1.amazonaws.com",
    );
    expect(queueLocationOf({ queueUrl: `https://sqs.us-east-1.amazonaws.com/${ACCOUNT}/q` }, { AWS_ENDPOINT_URL_SQS: LOCAL }).endpoint).toBe(LOCAL);
    expect(() => queueLocationOf({ queueUrl: `http://127.0.0.1:1/${ACCOUNT}/q` }, {})).toThrow(ConfigError);
  });
});
