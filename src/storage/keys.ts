/**
 * Output keys: a pure function of the source key, so a redelivered message rewrites the same object instead of
 * producing a second one.
 */
import { DocProcessorError, ErrorCode } from "../errors.js";

/** S3's limit on a key, in UTF-8 bytes. */
export const MAX_S3_KEY_BYTES = 1024;

/** The output key would exceed S3's limit: permanent for this source key, so never worth retrying. */
export class OutputKeyTooLongError extends DocProcessorError {
  readonly bytes: number;

  constructor(key: string, bytes: number) {
    super(
      ErrorCode.sinkWriteFailed,
      `output key would be ${bytes} bytes of UTF-8, above S3's limit of ${MAX_S3_KEY_BYTES}: ` +
        `"${key.slice(0, 80)}${key.length > 80 ? "..." : ""}" (shorten outputPrefix or the source key)`,
    );
    this.bytes = bytes;
  }
}

/** `<outputPrefix><sourceKey><suffix>`; throws OutputKeyTooLongError above 1024 bytes. */
export function outputKey(outputPrefix: string, sourceKey: string, suffix: string): string {
  const key = `${outputPrefix}${sourceKey}${suffix}`;
  const bytes = Buffer.byteLength(key, "utf8");
  if (bytes > MAX_S3_KEY_BYTES) throw new OutputKeyTooLongError(key, bytes);
  return key;
}
