// Policy files for tests that must show a check failing: the shipped policy with extra statements, written to
// a temporary file so the stand-in loads it exactly as it loads scripts/iam/ (placeholders and all).
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { repoPath } from "./load.js";
import { mutations } from "./mutate.js";
import type { PolicyDocument, PolicyStatement } from "./types.js";
import { statementsOf } from "./validate.js";

export const SHIPPED_POLICY_FILE = repoPath("scripts", "iam", "DocumentProcessorS3Access.json");

/**
 * The over-grant of issue 13: with these, the role passed the former `doc-processor check` (11 of 11) and still passes
 * validate-role.sh 5 of 5, yet may list and delete in the source, read and delete in the output, and send to and purge the queue.
 */
export const OVER_GRANTS: readonly PolicyStatement[] = [
  { Sid: "ExtraSourceObjects", Effect: "Allow", Action: "s3:DeleteObject", Resource: "arn:aws:s3:::${SourceBucket}/*" },
  { Sid: "ExtraSourceBucket", Effect: "Allow", Action: "s3:ListBucket", Resource: "arn:aws:s3:::${SourceBucket}" },
  { Sid: "ExtraOutputObjects", Effect: "Allow", Action: ["s3:GetObject", "s3:DeleteObject"], Resource: "arn:aws:s3:::${OutputBucket}/*" },
  { Sid: "ExtraQueue", Effect: "Allow", Action: ["sqs:SendMessage", "sqs:PurgeQueue"], Resource: "${QueueArn}" },
];

/** The shipped policy document as written (placeholders unrendered). */
export function shippedPolicyDocument(): PolicyDocument {
  return JSON.parse(readFileSync(SHIPPED_POLICY_FILE, "utf8")) as PolicyDocument;
}

/** Writes `policy` (placeholders kept) to a new temporary file and returns its path. */
export function writePolicyFile(name: string, policy: PolicyDocument): string {
  const file = join(mkdtempSync(join(tmpdir(), "dp-policy-")), `${name}.json`);
  writeFileSync(file, `${JSON.stringify(policy, null, 2)}\n`);
  return file;
}

/** The shipped policy plus `extra` statements. */
export function shippedPlus(extra: readonly PolicyStatement[]): PolicyDocument {
  const shipped = shippedPolicyDocument();
  return { ...shipped, Statement: [...statementsOf(shipped), ...extra] };
}

/** The shipped policy without `action` (the policy-mutation test's mutant: a statement left empty is dropped). */
export function shippedWithout(action: string): PolicyDocument {
  const mutant = mutations(shippedPolicyDocument()).find((m) => m.kind === "remove-action" && m.target === action);
  if (mutant === undefined) throw new Error(`the shipped policy does not grant ${action}`);
  return mutant.policy;
}
