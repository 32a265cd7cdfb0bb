/**
 * Output keys: a pure function of the source key, so a redelivered message rewrites the same object instead of
 * producing a second one.
 */
import { OutputKeyTooLongError } from "../errors/document.js";

/** S3's limit on a key, in UTF-8 bytes. */
export const MAX_S3_KEY_BYTES = 1024;

/** `<outputPrefix><sourceKey><suffix>`; throws OutputKeyTooLongError above 1024 bytes. */
export function outputKey(outputPrefix: string, sourceKey: string, suffix: string): string {
  const key = `${outputPrefix}${sourceKey}${suffix}`;
  const bytes = Buffer.byteLength(key, "utf8");
  if (bytes > MAX_S3_KEY_BYTES) throw new OutputKeyTooLongError(key, bytes, MAX_S3_KEY_BYTES);
  return key;
}

/** The longest of these suffixes in UTF-8 bytes ("" when there are none): the key that must fit, for all to fit. */
export function longestSuffix(suffixes: Iterable<string>): string {
  let longest = "";
  for (const suffix of suffixes) if (Buffer.byteLength(suffix) > Buffer.byteLength(longest)) longest = suffix;
  return longest;
}
