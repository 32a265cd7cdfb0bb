/**
 * Output keys: a pure function of the source key, so a redelivered message rewrites the same object instead of
 * producing a second one.
 */
import { DocProcessorError, ErrorCode } from "../errors.js";

/** S3's limit on a key, in UTF-8 bytes. */
export const MAX_S3_KEY_BYTES = 1024;

/**
 * The output key would exceed S3's limit: permanent for this source key, so never worth retrying. No error record
 * can say so either (its key is longer still): the message goes to the DLQ.
 */
export class OutputKeyTooLongError extends DocProcessorError {
  readonly bytes: number;

  constructor(key: string, bytes: number) {
    super(
      ErrorCode.outputKeyTooLong,
      `output key would be ${bytes} bytes of UTF-8, above S3's limit of ${MAX_S3_KEY_BYTES}: ` +
        `${JSON.stringify(key.length > 80 ? `${key.slice(0, 80)}...` : key)} (shorten outputPrefix or the source key; ` +
        "the message goes to the DLQ, and no error record can be written under a key that long)",
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

/** The longest of these suffixes in UTF-8 bytes ("" when there are none): the key that must fit, for all to fit. */
export function longestSuffix(suffixes: Iterable<string>): string {
  let longest = "";
  for (const suffix of suffixes) if (Buffer.byteLength(suffix) > Buffer.byteLength(longest)) longest = suffix;
  return longest;
}
