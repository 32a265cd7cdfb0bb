import { describe, expect, it } from "vitest";
import {
  asCredentialsAnswerError,
  describeAnswer,
  describeBody,
  firstCharacterClass,
  judgeCredentialsAnswer,
  safeProviderLogArgument,
  unusableCredentials,
} from "../../../src/aws/imds-answer.js";
import { ErrorCode, ExitCode, IdentityError } from "../../../src/errors/fatal.js";

const SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYSECRETKEY";
const TOKEN = "IQoJb3JpZ2luX2VjEXAMPLETOKEN";
const valid = (fields: Record<string, unknown> = {}) =>
  JSON.stringify(
    {
      Code: "Success",
      LastUpdated: "2026-11-29T12:00:00Z",
      Type: "AWS-HMAC",
      AccessKeyId: "ASIAEXAMPLEEXAMPLE01",
      SecretAccessKey: SECRET,
      Token: TOKEN,
      Expiration: "2026-11-29T18:00:00Z",
      ...fields,
    },
    null,
    2,
  );

/** What a message must never contain: any part of the answer's secrets. */
function expectNoSecret(text: string): void {
  expect(text).not.toContain(SECRET.slice(0, 4));
  expect(text).not.toContain(TOKEN.slice(0, 4));
  expect(text).not.toContain("ASIAEXAMPLE");
}

describe("judgeCredentialsAnswer", () => {
  it("accepts the real answer", () => {
    expect(judgeCredentialsAnswer(valid())).toEqual({ ok: true });
  });

  it.each([
    ["an HTML page", "<!DOCTYPE html><html><body>502</body></html>", "something that is not JSON"],
    ["JSON cut short", valid().slice(0, valid().indexOf(TOKEN) + 6), "JSON that is cut short or broken"],
    ["an empty body", "", "an empty body"],
    ["whitespace", " \n", "an empty body"],
    ["a JSON array", "[1,2]", "JSON that is not an object"],
    ["null", "null", "JSON that is not an object"],
    ["an Expiration that is not a date", valid({ Expiration: "9999-99-99T99:99:99Z" }), "JSON whose Expiration is not a date (20 characters)"],
    ["a numeric Expiration", valid({ Expiration: 1_800_000_000 }), "JSON without Expiration (as strings)"],
    ["missing fields", JSON.stringify({ Code: "Success", AccessKeyId: "ASIA" }), "JSON without SecretAccessKey, Token, Expiration (as strings)"],
    ["IMDS's own failure code", valid({ Code: "AssumeRoleUnauthorizedAccess" }), 'JSON whose Code is "AssumeRoleUnauthorizedAccess", not "Success"'],
    ["a Code that is not a word", valid({ Code: `x ${SECRET}` }), 'JSON whose Code is an unexpected value, not "Success"'],
    ["an empty secret", valid({ SecretAccessKey: "" }), "JSON with an empty AccessKeyId or SecretAccessKey"],
  ])("refuses %s, saying what is wrong without quoting it", (_name, body, problem) => {
    const verdict = judgeCredentialsAnswer(body);
    expect(verdict).toEqual({ ok: false, problem });
    if (!verdict.ok) expectNoSecret(verdict.problem);
  });

  it("accepts the empty Token of long-term keys (the identity check refuses those, naming the IAM user)", () => {
    expect(judgeCredentialsAnswer(valid({ AccessKeyId: "AKIAEXAMPLE", Token: "" }))).toEqual({ ok: true });
  });
});

describe("describeAnswer / firstCharacterClass", () => {
  it("gives the media type, the length and the first character's class, never the content", () => {
    const body = `<html><body>${SECRET}</body></html>`;
    const text = describeAnswer({ body, contentType: "text/html; charset=utf-8", bytes: Buffer.byteLength(body) });
    expect(text).toBe(`content-type text/html, ${Buffer.byteLength(body)} bytes, first character '<' (markup, such as an HTML page)`);
    expectNoSecret(text);
  });

  it("says when the body was not read to its end, and when the header is missing or odd", () => {
    expect(describeAnswer({ body: "{", contentType: undefined, bytes: 70_000, complete: false })).toBe(
      "content-type missing, at least 70000 bytes (not read further), first character '{' (a JSON object)",
    );
    expect(describeAnswer({ body: "x", contentType: `${SECRET} <script>`, bytes: 1 })).toContain("content-type unreadable");
  });

  it.each([
    ["", "empty"],
    ["  \n", "only whitespace"],
    ['  {"a":1}', "after whitespace, first character '{' (a JSON object)"],
    ["[1]", "first character '[' (a JSON array)"],
    ['"s"', "first character '\"' (a JSON string)"],
    [SECRET, "first character a letter (plain text)"],
    ["-1", "first character a digit or '-' (a number)"],
    ["\u0000\u0001", "first character a control or undecodable byte (binary data)"],
    ["\uFFFD\uFFFD", "first character a control or undecodable byte (binary data)"],
    ["é", "first character non-ASCII"],
    ["%PDF", "first character ASCII punctuation"],
  ])("classifies %j as %s", (body, expected) => {
    expect(firstCharacterClass(body)).toBe(expected);
  });

  it("describeBody counts UTF-8 bytes", () => {
    expect(describeBody("é<")).toBe("3 bytes, first character non-ASCII");
  });
});

describe("unusableCredentials (what the SDK's provider returned)", () => {
  const creds = { accessKeyId: "ASIA1", secretAccessKey: "s", sessionToken: "t", expiration: new Date("2026-11-29T18:00:00Z") };

  it("accepts usable credentials, with or without an expiry", () => {
    expect(unusableCredentials(creds)).toBeUndefined();
    expect(unusableCredentials({ accessKeyId: "AKIA1", secretAccessKey: "s" })).toBeUndefined();
  });

  it("refuses an Invalid Date expiry (the provider's reading of a bad Expiration), also once stretched by an outage", () => {
    expect(unusableCredentials({ ...creds, expiration: new Date("9999-99-99T99:99:99Z") })).toBe("an Expiration that is not a date");
    const stretched = { ...creds, originalExpiration: new Date(Number.NaN) };
    expect(unusableCredentials(stretched)).toBe("an Expiration that is not a date");
  });

  it("refuses empty keys", () => {
    expect(unusableCredentials({ ...creds, accessKeyId: "" })).toBe("no AccessKeyId");
    expect(unusableCredentials({ ...creds, secretAccessKey: "" })).toBe("no SecretAccessKey");
  });
});

describe("asCredentialsAnswerError (classifying the provider's failure)", () => {
  const parseError = (): unknown => {
    try {
      JSON.parse(`{"SecretAccessKey": "${SECRET}`);
    } catch (err) {
      return err;
    }
    throw new Error("expected JSON.parse to throw");
  };

  it("a SyntaxError (the provider's JSON.parse): typed, exit 75, naming IMDS, without the answer or a cause", () => {
    const htmlError = (() => {
      try {
        JSON.parse(`<html>${SECRET}</html>`);
      } catch (err) {
        return err;
      }
    })();
    expect((htmlError as Error).message).toContain(SECRET.slice(0, 4)); // why it is never shown
    for (const err of [parseError(), htmlError]) {
      const typed = asCredentialsAnswerError(err);
      expect(typed).toBeInstanceOf(IdentityError);
      expect(typed?.code).toBe(ErrorCode.imdsCredentialsInvalid);
      expect(typed?.exitCode).toBe(ExitCode.tempFail);
      expect(typed?.message).toMatch(/^IMDS answered the role's credentials with something that is not JSON/);
      expect(typed?.message).toContain("STS was not asked");
      expect(typed?.message).not.toContain("STS rejected");
      expect(typed?.cause).toBeUndefined();
      expectNoSecret(typed!.message);
    }
  });

  it("the provider's CredentialsProviderError for JSON without the fields: typed (75); with an HTTP status: not ours", () => {
    const invalid = Object.assign(new Error("Invalid response received from instance metadata service."), { name: "CredentialsProviderError" });
    expect(asCredentialsAnswerError(invalid)?.code).toBe(ErrorCode.imdsCredentialsInvalid);
    expect(asCredentialsAnswerError(Object.assign(invalid, { statusCode: 404 }))).toBeUndefined();
  });

  it("leaves everything else alone: network errors, the IMDSv1 refusal, STS's answers, other typed errors", () => {
    expect(asCredentialsAnswerError(Object.assign(new Error("connect ECONNREFUSED"), { name: "ProviderError" }))).toBeUndefined();
    expect(asCredentialsAnswerError(Object.assign(new Error("v1"), { name: "InstanceMetadataV1FallbackError" }))).toBeUndefined();
    expect(asCredentialsAnswerError(Object.assign(new Error("invalid token"), { name: "InvalidClientTokenId" }))).toBeUndefined();
    expect(asCredentialsAnswerError(new IdentityError(ErrorCode.imdsUnavailable, "down"))).toBeUndefined();
    expect(asCredentialsAnswerError("a string")).toBeUndefined();
  });

  it("keeps an error already typed", () => {
    const typed = new IdentityError(ErrorCode.imdsCredentialsInvalid, "IMDS answered ...");
    expect(asCredentialsAnswerError(typed)).toBe(typed);
  });
});

describe("safeProviderLogArgument", () => {
  it("never passes on a SyntaxError's message (it quotes the answer)", () => {
    let err: unknown;
    try {
      JSON.parse(`<p>${SECRET}</p>`);
    } catch (e) {
      err = e;
    }
    const text = safeProviderLogArgument(err);
    expect(text).toBe("SyntaxError: the IMDS answer is not valid JSON (content not logged)");
    expectNoSecret(text);
  });

  it("keeps other errors' name and message, and strings as they are", () => {
    expect(safeProviderLogArgument(Object.assign(new Error("Unable to connect"), { name: "ProviderError" }))).toBe("ProviderError: Unable to connect");
    expect(safeProviderLogArgument("Credential renew failed: ")).toBe("Credential renew failed: ");
  });
});
