// Just enough XML for the gateway: escaping for the answers it writes, and tag extraction for the few small request
// and response bodies it reads (CompleteMultipartUpload/CopyObject results, DeleteObjects keys). Never a full parser.

export function escapeXml(text: string): string {
  return text
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;")
    .replace(/'/g, "&apos;");
}

export function unescapeXml(text: string): string {
  return text
    .replace(/&lt;/g, "<")
    .replace(/&gt;/g, ">")
    .replace(/&quot;/g, '"')
    .replace(/&apos;/g, "'")
    .replace(/&#x([0-9a-f]+);/gi, (_m, hex: string) => String.fromCodePoint(parseInt(hex, 16)))
    .replace(/&#(\d+);/g, (_m, dec: string) => String.fromCodePoint(parseInt(dec, 10)))
    .replace(/&amp;/g, "&");
}

/** Text of every `<tag>…</tag>` in `xml`, unescaped, in document order. */
export function tagValues(xml: string, tag: string): string[] {
  const values: string[] = [];
  const re = new RegExp(`<${tag}>([\\s\\S]*?)</${tag}>`, "g");
  for (const match of xml.matchAll(re)) values.push(unescapeXml(match[1] ?? ""));
  return values;
}

export function firstTag(xml: string, tag: string): string | undefined {
  return tagValues(xml, tag)[0];
}
