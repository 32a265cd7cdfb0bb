// Mutants of a policy document for the policy-mutation test: each action removed from its statement in turn, and each
// resource narrowed in turn (objects under a prefix the daemon never uses, or another bucket or queue). Works on the
// document as written, placeholders and all, so a mutant can be saved and loaded like the shipped file. Pure.
import type { PolicyDocument, PolicyStatement } from "./types.js";
import { statementsOf } from "./validate.js";

export interface Mutation {
  /** e.g. "remove s3:GetObject from ReadFromSource". */
  name: string;
  kind: "remove-action" | "narrow-resource";
  /** The action removed or the resource narrowed, as written in the policy. */
  target: string;
  policy: PolicyDocument;
}

export const NARROWED_PREFIX = "doc-processor-narrowed";

const asList = (value: string | string[] | undefined): string[] => (value === undefined ? [] : Array.isArray(value) ? value : [value]);

/** `…/*` -> `…/doc-processor-narrowed/*` (same bucket, a prefix nobody writes); anything else -> another name. */
export function narrowResource(resource: string): string {
  if (resource === "*") return `arn:aws:s3:::${NARROWED_PREFIX}`;
  if (resource.endsWith("/*")) return `${resource.slice(0, -1)}${NARROWED_PREFIX}/*`;
  return `${resource}-${NARROWED_PREFIX}`;
}

function label(statement: PolicyStatement, index: number): string {
  return statement.Sid ?? `statement ${index + 1}`;
}

function withStatements(policy: PolicyDocument, statements: PolicyStatement[]): PolicyDocument {
  if (statements.length === 0) throw new Error("a mutant without statements is not a policy: give the role a second statement");
  return { ...policy, Statement: statements };
}

/** One mutant per action of every Allow statement and one per resource of it (Action and Resource lists only). */
export function mutations(policy: PolicyDocument): Mutation[] {
  const statements = statementsOf(policy);
  const result: Mutation[] = [];
  statements.forEach((statement, index) => {
    if (statement.Effect !== "Allow" || statement.Action === undefined || statement.Resource === undefined) return;
    const others = (replacement: PolicyStatement | undefined): PolicyStatement[] =>
      statements.flatMap((s, i) => (i !== index ? [s] : replacement ? [replacement] : []));
    const actions = asList(statement.Action);
    for (const action of actions) {
      const rest = actions.filter((a) => a !== action);
      result.push({
        name: `remove ${action} from ${label(statement, index)}`,
        kind: "remove-action",
        target: action,
        policy: withStatements(policy, others(rest.length === 0 ? undefined : { ...statement, Action: rest })),
      });
    }
    const resources = asList(statement.Resource);
    for (const resource of resources) {
      const narrowed = resources.map((r) => (r === resource ? narrowResource(r) : r));
      result.push({
        name: `narrow ${label(statement, index)} from ${resource} to ${narrowResource(resource)}`,
        kind: "narrow-resource",
        target: resource,
        policy: withStatements(policy, others({ ...statement, Resource: narrowed.length === 1 ? narrowed[0]! : narrowed })),
      });
    }
  });
  return result;
}
