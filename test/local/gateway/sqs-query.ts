// The SQS query protocol (form-encoded `Action=ReceiveMessage&Version=2012-11-05…`, XML answers), which AWS CLI 2.9.19
// speaks, translated to and from the JSON protocol fauxqs and the JS SDK use. Covers the shapes of the SQS API:
// flattened lists (AttributeName.1), Name/Value maps (Attribute.1.Name), message attributes and batch entries.
import { escapeXml } from "./xml.js";

const SQS_NS = "http://queue.amazonaws.com/doc/2012-11-05/";

const INTEGER_FIELDS = new Set(["DelaySeconds", "MaxNumberOfMessages", "VisibilityTimeout", "WaitTimeSeconds", "MaxResults"]);

const SCALAR_LISTS: Record<string, string> = {
  AttributeName: "AttributeNames",
  MessageAttributeName: "MessageAttributeNames",
  MessageSystemAttributeName: "MessageSystemAttributeNames",
  TagKey: "TagKeys",
};

const IGNORED = new Set(["Action", "Version"]);

/** Groups `<prefix>.<n>[.<rest>]` params by n (ascending), each as rest -> value ("" for a scalar item). */
function indexed(params: ReadonlyMap<string, string>, prefix: string): Map<string, string>[] {
  const groups = new Map<number, Map<string, string>>();
  for (const [name, value] of params) {
    const m = new RegExp(`^${prefix}\\.(\\d+)(?:\\.(.+))?$`).exec(name);
    if (!m) continue;
    const index = Number(m[1]);
    let group = groups.get(index);
    if (!group) groups.set(index, (group = new Map<string, string>()));
    group.set(m[2] ?? "", value);
  }
  return [...groups.entries()].sort(([a], [b]) => a - b).map(([, group]) => group);
}

function messageAttributes(params: ReadonlyMap<string, string>, prefix: string): Record<string, unknown> | undefined {
  const items = indexed(params, prefix);
  if (items.length === 0) return undefined;
  const out: Record<string, unknown> = {};
  for (const item of items) {
    const name = item.get("Name");
    if (name === undefined) continue;
    const value: Record<string, string> = {};
    for (const field of ["DataType", "StringValue", "BinaryValue"]) {
      const v = item.get(`Value.${field}`);
      if (v !== undefined) value[field] = v;
    }
    out[name] = value;
  }
  return out;
}

function nameValueMap(params: ReadonlyMap<string, string>, prefix: string, keyField: string): Record<string, string> | undefined {
  const items = indexed(params, prefix);
  if (items.length === 0) return undefined;
  return Object.fromEntries(items.map((item) => [item.get(keyField) ?? "", item.get("Value") ?? ""]));
}

function convert(params: ReadonlyMap<string, string>, action: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, value] of params) {
    if (name.includes(".") || IGNORED.has(name)) continue;
    out[name] = INTEGER_FIELDS.has(name) && /^-?\d+$/.test(value) ? Number(value) : value;
  }
  for (const [queryName, jsonName] of Object.entries(SCALAR_LISTS)) {
    const items = indexed(params, queryName);
    if (items.length > 0) out[jsonName] = items.map((item) => item.get("") ?? "");
  }
  const attributes = nameValueMap(params, "Attribute", "Name");
  if (attributes) out["Attributes"] = attributes;
  // CreateQueue names its tags "tags" in JSON; TagQueue "Tags".
  const tags = nameValueMap(params, "Tag", "Key");
  if (tags) out[action === "CreateQueue" ? "tags" : "Tags"] = tags;
  const userAttributes = messageAttributes(params, "MessageAttribute");
  if (userAttributes) out["MessageAttributes"] = userAttributes;
  const systemAttributes = messageAttributes(params, "MessageSystemAttribute");
  if (systemAttributes) out["MessageSystemAttributes"] = systemAttributes;
  const entries = indexed(params, `${action}RequestEntry`);
  if (entries.length > 0) out["Entries"] = entries.map((entry) => convert(entry, action));
  return out;
}

/** Query-protocol parameters -> the JSON-protocol input of `action`. */
export function queryToJson(action: string, params: ReadonlyMap<string, string>): Record<string, unknown> {
  return convert(params, action);
}

/** Parses a form-encoded body (here '+' does mean space: this is application/x-www-form-urlencoded). */
export function parseForm(text: string): Map<string, string> {
  return new Map(new URLSearchParams(text));
}

function scalar(value: unknown): string {
  return typeof value === "string" ? value : typeof value === "number" || typeof value === "boolean" ? String(value) : "";
}

function serialize(key: string, value: unknown, action: string): string {
  if (value === undefined || value === null) return "";
  switch (key) {
    case "Messages":
      return (value as unknown[]).map((m) => `<Message>${serializeObject(m, action)}</Message>`).join("");
    case "QueueUrls":
      return (value as unknown[]).map((u) => `<QueueUrl>${escapeXml(scalar(u))}</QueueUrl>`).join("");
    case "Attributes":
      return Object.entries(value as Record<string, unknown>)
        .map(([n, v]) => `<Attribute><Name>${escapeXml(n)}</Name><Value>${escapeXml(scalar(v))}</Value></Attribute>`)
        .join("");
    case "Tags":
      return Object.entries(value as Record<string, unknown>)
        .map(([k, v]) => `<Tag><Key>${escapeXml(k)}</Key><Value>${escapeXml(scalar(v))}</Value></Tag>`)
        .join("");
    case "MessageAttributes":
      return Object.entries(value as Record<string, Record<string, unknown>>)
        .map(([n, v]) => `<MessageAttribute><Name>${escapeXml(n)}</Name><Value>${serializeObject(v, action)}</Value></MessageAttribute>`)
        .join("");
    case "Successful":
      return (value as unknown[]).map((e) => `<${action}ResultEntry>${serializeObject(e, action)}</${action}ResultEntry>`).join("");
    case "Failed":
      return (value as unknown[]).map((e) => `<BatchResultErrorEntry>${serializeObject(e, action)}</BatchResultErrorEntry>`).join("");
    default:
      if (typeof value === "object") return `<${key}>${serializeObject(value, action)}</${key}>`;
      return `<${key}>${escapeXml(scalar(value))}</${key}>`;
  }
}

function serializeObject(value: unknown, action: string): string {
  if (typeof value !== "object" || value === null) return escapeXml(scalar(value));
  return Object.entries(value as Record<string, unknown>)
    .map(([k, v]) => serialize(k, v, action))
    .join("");
}

/** A JSON-protocol result of `action` as the query protocol's XML response. */
export function jsonToQueryXml(action: string, result: Record<string, unknown>, requestId: string): string {
  const body = serializeObject(result, action);
  const resultElement = body === "" ? "" : `<${action}Result>${body}</${action}Result>`;
  return (
    `<?xml version="1.0"?><${action}Response xmlns="${SQS_NS}">${resultElement}` +
    `<ResponseMetadata><RequestId>${requestId}</RequestId></ResponseMetadata></${action}Response>`
  );
}
