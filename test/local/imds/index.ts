export { startMockImds } from "./server.js";
export { isoSeconds } from "./format.js";
export { DEFAULT_REFRESH_BEFORE_EXPIRY_SECONDS, MAX_TOKEN_TTL_SECONDS, MIN_REMAINING_SECONDS } from "./state.js";
export type { ImdsCredentials, ImdsMode, ImdsRequestLogEntry, MockImds, MockImdsOptions } from "./types.js";
