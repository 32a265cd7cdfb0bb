// Fault injection per service for the reliability tests: a fraction of requests get 500 InternalError, 503 throttling,
// a connection reset, or added latency. A seeded generator makes a run repeatable: the same seed and the same
// sequence of requests give the same faults.
import type { Service } from "./errors.js";
import { createRng } from "../../reliability/lib/random.js";

export type FaultService = Extract<Service, "s3" | "sqs" | "sts">;

export interface FaultSettings {
  /** Fraction (0..1) answered 500 InternalError. */
  errorRate?: number;
  /** Fraction answered 503 (SlowDown for S3, RequestThrottled for SQS, Throttling for STS). */
  throttleRate?: number;
  /** Fraction whose connection is destroyed without an answer. */
  resetRate?: number;
  /** Latency added to a fraction (latencyRate, default all) of requests. */
  latencyMs?: number;
  latencyRate?: number;
  /**
   * "before": the request never reaches the emulator (default). "after": it is executed, then the answer is lost or
   * replaced (a DeleteMessage that happened although the caller saw an error).
   */
  phase?: "before" | "after";
  /** Only these operations (GetObject, ReceiveMessage…); default all. */
  operations?: string[];
}

export type FaultKind = "error" | "throttle" | "reset";

export interface FaultDecision {
  kind?: FaultKind;
  phase: "before" | "after";
  latencyMs: number;
}

export interface FaultCounters {
  error: number;
  throttle: number;
  reset: number;
  latency: number;
}

/** The repository's seeded generator (mulberry32): tiny, fast and good enough to spread faults evenly. */
function generator(seed: number): () => number {
  return createRng(seed).next;
}

const SERVICES: readonly FaultService[] = ["s3", "sqs", "sts"];
const SERVICE_SALT: Record<FaultService, number> = { s3: 0x5353, sqs: 0x5351, sts: 0x5354 };

function checkRate(name: string, value: number | undefined): void {
  if (value !== undefined && !(value >= 0 && value <= 1)) throw new RangeError(`${name} must be within 0..1, got ${value}`);
}

export class Faults {
  private readonly settings = new Map<FaultService, FaultSettings>();
  private readonly random = new Map<FaultService, () => number>();
  private readonly counts = new Map<FaultService, FaultCounters>();

  constructor(private seed = 1) {
    this.reseed(seed);
  }

  /** Replaces the settings of `service` (an empty object turns its faults off). */
  set(service: FaultService, settings: FaultSettings): void {
    checkRate("errorRate", settings.errorRate);
    checkRate("throttleRate", settings.throttleRate);
    checkRate("resetRate", settings.resetRate);
    checkRate("latencyRate", settings.latencyRate);
    const total = (settings.errorRate ?? 0) + (settings.throttleRate ?? 0) + (settings.resetRate ?? 0);
    if (total > 1) throw new RangeError(`errorRate + throttleRate + resetRate must not exceed 1, got ${total}`);
    this.settings.set(service, { ...settings });
  }

  get(service: FaultService): FaultSettings {
    return { ...(this.settings.get(service) ?? {}) };
  }

  /** Turns every fault off; counters are kept. */
  clear(): void {
    this.settings.clear();
  }

  /** Restarts the generators, so the next requests see the same faults as after the previous reseed with `seed`. */
  reseed(seed = this.seed): void {
    this.seed = seed;
    for (const service of SERVICES) this.random.set(service, generator(seed ^ SERVICE_SALT[service]));
  }

  counters(): Record<FaultService, FaultCounters> {
    const out = {} as Record<FaultService, FaultCounters>;
    for (const service of SERVICES) out[service] = { ...(this.counts.get(service) ?? { error: 0, throttle: 0, reset: 0, latency: 0 }) };
    return out;
  }

  /** Draws the fault (if any) for one request of `operation` on `service`, and counts it. */
  decide(service: FaultService, operation: string): FaultDecision {
    const settings = this.settings.get(service);
    const phase = settings?.phase ?? "before";
    if (!settings || (settings.operations && !settings.operations.includes(operation))) return { phase, latencyMs: 0 };
    const random = this.random.get(service)!;
    const counts = this.counts.get(service) ?? { error: 0, throttle: 0, reset: 0, latency: 0 };
    this.counts.set(service, counts);
    // Two draws per request whatever the settings, so changing one rate does not shift the others' sequence.
    const faultDraw = random();
    const latencyDraw = random();
    let latencyMs = 0;
    if (settings.latencyMs && latencyDraw < (settings.latencyRate ?? 1)) {
      latencyMs = settings.latencyMs;
      counts.latency += 1;
    }
    const error = settings.errorRate ?? 0;
    const throttle = error + (settings.throttleRate ?? 0);
    const reset = throttle + (settings.resetRate ?? 0);
    let kind: FaultKind | undefined;
    if (faultDraw < error) kind = "error";
    else if (faultDraw < throttle) kind = "throttle";
    else if (faultDraw < reset) kind = "reset";
    if (kind) counts[kind] += 1;
    return { ...(kind && { kind }), phase, latencyMs };
  }
}
