// iam:SimulatePrincipalPolicy over a role's policies, with the stand-in's evaluator: one result per action and
// resource, the statements that decided it (by policy name and position in the policy's text), and no context keys
// (the evaluator refuses Conditions when a policy is loaded, so no result can depend on one).
import type { PolicySource } from "./directory.js";
import { explain } from "./evaluate.js";
import { statementPositions, type TextPosition } from "./positions.js";

export type EvalDecision = "allowed" | "explicitDeny" | "implicitDeny";

export interface SimulatedStatement {
  SourcePolicyId: string;
  SourcePolicyType: PolicySource["type"];
  StartPosition: TextPosition;
  EndPosition: TextPosition;
}

export interface ResourceResult {
  EvalResourceName: string;
  EvalResourceDecision: EvalDecision;
  MatchedStatements: SimulatedStatement[];
  MissingContextValues: string[];
}

export interface SimulationResult {
  EvalActionName: string;
  EvalResourceName: string;
  EvalDecision: EvalDecision;
  MatchedStatements: SimulatedStatement[];
  MissingContextValues: string[];
  /** The same decision for the one resource, as AWS also reports it when ResourceArns are given. */
  ResourceSpecificResults: ResourceResult[];
}

const DECISIONS = { allow: "allowed", "explicit-deny": "explicitDeny", "implicit-deny": "implicitDeny" } as const;

/** Every action on every resource ("*" when none is given), actions outermost, as AWS orders them. */
export function simulate(sources: readonly PolicySource[], actions: readonly string[], resources: readonly string[]): SimulationResult[] {
  const spans = sources.map((s) => statementPositions(s.text));
  const documents = sources.map((s) => s.document);
  const targets = resources.length === 0 ? ["*"] : resources;
  return actions.flatMap((action) =>
    targets.map((resource): SimulationResult => {
      const { effect, matched } = explain(documents, { action, resource });
      const statements = matched.map(({ policy, statement }): SimulatedStatement => {
        const source = sources[policy]!;
        const span = spans[policy]![statement];
        if (!span) throw new Error(`no position for statement ${statement} of ${source.id}`);
        return { SourcePolicyId: source.id, SourcePolicyType: source.type, StartPosition: span.start, EndPosition: span.end };
      });
      const decision = DECISIONS[effect];
      return {
        EvalActionName: action,
        EvalResourceName: resource,
        EvalDecision: decision,
        MatchedStatements: statements,
        MissingContextValues: [],
        ResourceSpecificResults:
          resources.length === 0
            ? []
            : [{ EvalResourceName: resource, EvalResourceDecision: decision, MatchedStatements: statements, MissingContextValues: [] }],
      };
    }),
  );
}
