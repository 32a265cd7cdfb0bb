export { startMockImds } from "./server.js";
export { HTML_ANSWER_MARKER, isoSeconds } from "./format.js";
export { DEFAULT_REFRESH_BEFORE_EXPIRY_SECONDS, MAX_TOKEN_TTL_SECONDS, MIN_REMAINING_SECONDS } from "./state.js";
export type { ImdsCredentials, ImdsCredentialsAnswer, ImdsMode, ImdsRequestLogEntry, MockImds, MockImdsOptions } from "./types.js";
