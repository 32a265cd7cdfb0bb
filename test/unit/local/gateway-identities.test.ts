// Identities (key formats, session ARNs, expiry, live policies) and the seeded fault injector.
import { describe, expect, it } from "vitest";
import { Faults } from "../../local/gateway/faults.js";
import { ADMIN_POLICY, Identities, standardIdentities, uploaderPolicy } from "../../local/gateway/identities.js";
import { evaluate } from "../../local/iam/index.js";

describe("Identities", () => {
  it("issues per-instance role sessions with AWS-shaped ids", () => {
    const ids = new Identities({ accountId: "111122223333" });
    const role = ids.addRole("EC2DocumentProcessorRole", []);
    expect(role.roleId).toMatch(/^AROA[A-Z2-7]{17}$/);
    const s = ids.issueRoleSession("EC2DocumentProcessorRole", "i-0123456789abcdef0", 3600);
    expect(s.accessKeyId).toMatch(/^ASIA[A-Z2-7]{16}$/);
    expect(s.secretAccessKey).toHaveLength(40);
    expect(s.sessionToken.length).toBeGreaterThan(100);
    expect(s.expiration.getMilliseconds()).toBe(0);
    expect(s.principal).toEqual({
      kind: "assumed-role",
      arn: "arn:aws:sts::111122223333:assumed-role/EC2DocumentProcessorRole/i-0123456789abcdef0",
      userId: `${role.roleId}:i-0123456789abcdef0`,
      accountId: "111122223333",
      name: "EC2DocumentProcessorRole",
      sessionName: "i-0123456789abcdef0",
    });
    expect(ids.lookup(s.accessKeyId)).toMatchObject({ secretAccessKey: s.secretAccessKey, sessionToken: s.sessionToken });
    expect(() => ids.issueRoleSession("NoSuchRole", "i-1", 60)).toThrow(/no role/);
  });

  it("keeps old sessions valid until they expire, and reports expiry by the clock", () => {
    let now = Date.UTC(2026, 0, 1);
    const ids = new Identities({ now: () => now });
    ids.addRole("R", []);
    const first = ids.issueRoleSession("R", "i-1", 3600);
    const second = ids.issueRoleSession("R", "i-1", 3600);
    expect(ids.isExpired(ids.lookup(first.accessKeyId)!)).toBe(false);
    expect(ids.isExpired(ids.lookup(second.accessKeyId)!)).toBe(false);
    now += 3600_000;
    expect(ids.isExpired(ids.lookup(first.accessKeyId)!)).toBe(true);
    const fresh = ids.issueRoleSession("R", "i-1", 3600);
    ids.expireSession(fresh.accessKeyId);
    expect(ids.isExpired(ids.lookup(fresh.accessKeyId)!)).toBe(true);
    expect(ids.isExpired(ids.lookup(ids.issueRoleSession("R", "i-1", 0).accessKeyId)!)).toBe(true);
  });

  it("users have AKIA keys that never expire; a changed role policy applies to existing sessions", () => {
    const ids = new Identities();
    const u = ids.addUser("cli-user", [ADMIN_POLICY]);
    expect(u.accessKeyId).toMatch(/^AKIA[A-Z2-7]{16}$/);
    expect(u.principal.arn).toBe("arn:aws:iam::123456789012:user/cli-user");
    expect(u.principal.userId).toMatch(/^AIDA/);
    expect(ids.isExpired(ids.lookup(u.accessKeyId)!)).toBe(false);
    ids.addRole("R", [ADMIN_POLICY]);
    const s = ids.issueRoleSession("R", "i-1", 3600);
    expect(ids.policiesFor(s.principal)).toEqual([ADMIN_POLICY]);
    ids.setRolePolicies("R", []);
    expect(ids.policiesFor(s.principal)).toEqual([]);
  });

  it("the standard cast: uploader writes source only, cli-user has the role's policy", () => {
    const rolePolicy = { Version: "2012-10-17", Statement: [{ Effect: "Allow" as const, Action: "s3:GetObject", Resource: "arn:aws:s3:::src/*" }] };
    const cast = standardIdentities({ sourceBucket: "src", rolePolicy });
    const { identities } = cast;
    const up = identities.policiesFor(cast.uploader.principal);
    expect(evaluate(up, { action: "s3:PutObject", resource: "arn:aws:s3:::src/a" }).effect).toBe("allow");
    expect(evaluate(up, { action: "s3:PutObject", resource: "arn:aws:s3:::out/a" }).effect).toBe("implicit-deny");
    expect(evaluate(up, { action: "s3:GetObject", resource: "arn:aws:s3:::out/a" }).effect).toBe("allow");
    expect(evaluate(up, { action: "sqs:ReceiveMessage", resource: "arn:aws:sqs:us-east-1:123456789012:q" }).effect).toBe("implicit-deny");
    expect(identities.policiesFor(cast.cliUser.principal)).toEqual([rolePolicy]);
    expect(identities.policiesFor(cast.admin.principal)).toEqual([ADMIN_POLICY]);
    expect(identities.policiesFor(identities.issueRoleSession("SomeOtherRole", "i-1", 60).principal)).toEqual([]);
    expect(uploaderPolicy("src").Statement).toHaveLength(2);
  });
});

describe("Faults", () => {
  it("injects at the configured rates, repeatably for a seed, and counts what it injected", () => {
    const run = (seed: number) => {
      const faults = new Faults(seed);
      faults.set("s3", { errorRate: 0.2, throttleRate: 0.1, resetRate: 0.1 });
      const kinds: string[] = Array.from({ length: 1000 }, () => faults.decide("s3", "GetObject").kind ?? "none");
      return [...kinds, JSON.stringify(faults.counters().s3)];
    };
    const a = run(7);
    expect(run(7)).toEqual(a);
    expect(run(8)).not.toEqual(a);
    const count = (kind: string) => a.filter((k) => k === kind).length;
    expect(count("error")).toBeGreaterThan(150);
    expect(count("error")).toBeLessThan(250);
    expect(count("throttle")).toBeGreaterThan(60);
    expect(count("throttle")).toBeLessThan(140);
    expect(count("reset")).toBeGreaterThan(60);
    expect(count("reset")).toBeLessThan(140);
    expect(JSON.parse(a.at(-1)!)).toEqual({ error: count("error"), throttle: count("throttle"), reset: count("reset"), latency: 0 });
  });

  it("is per service and per operation, and off after clear()", () => {
    const faults = new Faults(1);
    faults.set("sqs", { errorRate: 1, operations: ["ReceiveMessage"], latencyMs: 5, phase: "after" });
    expect(faults.decide("s3", "GetObject")).toEqual({ phase: "before", latencyMs: 0 });
    expect(faults.decide("sqs", "DeleteMessage")).toEqual({ phase: "after", latencyMs: 0 });
    expect(faults.decide("sqs", "ReceiveMessage")).toEqual({ kind: "error", phase: "after", latencyMs: 5 });
    expect(faults.counters().sqs).toEqual({ error: 1, throttle: 0, reset: 0, latency: 1 });
    faults.clear();
    expect(faults.decide("sqs", "ReceiveMessage").kind).toBeUndefined();
  });

  it("refuses rates outside 0..1 or adding up to more than 1", () => {
    const faults = new Faults();
    expect(() => faults.set("s3", { errorRate: 1.5 })).toThrow(RangeError);
    expect(() => faults.set("s3", { errorRate: 0.6, resetRate: 0.6 })).toThrow(RangeError);
  });
});
