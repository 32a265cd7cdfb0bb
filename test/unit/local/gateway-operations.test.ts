// The gateway's pure tables: S3 request -> IAM checks, SQS operation -> IAM check, queue URL/ARN translation and the
// SQS query protocol. A wrong row here would make the stand-in more permissive (or stricter) than AWS.
import { describe, expect, it } from "vitest";
import { classifyS3, deleteObjectsKeys, parseCopySource, splitS3Path } from "../../local/gateway/s3-operations.js";
import { AwsError } from "../../local/gateway/errors.js";
import { QueueTranslator, parseQueueUrl, sqsAuthorization } from "../../local/gateway/sqs.js";
import { jsonToQueryXml, parseForm, queryToJson } from "../../local/gateway/sqs-query.js";
import { parseQuery } from "../../local/gateway/sigv4.js";

const B = "src-bucket";
const obj = (key: string): string => `arn:aws:s3:::${B}/${key}`;
const bucket = `arn:aws:s3:::${B}`;

function s3(method: string, url: string, headers: Record<string, string> = {}) {
  const q = url.indexOf("?");
  return classifyS3({
    method,
    rawPath: q === -1 ? url : url.slice(0, q),
    query: parseQuery(q === -1 ? "" : url.slice(q + 1)),
    headers: new Map(Object.entries(headers)),
  });
}

describe("classifyS3: operation -> IAM action and resource", () => {
  it.each([
    ["GET", `/${B}/a/b.txt?x-id=GetObject`, "GetObject", "s3:GetObject", obj("a/b.txt")],
    ["HEAD", `/${B}/a/b.txt`, "HeadObject", "s3:GetObject", obj("a/b.txt")],
    ["GET", `/${B}/k?versionId=3`, "GetObject", "s3:GetObjectVersion", obj("k")],
    ["PUT", `/${B}/k?x-id=PutObject`, "PutObject", "s3:PutObject", obj("k")],
    ["POST", `/${B}/k?uploads`, "CreateMultipartUpload", "s3:PutObject", obj("k")],
    ["PUT", `/${B}/k?partNumber=1&uploadId=u&x-id=UploadPart`, "UploadPart", "s3:PutObject", obj("k")],
    ["POST", `/${B}/k?uploadId=u`, "CompleteMultipartUpload", "s3:PutObject", obj("k")],
    ["DELETE", `/${B}/k?uploadId=u&x-id=AbortMultipartUpload`, "AbortMultipartUpload", "s3:AbortMultipartUpload", obj("k")],
    ["GET", `/${B}/k?uploadId=u`, "ListParts", "s3:ListMultipartUploadParts", obj("k")],
    ["DELETE", `/${B}/k?x-id=DeleteObject`, "DeleteObject", "s3:DeleteObject", obj("k")],
    ["GET", `/${B}/k?tagging`, "GetObjectTagging", "s3:GetObjectTagging", obj("k")],
    ["PUT", `/${B}/k?acl`, "PutObjectAcl", "s3:PutObjectAcl", obj("k")],
    ["GET", `/${B}?list-type=2&prefix=a`, "ListObjectsV2", "s3:ListBucket", bucket],
    ["GET", `/${B}/?list-type=2`, "ListObjectsV2", "s3:ListBucket", bucket],
    ["GET", `/${B}`, "ListObjects", "s3:ListBucket", bucket],
    ["HEAD", `/${B}`, "HeadBucket", "s3:ListBucket", bucket],
    ["GET", `/${B}?versions`, "ListObjectVersions", "s3:ListBucketVersions", bucket],
    ["GET", `/${B}?uploads`, "ListMultipartUploads", "s3:ListBucketMultipartUploads", bucket],
    ["GET", `/${B}?location`, "GetBucketLocation", "s3:GetBucketLocation", bucket],
    ["PUT", `/${B}`, "CreateBucket", "s3:CreateBucket", bucket],
    ["DELETE", `/${B}`, "DeleteBucket", "s3:DeleteBucket", bucket],
    ["PUT", `/${B}?notification`, "PutBucketNotificationConfiguration", "s3:PutBucketNotification", bucket],
    ["PUT", `/${B}?lifecycle`, "PutBucketLifecycleConfiguration", "s3:PutLifecycleConfiguration", bucket],
    ["GET", "/", "ListBuckets", "s3:ListAllMyBuckets", "*"],
  ])("%s %s -> %s needs %s on %s", (method, url, name, action, resource) => {
    expect(s3(method, url)).toMatchObject({ name, checks: [{ action, resource }] });
  });

  it("decodes the key from the raw path, keeping '+' literal", () => {
    const op = s3("GET", `/${B}/dir/a%20b%2Bc%25d%20%C3%B1.txt`);
    expect(op).toMatchObject({ bucket: B, key: "dir/a b+c%d ñ.txt", checks: [{ resource: obj("dir/a b+c%d ñ.txt") }] });
    expect(splitS3Path(`/${B}/a+b`)).toEqual({ bucket: B, key: "a+b" });
    expect(splitS3Path("/b/%E0%A4%A")).toBeUndefined();
  });

  it("CopyObject reads the source and writes the target", () => {
    const op = s3("PUT", `/${B}/dst.txt?x-id=CopyObject`, { "x-amz-copy-source": "other-bucket/src%20key.txt" });
    expect(op).toMatchObject({
      name: "CopyObject",
      copySource: { bucket: "other-bucket", key: "src key.txt" },
      checks: [
        { action: "s3:GetObject", resource: "arn:aws:s3:::other-bucket/src key.txt" },
        { action: "s3:PutObject", resource: obj("dst.txt") },
      ],
    });
    expect(parseCopySource("/b/k?versionId=v1")).toEqual({ bucket: "b", key: "k", versionId: "v1" });
    expect(s3("PUT", `/${B}/d`, { "x-amz-copy-source": "b/k?versionId=v1" }).checks[0]?.action).toBe("s3:GetObjectVersion");
    expect(s3("PUT", `/${B}/d?partNumber=2&uploadId=u`, { "x-amz-copy-source": "b/k" })).toMatchObject({
      name: "UploadPartCopy",
      checks: [{ action: "s3:GetObject" }, { action: "s3:PutObject" }],
    });
  });

  it("PutObject with an ACL or tags also needs those permissions", () => {
    expect(s3("PUT", `/${B}/k`, { "x-amz-acl": "public-read", "x-amz-tagging": "a=b" }).checks.map((c) => c.action)).toEqual([
      "s3:PutObject",
      "s3:PutObjectAcl",
      "s3:PutObjectTagging",
    ]);
  });

  it.each([
    ["POST", `/${B}/k`],
    ["GET", `/${B}/k?bogus-subresource`],
    ["PUT", `/${B}?website`],
    ["GET", `/${B}/k?X-Amz-Signature=abc&X-Amz-Credential=x`],
    ["PATCH", `/${B}/k`],
    ["PUT", `/${B}/k`, { "x-amz-copy-source": "no-key" }],
  ] as [string, string, Record<string, string>?][])("refuses what it does not know: %s %s", (method, url, headers) => {
    expect(s3(method, url, headers ?? {})).toMatchObject({ name: "Unknown", checks: [] });
  });

  it("DeleteObjects is checked per key from the body", () => {
    expect(s3("POST", `/${B}?delete`)).toMatchObject({ name: "DeleteObjects", checks: [] });
    const body = "<Delete><Object><Key>a &amp; b</Key></Object><Object><Key>c</Key><VersionId>1</VersionId></Object></Delete>";
    expect(deleteObjectsKeys(body)).toEqual(["a & b", "c"]);
  });
});

describe("sqsAuthorization", () => {
  const ctx = { region: "us-east-1", accountId: "123456789012" };
  const url = "http://127.0.0.1:1/123456789012/events";
  const arn = "arn:aws:sqs:us-east-1:123456789012:events";

  it.each([
    ["ReceiveMessage", "sqs:ReceiveMessage"],
    ["DeleteMessage", "sqs:DeleteMessage"],
    ["DeleteMessageBatch", "sqs:DeleteMessage"],
    ["ChangeMessageVisibility", "sqs:ChangeMessageVisibility"],
    ["ChangeMessageVisibilityBatch", "sqs:ChangeMessageVisibility"],
    ["SendMessage", "sqs:SendMessage"],
    ["SendMessageBatch", "sqs:SendMessage"],
    ["GetQueueAttributes", "sqs:GetQueueAttributes"],
  ])("%s on the queue URL -> %s on the queue ARN", (operation, action) => {
    expect(sqsAuthorization(operation, { QueueUrl: url }, ctx)).toEqual({ action, resource: arn });
  });

  it("takes the account from the URL, the name for CreateQueue/GetQueueUrl, and * for ListQueues", () => {
    expect(sqsAuthorization("ReceiveMessage", { QueueUrl: "https://sqs.us-east-1.amazonaws.com/999999999999/q" }, ctx)).toEqual({
      action: "sqs:ReceiveMessage",
      resource: "arn:aws:sqs:us-east-1:999999999999:q",
    });
    expect(sqsAuthorization("GetQueueUrl", { QueueName: "q", QueueOwnerAWSAccountId: "111111111111" }, ctx)).toEqual({
      action: "sqs:GetQueueUrl",
      resource: "arn:aws:sqs:us-east-1:111111111111:q",
    });
    expect(sqsAuthorization("CreateQueue", { QueueName: "q" }, ctx)).toMatchObject({ resource: "arn:aws:sqs:us-east-1:123456789012:q" });
    expect(sqsAuthorization("ListQueues", {}, ctx)).toEqual({ action: "sqs:ListQueues", resource: "*" });
  });

  it("refuses a missing or invalid queue URL and a malformed action", () => {
    expect(sqsAuthorization("ReceiveMessage", {}, ctx)).toMatchObject({ code: "MissingParameter" });
    expect(sqsAuthorization("ReceiveMessage", { QueueUrl: "not a url" }, ctx)).toMatchObject({ code: "InvalidAddress" });
    expect(sqsAuthorization("Receive.Message", {}, ctx)).toBeInstanceOf(AwsError);
  });
});

describe("QueueTranslator", () => {
  const translator = new QueueTranslator({
    region: "us-east-1",
    accountId: "123456789012",
    gatewayBase: () => "http://127.0.0.1:4000",
    upstreamBase: "http://sqs.us-east-1.localhost:5000",
  });

  it("maps caller queue URLs and ARNs to fauxqs's and back, leaving message data alone", () => {
    const up = translator.toUpstream({
      QueueUrl: "http://127.0.0.1:4000/123456789012/q",
      Attributes: { RedrivePolicy: '{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:123456789012:dlq","maxReceiveCount":5}' },
      MessageBody: "arn:aws:sqs:us-east-1:123456789012:q stays",
    });
    expect(up).toEqual({
      QueueUrl: "http://sqs.us-east-1.localhost:5000/000000000000/q",
      Attributes: { RedrivePolicy: '{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:000000000000:dlq","maxReceiveCount":5}' },
      MessageBody: "arn:aws:sqs:us-east-1:123456789012:q stays",
    });
    const down = translator.fromUpstream({
      QueueUrls: ["http://sqs.us-east-1.localhost:5000/000000000000/q"],
      Attributes: { QueueArn: "arn:aws:sqs:us-east-1:000000000000:q" },
      Messages: [{ Body: "000000000000 arn:aws:sqs:us-east-1:000000000000:x", Attributes: { SenderId: "000000000000" } }],
    });
    expect(down).toEqual({
      QueueUrls: ["http://127.0.0.1:4000/123456789012/q"],
      Attributes: { QueueArn: "arn:aws:sqs:us-east-1:123456789012:q" },
      Messages: [{ Body: "000000000000 arn:aws:sqs:us-east-1:000000000000:x", Attributes: { SenderId: "123456789012" } }],
    });
  });

  it("leaves another account's queue URL as is (it does not exist upstream)", () => {
    expect(translator.toUpstream({ QueueUrl: "http://127.0.0.1:4000/999999999999/q" })).toEqual({
      QueueUrl: "http://127.0.0.1:4000/999999999999/q",
    });
    expect(parseQueueUrl("http://h/123456789012/q.fifo")).toEqual({ accountId: "123456789012", name: "q.fifo" });
  });
});

describe("SQS query protocol", () => {
  it("turns the CLI's form parameters into the JSON input", () => {
    const params = parseForm(
      "Action=ReceiveMessage&Version=2012-11-05&QueueUrl=http%3A%2F%2Fh%2F123456789012%2Fq&MaxNumberOfMessages=10" +
        "&WaitTimeSeconds=2&AttributeName.1=All&MessageAttributeName.1=a&MessageAttributeName.2=b",
    );
    expect(queryToJson("ReceiveMessage", params)).toEqual({
      QueueUrl: "http://h/123456789012/q",
      MaxNumberOfMessages: 10,
      WaitTimeSeconds: 2,
      AttributeNames: ["All"],
      MessageAttributeNames: ["a", "b"],
    });
  });

  it("handles attribute maps, message attributes, tags and batch entries", () => {
    const create = parseForm("Action=CreateQueue&QueueName=q&Attribute.1.Name=VisibilityTimeout&Attribute.1.Value=30&Tag.1.Key=k&Tag.1.Value=v");
    expect(queryToJson("CreateQueue", create)).toEqual({ QueueName: "q", Attributes: { VisibilityTimeout: "30" }, tags: { k: "v" } });
    const send = parseForm(
      "Action=SendMessage&QueueUrl=u&MessageBody=a+b&DelaySeconds=1" +
        "&MessageAttribute.1.Name=n&MessageAttribute.1.Value.DataType=String&MessageAttribute.1.Value.StringValue=v",
    );
    expect(queryToJson("SendMessage", send)).toEqual({
      QueueUrl: "u",
      MessageBody: "a b",
      DelaySeconds: 1,
      MessageAttributes: { n: { DataType: "String", StringValue: "v" } },
    });
    const batch = parseForm(
      "Action=DeleteMessageBatch&QueueUrl=u&DeleteMessageBatchRequestEntry.2.Id=b&DeleteMessageBatchRequestEntry.2.ReceiptHandle=r2" +
        "&DeleteMessageBatchRequestEntry.1.Id=a&DeleteMessageBatchRequestEntry.1.ReceiptHandle=r1",
    );
    expect(queryToJson("DeleteMessageBatch", batch)).toEqual({
      QueueUrl: "u",
      Entries: [
        { Id: "a", ReceiptHandle: "r1" },
        { Id: "b", ReceiptHandle: "r2" },
      ],
    });
  });

  it("answers in the query protocol's XML", () => {
    const xml = jsonToQueryXml(
      "ReceiveMessage",
      {
        Messages: [
          {
            MessageId: "m1",
            ReceiptHandle: "r<1>",
            Body: '{"a":"&"}',
            Attributes: { SenderId: "123456789012" },
            MessageAttributes: { n: { DataType: "String", StringValue: "v" } },
          },
        ],
      },
      "REQ",
    );
    expect(xml).toContain('<ReceiveMessageResponse xmlns="http://queue.amazonaws.com/doc/2012-11-05/"><ReceiveMessageResult><Message>');
    expect(xml).toContain("<ReceiptHandle>r&lt;1&gt;</ReceiptHandle><Body>{&quot;a&quot;:&quot;&amp;&quot;}</Body>");
    expect(xml).toContain("<Attribute><Name>SenderId</Name><Value>123456789012</Value></Attribute>");
    expect(xml).toContain("<MessageAttribute><Name>n</Name><Value><DataType>String</DataType><StringValue>v</StringValue></Value></MessageAttribute>");
    expect(jsonToQueryXml("DeleteMessage", {}, "R")).toBe(
      '<?xml version="1.0"?><DeleteMessageResponse xmlns="http://queue.amazonaws.com/doc/2012-11-05/">' +
        "<ResponseMetadata><RequestId>R</RequestId></ResponseMetadata></DeleteMessageResponse>",
    );
    expect(jsonToQueryXml("DeleteMessageBatch", { Successful: [{ Id: "a" }], Failed: [{ Id: "b", Code: "X", SenderFault: true }] }, "R")).toContain(
      "<DeleteMessageBatchResult><DeleteMessageBatchResultEntry><Id>a</Id></DeleteMessageBatchResultEntry>" +
        "<BatchResultErrorEntry><Id>b</Id><Code>X</Code><SenderFault>true</SenderFault></BatchResultErrorEntry></DeleteMessageBatchResult>",
    );
  });
});
