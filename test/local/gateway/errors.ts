// AWS errors in each protocol's native shape, so SDKs and the AWS CLI parse them exactly as they parse real ones:
// S3 XML, SQS JSON (code in x-amzn-query-error, which the SDK prefers), SQS query XML, STS and IAM XML, EC2 XML.
import { escapeXml } from "./xml.js";

export type Service = "s3" | "sqs" | "sts" | "ec2" | "iam";
export type Protocol = "s3" | "sqs-json" | "sqs-query" | "sts" | "ec2" | "iam";

export class AwsError extends Error {
  override name = "AwsError";
  constructor(
    readonly code: string,
    message: string,
    readonly status: number,
    /** The code the SQS query protocol uses when it differs (AWS.SimpleQueueService.NonExistentQueue). */
    readonly queryCode?: string,
    /** Extra elements of S3's <Error> (Condition for a 412, Key for NoSuchKey, Header for NotImplemented). */
    readonly details?: Readonly<Record<string, string>>,
  ) {
    super(message);
  }

  get fault(): "Sender" | "Receiver" {
    return this.status >= 500 ? "Receiver" : "Sender";
  }
}

export interface Rendered {
  status: number;
  headers: Record<string, string>;
  body: string;
}

const SQS_NS = "http://queue.amazonaws.com/doc/2012-11-05/";
const STS_NS = "https://sts.amazonaws.com/doc/2011-06-15/";
export const IAM_NS = "https://iam.amazonaws.com/doc/2010-05-08/";
const XML_DECL = '<?xml version="1.0" encoding="UTF-8"?>\n';

export function renderError(protocol: Protocol, error: AwsError, requestId: string): Rendered {
  const code = escapeXml(error.code);
  const message = escapeXml(error.message);
  switch (protocol) {
    case "s3":
      return {
        status: error.status,
        headers: { "content-type": "application/xml", "x-amz-request-id": requestId, "x-amz-id-2": hostId(requestId) },
        body:
          `${XML_DECL}<Error><Code>${code}</Code><Message>${message}</Message>${detailsXml(error.details)}` +
          `<RequestId>${requestId}</RequestId><HostId>${hostId(requestId)}</HostId></Error>`,
      };
    case "sqs-json":
      return {
        status: error.status,
        headers: {
          "content-type": "application/x-amz-json-1.0",
          "x-amzn-requestid": requestId,
          // The JS SDK's SQS client (awsQueryCompatible) takes the error code from this header.
          "x-amzn-query-error": `${error.queryCode ?? error.code};${error.fault}`,
        },
        body: JSON.stringify({ __type: `com.amazonaws.sqs#${error.code}`, message: error.message }),
      };
    case "sqs-query":
      return {
        status: error.status,
        headers: { "content-type": "text/xml", "x-amzn-requestid": requestId },
        body:
          `${XML_DECL}<ErrorResponse xmlns="${SQS_NS}"><Error><Type>${error.fault}</Type>` +
          `<Code>${escapeXml(error.queryCode ?? error.code)}</Code><Message>${message}</Message><Detail/></Error>` +
          `<RequestId>${requestId}</RequestId></ErrorResponse>`,
      };
    case "sts":
    case "iam":
      return {
        status: error.status,
        headers: { "content-type": "text/xml", "x-amzn-requestid": requestId },
        body:
          `${XML_DECL}<ErrorResponse xmlns="${protocol === "sts" ? STS_NS : IAM_NS}"><Error><Type>${error.fault}</Type><Code>${code}</Code>` +
          `<Message>${message}</Message></Error><RequestId>${requestId}</RequestId></ErrorResponse>`,
      };
    case "ec2":
      return {
        status: error.status,
        headers: { "content-type": "text/xml;charset=UTF-8" },
        body:
          `${XML_DECL}<Response><Errors><Error><Code>${code}</Code><Message>${message}</Message></Error></Errors>` +
          `<RequestID>${requestId}</RequestID></Response>`,
      };
  }
}

function detailsXml(details: Readonly<Record<string, string>> | undefined): string {
  if (details === undefined) return "";
  return Object.entries(details)
    .map(([name, value]) => `<${name}>${escapeXml(value)}</${name}>`)
    .join("");
}

export function hostId(requestId: string): string {
  return Buffer.from(`stand-in/${requestId}`).toString("base64");
}

/** Why a request failed authentication or integrity checks; mapped to each service's code by authError(). */
export type AuthFailureKind =
  | "missing"
  | "malformed"
  | "unknown-key"
  | "invalid-token"
  | "expired"
  | "skew"
  | "signature"
  | "wrong-region"
  | "missing-content-sha256"
  | "invalid-payload-mode"
  | "payload-hash"
  | "invalid-digest"
  | "bad-digest"
  | "incomplete-body"
  | "unsupported";

export interface AuthFailure {
  kind: AuthFailureKind;
  /** Extra words for the message (which checksum, which region...). */
  detail?: string;
}

const SIGNATURE_MESSAGE =
  "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.";

/** The error AWS returns for `failure` on `service` (codes and statuses as the real services send them). */
export function authError(failure: AuthFailure, service: Service): AwsError {
  const s3 = service === "s3";
  const ec2 = service === "ec2";
  const detail = failure.detail ? ` ${failure.detail}` : "";
  switch (failure.kind) {
    case "missing":
      if (s3) return new AwsError("AccessDenied", "Access Denied", 403);
      return new AwsError("MissingAuthenticationToken", "Request is missing Authentication Token", ec2 ? 401 : 403);
    case "malformed":
      if (s3) return new AwsError("AuthorizationHeaderMalformed", `The authorization header is malformed.${detail}`, 400);
      return new AwsError("IncompleteSignature", `The request signature does not conform to AWS standards.${detail}`, 400);
    case "unknown-key":
      if (s3) return new AwsError("InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records.", 403);
      if (ec2) return new AwsError("AuthFailure", "AWS was not able to validate the provided access credentials", 401);
      return new AwsError("InvalidClientTokenId", "The security token included in the request is invalid.", 403);
    case "invalid-token":
      if (s3) return new AwsError("InvalidToken", "The provided token is malformed or otherwise invalid.", 400);
      if (ec2) return new AwsError("AuthFailure", "AWS was not able to validate the provided access credentials", 401);
      return new AwsError("InvalidClientTokenId", "The security token included in the request is invalid.", 403);
    case "expired":
      if (s3) return new AwsError("ExpiredToken", "The provided token has expired.", 400);
      return new AwsError("ExpiredToken", "The security token included in the request is expired", ec2 ? 400 : 403);
    case "skew":
      return new AwsError(
        "RequestTimeTooSkewed",
        `The difference between the request time and the current time is too large.${detail}`,
        403,
      );
    case "signature":
      if (ec2) return new AwsError("AuthFailure", "AWS was not able to validate the provided access credentials", 401);
      return new AwsError("SignatureDoesNotMatch", `${SIGNATURE_MESSAGE}${detail}`, 403);
    case "wrong-region":
      if (s3) return new AwsError("AuthorizationHeaderMalformed", `The authorization header is malformed;${detail}`, 400);
      return new AwsError("SignatureDoesNotMatch", `Credential should be scoped to a valid region.${detail}`, 403);
    case "missing-content-sha256":
      return new AwsError("InvalidRequest", "Missing required header for this request: x-amz-content-sha256", 400);
    case "invalid-payload-mode":
      return new AwsError(
        "InvalidArgument",
        "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-UNSIGNED-PAYLOAD-TRAILER or a valid sha256 value.",
        400,
      );
    case "payload-hash":
      return new AwsError(
        "XAmzContentSHA256Mismatch",
        "The provided 'x-amz-content-sha256' header does not match what was computed.",
        400,
      );
    case "invalid-digest":
      return new AwsError("InvalidDigest", "The Content-MD5 you specified was invalid.", 400);
    case "bad-digest":
      return new AwsError("BadDigest", failure.detail ?? "The Content-MD5 you specified did not match what we received.", 400);
    case "incomplete-body":
      return new AwsError("IncompleteBody", `You did not provide the number of bytes specified by the Content-Length HTTP header.${detail}`, 400);
    case "unsupported":
      return new AwsError("NotImplemented", `A header or query you provided implies functionality that is not implemented.${detail}`, 501);
  }
}

/** The "User: … is not authorized" message S3, SQS, STS and EC2 put in AccessDenied/UnauthorizedOperation. */
export function deniedMessage(
  principalArn: string,
  action: string,
  resource: string | undefined,
  explicit: boolean,
  style: "s3" | "sqs" | "plain" | "ec2",
): string {
  // SQS names actions in lower case in its messages; S3 quotes the resource; EC2 omits "*" resources.
  const shownAction = style === "sqs" ? action.toLowerCase() : action;
  let on = "";
  if (resource !== undefined && !(style === "ec2" && resource === "*")) {
    on = style === "s3" ? ` on resource: "${resource}"` : ` on resource: ${resource}`;
  }
  const why = explicit
    ? "with an explicit deny in an identity-based policy"
    : `because no identity-based policy allows the ${shownAction} action`;
  const text = `User: ${principalArn} is not authorized to perform: ${shownAction}${on} ${why}`;
  return style === "ec2" ? `You are not authorized to perform this operation. ${text}` : text;
}
