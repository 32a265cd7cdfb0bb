// Used vs granted and the policy mutants, on fabricated decision logs: each way the comparison must fail, fails.
import { describe, expect, it } from "vitest";
import {
  OVER_GRANTS,
  checkProbes,
  compareUsage,
  describeGrant,
  grantsOf,
  mutations,
  narrowResource,
  renderPolicy,
  shippedPlus,
  shippedPolicyDocument,
  type DecisionLike,
  type PolicyDocument,
} from "../../local/iam/index.js";

const SOURCE = "src-bucket";
const OUTPUT = "out-bucket";
const QUEUE = "arn:aws:sqs:us-east-1:123456789012:events";
const VARS = { SourceBucket: SOURCE, OutputBucket: OUTPUT, QueueArn: QUEUE };
const render = (doc: PolicyDocument): PolicyDocument => renderPolicy(doc, VARS);
const shipped = render(shippedPolicyDocument());
const probes = checkProbes(SOURCE);

const allow = (operation: string, action: string, resource: string): DecisionLike => ({ operation, action, resource, decision: "allow" });
const deny = (operation: string, action: string, resource: string): DecisionLike => ({ operation, action, resource, decision: "implicit-deny" });

/** What a daemon run and `check` leave in the log with the shipped policy. */
const typicalRun: DecisionLike[] = [
  allow("GetCallerIdentity", "sts:GetCallerIdentity", "*"),
  allow("ChangeMessageVisibility", "sqs:ChangeMessageVisibility", QUEUE),
  allow("DeleteMessage", "sqs:DeleteMessage", QUEUE),
  allow("ReceiveMessage", "sqs:ReceiveMessage", QUEUE),
  allow("GetObject", "s3:GetObject", `arn:aws:s3:::${SOURCE}/docs/a.txt`),
  allow("PutObject", "s3:PutObject", `arn:aws:s3:::${OUTPUT}/docs/a.txt.json`),
  allow("GetObject", "s3:GetObject", `arn:aws:s3:::${SOURCE}/docs/gone.txt`),
  deny("GetObject", "s3:ListBucket", `arn:aws:s3:::${SOURCE}`),
  deny("PutObject", "s3:PutObject", `arn:aws:s3:::${SOURCE}/.doc-processor-check/i-0123456789abcdef0.txt`),
  deny("GetAccessKeyInfo", "sts:GetAccessKeyInfo", "*"),
];

describe("compareUsage", () => {
  it("the shipped policy and a typical run: every grant used, nothing asked for outside it", () => {
    const report = compareUsage(shipped, typicalRun, probes);
    expect(report.grants.map(describeGrant)).toEqual([
      `s3:GetObject on arn:aws:s3:::${SOURCE}/* (statement ReadFromSource)`,
      `s3:PutObject on arn:aws:s3:::${OUTPUT}/* (statement WriteToOutput)`,
      `sqs:ReceiveMessage on ${QUEUE} (statement ConsumeNotifications)`,
      `sqs:DeleteMessage on ${QUEUE} (statement ConsumeNotifications)`,
      `sqs:ChangeMessageVisibility on ${QUEUE} (statement ConsumeNotifications)`,
    ]);
    expect(report).toMatchObject({ unused: [], ungranted: [], probesAllowed: [] });
    // Neither the identity call nor S3's own ListBucket check is a use.
    expect(report.used.some((p) => p.startsWith("sts:") || p.startsWith("s3:ListBucket"))).toBe(false);
  });

  it("a grant no request used is named, e.g. s3:ListBucket added to the policy", () => {
    const broader = render(shippedPlus([{ Sid: "List", Effect: "Allow", Action: "s3:ListBucket", Resource: "arn:aws:s3:::${SourceBucket}" }]));
    // Even when S3's missing-key check was allowed by it: that only changes 403 into 404.
    const run = typicalRun.map((d) => (d.action === "s3:ListBucket" ? { ...d, decision: "allow" } : d));
    expect(compareUsage(broader, run, probes).unused.map(describeGrant)).toEqual([`s3:ListBucket on arn:aws:s3:::${SOURCE} (statement List)`]);
  });

  it("the issue's over-grant: six unused grants", () => {
    const report = compareUsage(render(shippedPlus(OVER_GRANTS)), typicalRun, probes);
    expect(report.unused.map((g) => `${g.action} ${g.resource}`)).toEqual([
      `s3:DeleteObject arn:aws:s3:::${SOURCE}/*`,
      `s3:ListBucket arn:aws:s3:::${SOURCE}`,
      `s3:GetObject arn:aws:s3:::${OUTPUT}/*`,
      `s3:DeleteObject arn:aws:s3:::${OUTPUT}/*`,
      `sqs:SendMessage ${QUEUE}`,
      `sqs:PurgeQueue ${QUEUE}`,
    ]);
  });

  it("an action the daemon never took is unused (ReceiveMessage missing from the log)", () => {
    const run = typicalRun.filter((d) => d.action !== "sqs:ReceiveMessage");
    expect(compareUsage(shipped, run, probes).unused.map((g) => g.action)).toEqual(["sqs:ReceiveMessage"]);
  });

  it("a request outside the policy that is not one of check's probes is ungranted (allowed or denied)", () => {
    const run = [...typicalRun, deny("GetQueueAttributes", "sqs:GetQueueAttributes", QUEUE), deny("HeadObject", "s3:GetObject", `arn:aws:s3:::${OUTPUT}/x.json`)];
    expect(compareUsage(shipped, run, probes).ungranted).toEqual([`s3:GetObject arn:aws:s3:::${OUTPUT}/x.json`, `sqs:GetQueueAttributes ${QUEUE}`]);
  });

  it("a probe of the denied side that was allowed is reported, and never counted as use", () => {
    const broad = render(shippedPlus([{ Sid: "Broad", Effect: "Allow", Action: ["s3:PutObject", "sts:*"], Resource: "*" }]));
    const run = typicalRun.map((d) => (d.action === "s3:PutObject" && d.resource.includes(SOURCE)) || d.action === "sts:GetAccessKeyInfo" ? { ...d, decision: "allow" } : d);
    const report = compareUsage(broad, run, probes);
    expect(report.probesAllowed).toEqual([`s3:PutObject arn:aws:s3:::${SOURCE}/.doc-processor-check/i-0123456789abcdef0.txt`, "sts:GetAccessKeyInfo *"]);
    expect(report.unused.map(describeGrant)).toEqual(["sts:* on * (statement Broad)"]);
  });

  it("a NotAction or NotResource grant can never be shown to be needed", () => {
    const open: PolicyDocument = { Version: "2012-10-17", Statement: [{ Effect: "Allow", NotAction: "iam:*", Resource: "*" }] };
    expect(grantsOf(open)).toEqual([{ action: "NotAction iam:*", resource: "*" }]);
    expect(compareUsage(open, typicalRun, probes).unused).toHaveLength(1);
  });
});

describe("mutations", () => {
  it("the shipped policy: each of its five actions removed and each of its three resources narrowed", () => {
    const all = mutations(shippedPolicyDocument());
    expect(all.map((m) => m.name)).toEqual([
      "remove s3:GetObject from ReadFromSource",
      "narrow ReadFromSource from arn:aws:s3:::${SourceBucket}/* to arn:aws:s3:::${SourceBucket}/doc-processor-narrowed/*",
      "remove s3:PutObject from WriteToOutput",
      "narrow WriteToOutput from arn:aws:s3:::${OutputBucket}/* to arn:aws:s3:::${OutputBucket}/doc-processor-narrowed/*",
      "remove sqs:ReceiveMessage from ConsumeNotifications",
      "remove sqs:DeleteMessage from ConsumeNotifications",
      "remove sqs:ChangeMessageVisibility from ConsumeNotifications",
      "narrow ConsumeNotifications from ${QueueArn} to ${QueueArn}-doc-processor-narrowed",
    ]);
    for (const m of all) {
      // Every mutant is a valid policy that lost exactly what it names.
      const grants = grantsOf(render(m.policy)).map((g) => `${g.action} ${g.resource}`);
      const before = grantsOf(shipped).map((g) => `${g.action} ${g.resource}`);
      if (m.kind === "remove-action") expect(before.filter((g) => !grants.includes(g)).map((g) => g.split(" ")[0])).toEqual([m.target]);
      else expect(grants.filter((g) => !before.includes(g)).every((g) => g.includes("doc-processor-narrowed"))).toBe(true);
    }
    // Removing the only action of a statement removes the statement.
    expect(render(all[0]!.policy).Statement).toHaveLength(2);
  });

  it("narrowing: objects under an unused prefix, else another name; a policy cannot lose its last statement", () => {
    expect(narrowResource("arn:aws:s3:::b/*")).toBe("arn:aws:s3:::b/doc-processor-narrowed/*");
    expect(narrowResource("arn:aws:sqs:r:1:q")).toBe("arn:aws:sqs:r:1:q-doc-processor-narrowed");
    const single: PolicyDocument = { Version: "2012-10-17", Statement: [{ Effect: "Allow", Action: "s3:GetObject", Resource: "*" }] };
    expect(() => mutations(single)).toThrow(/without statements/);
  });
});
