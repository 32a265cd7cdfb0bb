export { evaluate } from "./evaluate.js";
export { loadPolicyFile, renderPolicy, repoPath } from "./load.js";
export { POLICY_VERSION, PolicyValidationError, statementsOf, validatePolicy } from "./validate.js";
export type { AuthorizationRequest, Decision, PolicyDocument, PolicyKind, PolicyStatement } from "./types.js";
