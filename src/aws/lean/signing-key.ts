/**
 * A cheaper signing-key cache for @smithy/signature-v4. Its own cache (credentialDerivation.ts) is keyed by an HMAC of
 * the credentials plus the whole session token (about 1 KB), computed and hashed on every request: about 2% of the
 * daemon's CPU per small document in a profile. Here the key is remembered per credentials object, region, service
 * and day: the memoized IMDS provider hands out the same object until it refreshes, and a new object derives anew.
 * The derivation itself stays smithy's; `derived` lets a test prove the hook is still called (a smithy release that
 * stops calling getSigningKey would only lose the saving, and the SigV4 suite checks every signature either way).
 */
import type { SignatureV4 } from "@smithy/signature-v4";
import type { AwsCredentialIdentity } from "@smithy/types";

type GetSigningKey = (credentials: AwsCredentialIdentity, region: string, shortDate: string, service?: string) => Promise<Uint8Array>;

export interface SigningKeyCache {
  /** Keys derived by smithy so far (a cache miss each). */
  readonly derived: number;
}

export function cacheSigningKeys(signer: SignatureV4): SigningKeyCache {
  // getSigningKey is private in smithy's types, an ordinary method in its code (checked by the unit test).
  const target = signer as unknown as { getSigningKey: GetSigningKey };
  const derive = target.getSigningKey.bind(signer);
  let last: { credentials: AwsCredentialIdentity; region: string; shortDate: string; service: string | undefined; key: Promise<Uint8Array> } | undefined;
  const stats = { derived: 0 };
  target.getSigningKey = (credentials, region, shortDate, service) => {
    if (last !== undefined && last.credentials === credentials && last.shortDate === shortDate && last.region === region && last.service === service) {
      return last.key;
    }
    stats.derived++;
    const key = derive(credentials, region, shortDate, service);
    const entry = { credentials, region, shortDate, service, key };
    last = entry;
    // A failed derivation is not remembered.
    key.catch(() => {
      if (last === entry) last = undefined;
    });
    return key;
  };
  return stats;
}
