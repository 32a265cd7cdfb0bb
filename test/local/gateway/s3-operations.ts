// Path-style S3 request -> operation name and the IAM checks AWS makes for it (action + resource ARN). Pure, so the
// table is unit-tested on its own. Anything not recognised is "Unknown" and the gateway denies it: the stand-in must
// never be more permissive than AWS because it did not understand a request.
import { unescapeXml } from "./xml.js";

export interface S3Check {
  action: string;
  resource: string;
}

export interface S3Operation {
  name: string;
  bucket?: string;
  key?: string;
  /** Every check must allow; CopyObject reads the source and writes the target. */
  checks: S3Check[];
  copySource?: { bucket: string; key: string; versionId?: string };
}

export interface S3RequestShape {
  method: string;
  rawPath: string;
  query: Record<string, string | string[]>;
  /** Lower-case header names. */
  headers: ReadonlyMap<string, string>;
}

const bucketArn = (bucket: string): string => `arn:aws:s3:::${bucket}`;
const objectArn = (bucket: string, key: string): string => `arn:aws:s3:::${bucket}/${key}`;

function decodePath(segment: string): string | undefined {
  try {
    return decodeURIComponent(segment);
  } catch {
    return undefined;
  }
}

/** Bucket and key from a path-style path; the key is percent-decoded, '+' kept literal (the SDK sends %2B). */
export function splitS3Path(rawPath: string): { bucket?: string; key?: string } | undefined {
  const path = rawPath.startsWith("/") ? rawPath.slice(1) : rawPath;
  if (path === "") return {};
  const slash = path.indexOf("/");
  const bucket = decodePath(slash === -1 ? path : path.slice(0, slash));
  if (bucket === undefined || bucket === "") return undefined;
  const rawKey = slash === -1 ? "" : path.slice(slash + 1);
  if (rawKey === "") return { bucket };
  const key = decodePath(rawKey);
  return key === undefined ? undefined : { bucket, key };
}

/** x-amz-copy-source: "[/]bucket/key[?versionId=…]", URL-encoded. */
export function parseCopySource(value: string): { bucket: string; key: string; versionId?: string } | undefined {
  const [pathPart, queryPart] = value.split("?", 2) as [string, string | undefined];
  const decoded = decodePath(pathPart);
  if (decoded === undefined) return undefined;
  const path = decoded.startsWith("/") ? decoded.slice(1) : decoded;
  const slash = path.indexOf("/");
  if (slash <= 0 || slash === path.length - 1) return undefined;
  const versionId = queryPart ? /(?:^|&)versionId=([^&]*)/.exec(queryPart)?.[1] : undefined;
  return { bucket: path.slice(0, slash), key: path.slice(slash + 1), ...(versionId !== undefined && { versionId }) };
}

// Query keys that are parameters, not subresources (they never change which operation a request is).
const PARAMETERS = new Set([
  "x-id",
  "list-type",
  "prefix",
  "delimiter",
  "encoding-type",
  "max-keys",
  "marker",
  "continuation-token",
  "start-after",
  "fetch-owner",
  "partNumber",
  "uploadId",
  "versionId",
  "key-marker",
  "upload-id-marker",
  "version-id-marker",
  "max-uploads",
  "max-parts",
  "part-number-marker",
  "optional-object-attributes",
  "expected-bucket-owner",
  "response-content-type",
  "response-content-language",
  "response-expires",
  "response-cache-control",
  "response-content-disposition",
  "response-content-encoding",
]);

type Table = Record<string, [name: string, action: string]>;

// Bucket subresources by method: operation name and IAM action (on the bucket ARN).
const BUCKET_SUBRESOURCES: Record<string, Table> = {
  GET: {
    versions: ["ListObjectVersions", "s3:ListBucketVersions"],
    uploads: ["ListMultipartUploads", "s3:ListBucketMultipartUploads"],
    location: ["GetBucketLocation", "s3:GetBucketLocation"],
    notification: ["GetBucketNotificationConfiguration", "s3:GetBucketNotification"],
    policy: ["GetBucketPolicy", "s3:GetBucketPolicy"],
    acl: ["GetBucketAcl", "s3:GetBucketAcl"],
    versioning: ["GetBucketVersioning", "s3:GetBucketVersioning"],
    lifecycle: ["GetBucketLifecycleConfiguration", "s3:GetLifecycleConfiguration"],
    tagging: ["GetBucketTagging", "s3:GetBucketTagging"],
    encryption: ["GetBucketEncryption", "s3:GetEncryptionConfiguration"],
    cors: ["GetBucketCors", "s3:GetBucketCORS"],
    publicAccessBlock: ["GetPublicAccessBlock", "s3:GetBucketPublicAccessBlock"],
    ownershipControls: ["GetBucketOwnershipControls", "s3:GetBucketOwnershipControls"],
    policyStatus: ["GetBucketPolicyStatus", "s3:GetBucketPolicyStatus"],
  },
  PUT: {
    notification: ["PutBucketNotificationConfiguration", "s3:PutBucketNotification"],
    policy: ["PutBucketPolicy", "s3:PutBucketPolicy"],
    acl: ["PutBucketAcl", "s3:PutBucketAcl"],
    versioning: ["PutBucketVersioning", "s3:PutBucketVersioning"],
    lifecycle: ["PutBucketLifecycleConfiguration", "s3:PutLifecycleConfiguration"],
    tagging: ["PutBucketTagging", "s3:PutBucketTagging"],
    encryption: ["PutBucketEncryption", "s3:PutEncryptionConfiguration"],
    cors: ["PutBucketCors", "s3:PutBucketCORS"],
    publicAccessBlock: ["PutPublicAccessBlock", "s3:PutBucketPublicAccessBlock"],
    ownershipControls: ["PutBucketOwnershipControls", "s3:PutBucketOwnershipControls"],
  },
  DELETE: {
    policy: ["DeleteBucketPolicy", "s3:DeleteBucketPolicy"],
    lifecycle: ["DeleteBucketLifecycle", "s3:PutLifecycleConfiguration"],
    tagging: ["DeleteBucketTagging", "s3:PutBucketTagging"],
    encryption: ["DeleteBucketEncryption", "s3:PutEncryptionConfiguration"],
    cors: ["DeleteBucketCors", "s3:PutBucketCORS"],
    publicAccessBlock: ["DeletePublicAccessBlock", "s3:PutBucketPublicAccessBlock"],
    ownershipControls: ["DeleteBucketOwnershipControls", "s3:PutBucketOwnershipControls"],
  },
  POST: {
    delete: ["DeleteObjects", "s3:DeleteObject"],
  },
};

// Object subresources by method: operation name and IAM action (on the object ARN).
const OBJECT_SUBRESOURCES: Record<string, Table> = {
  GET: {
    acl: ["GetObjectAcl", "s3:GetObjectAcl"],
    tagging: ["GetObjectTagging", "s3:GetObjectTagging"],
    attributes: ["GetObjectAttributes", "s3:GetObjectAttributes"],
    retention: ["GetObjectRetention", "s3:GetObjectRetention"],
    "legal-hold": ["GetObjectLegalHold", "s3:GetObjectLegalHold"],
    torrent: ["GetObjectTorrent", "s3:GetObjectTorrent"],
  },
  PUT: {
    acl: ["PutObjectAcl", "s3:PutObjectAcl"],
    tagging: ["PutObjectTagging", "s3:PutObjectTagging"],
    retention: ["PutObjectRetention", "s3:PutObjectRetention"],
    "legal-hold": ["PutObjectLegalHold", "s3:PutObjectLegalHold"],
  },
  DELETE: {
    tagging: ["DeleteObjectTagging", "s3:DeleteObjectTagging"],
  },
  POST: {
    uploads: ["CreateMultipartUpload", "s3:PutObject"],
    restore: ["RestoreObject", "s3:RestoreObject"],
    select: ["SelectObjectContent", "s3:GetObject"],
  },
};

const unknown = (bucket?: string, key?: string): S3Operation => ({
  name: "Unknown",
  ...(bucket !== undefined && { bucket }),
  ...(key !== undefined && { key }),
  checks: [],
});

function has(query: S3RequestShape["query"], name: string): boolean {
  return Object.hasOwn(query, name);
}

/** Classifies a path-style S3 request. */
export function classifyS3(request: S3RequestShape): S3Operation {
  const method = request.method.toUpperCase();
  const location = splitS3Path(request.rawPath);
  if (!location) return unknown();
  const { bucket, key } = location;
  const names = Object.keys(request.query);
  const subresources = names.filter((n) => !PARAMETERS.has(n));
  // Presigned-URL parameters and anything we do not know: refuse rather than guess.
  if (subresources.length > 1) return unknown(bucket, key);
  const sub = subresources[0];

  if (bucket === undefined) {
    return method === "GET" && sub === undefined
      ? { name: "ListBuckets", checks: [{ action: "s3:ListAllMyBuckets", resource: "*" }] }
      : unknown();
  }

  if (key === undefined) {
    const op = (name: string, action: string): S3Operation => ({
      name,
      bucket,
      checks: [{ action, resource: bucketArn(bucket) }],
    });
    if (sub !== undefined) {
      const entry = BUCKET_SUBRESOURCES[method]?.[sub];
      if (!entry) return unknown(bucket);
      // DeleteObjects is checked per key from its body (s3:DeleteObject on each object).
      if (entry[0] === "DeleteObjects") return { name: "DeleteObjects", bucket, checks: [] };
      return op(entry[0], entry[1]);
    }
    switch (method) {
      case "GET":
        return has(request.query, "list-type") ? op("ListObjectsV2", "s3:ListBucket") : op("ListObjects", "s3:ListBucket");
      case "HEAD":
        return op("HeadBucket", "s3:ListBucket");
      case "PUT":
        return op("CreateBucket", "s3:CreateBucket");
      case "DELETE":
        return op("DeleteBucket", "s3:DeleteBucket");
      default:
        return unknown(bucket);
    }
  }

  const target = objectArn(bucket, key);
  const op = (name: string, ...actions: string[]): S3Operation => ({
    name,
    bucket,
    key,
    checks: actions.map((action) => ({ action, resource: target })),
  });
  const versioned = has(request.query, "versionId");
  if (sub !== undefined) {
    const entry = OBJECT_SUBRESOURCES[method]?.[sub];
    if (!entry) return unknown(bucket, key);
    return op(entry[0], versioned && entry[1].startsWith("s3:GetObject") ? `${entry[1]}Version` : entry[1]);
  }

  const copyHeader = request.headers.get("x-amz-copy-source");
  switch (method) {
    case "GET":
      if (has(request.query, "uploadId")) return op("ListParts", "s3:ListMultipartUploadParts");
      return op("GetObject", versioned ? "s3:GetObjectVersion" : "s3:GetObject");
    case "HEAD":
      return op("HeadObject", versioned ? "s3:GetObjectVersion" : "s3:GetObject");
    case "DELETE":
      if (has(request.query, "uploadId")) return op("AbortMultipartUpload", "s3:AbortMultipartUpload");
      return op("DeleteObject", versioned ? "s3:DeleteObjectVersion" : "s3:DeleteObject");
    case "POST":
      if (has(request.query, "uploadId")) return op("CompleteMultipartUpload", "s3:PutObject", ...conditionalWriteActions(request.headers));
      return unknown(bucket, key);
    case "PUT": {
      const isPart = has(request.query, "uploadId") && has(request.query, "partNumber");
      const writes = isPart
        ? op("UploadPart", "s3:PutObject")
        : op("PutObject", "s3:PutObject", ...extraPutActions(request.headers), ...conditionalWriteActions(request.headers));
      if (copyHeader === undefined) return writes;
      const source = parseCopySource(copyHeader);
      if (!source) return unknown(bucket, key);
      const read: S3Check = {
        action: source.versionId !== undefined ? "s3:GetObjectVersion" : "s3:GetObject",
        resource: objectArn(source.bucket, source.key),
      };
      return { ...writes, name: isPart ? "UploadPartCopy" : "CopyObject", checks: [read, ...writes.checks], copySource: source };
    }
    default:
      return unknown(bucket, key);
  }
}

/** PutObject with an ACL or tags needs those permissions too, as in AWS. */
function extraPutActions(headers: ReadonlyMap<string, string>): string[] {
  const extra: string[] = [];
  if (headers.has("x-amz-acl") || [...headers.keys()].some((h) => h.startsWith("x-amz-grant-"))) extra.push("s3:PutObjectAcl");
  if (headers.has("x-amz-tagging")) extra.push("s3:PutObjectTagging");
  return extra;
}

/**
 * A write with If-Match also needs s3:GetObject on the target: it reads the object's ETag. S3 User Guide, "How to
 * prevent object overwrites with conditional writes" (https://docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-writes.html).
 * If-None-Match needs only s3:PutObject.
 */
function conditionalWriteActions(headers: ReadonlyMap<string, string>): string[] {
  return headers.has("if-match") ? ["s3:GetObject"] : [];
}

/** Object keys of a DeleteObjects request body. */
export function deleteObjectsKeys(body: string): string[] {
  const keys: string[] = [];
  for (const object of body.matchAll(/<Object>([\s\S]*?)<\/Object>/g)) {
    const key = /<Key>([\s\S]*?)<\/Key>/.exec(object[1] ?? "")?.[1];
    if (key !== undefined) keys.push(unescapeXml(key));
  }
  return keys;
}
