// The metrics a sequence of consumer events and document outcomes produces: the snapshot (log line, STATUS=) and the
// Prometheus exposition read back from the registry, name by name.
import { describe, expect, it } from "vitest";
import { METRIC_PREFIX, Metrics } from "../../../src/observability/metrics.js";
import { OutcomeCode } from "../../../src/errors/document.js";

/** `name{labels} value` lines of the exposition, as a map (comments dropped). */
async function scrape(metrics: Metrics): Promise<Map<string, number>> {
  const text = await metrics.registry.metrics();
  const samples = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const at = line.lastIndexOf(" ");
    samples.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return samples;
}

const NOW = Date.parse("2026-05-01T12:00:00.000Z");

function exercise(metrics: Metrics): void {
  metrics.onConsumerEvent({ type: "cycle", result: "received", received: 3 });
  metrics.onConsumerEvent({ type: "cycle", result: "received", received: 0 });
  metrics.onConsumerEvent({ type: "cycle", result: "receive-failed", received: 0 });
  metrics.onConsumerEvent({ type: "extended", count: 2 });
  metrics.onConsumerEvent({ type: "malformed", messageId: "m-bad", reason: "not-json" });
  metrics.onConsumerEvent({ type: "capped", messageId: "m-slow" });
  // A delete that failed for good counts; other calls' errors are counted elsewhere (receives) or not at all.
  metrics.onConsumerEvent({ type: "error", operation: "DeleteMessageBatch", error: new Error("x"), messageIds: ["m1"] });
  metrics.onConsumerEvent({ type: "error", operation: "ChangeMessageVisibility", error: new Error("x"), messageIds: ["m2"] });
  metrics.onConsumerEvent({ type: "error", operation: "ReceiveMessage", error: new Error("x"), messageIds: [] });
  for (let i = 0; i < 5; i++) metrics.documentStarted();
  // Processed 5 s after the S3 event, in 1.2 s.
  metrics.documentEnded({ status: "done", outputs: ["a.json"], bytesIn: 1000, bytesOut: 250 }, 1200, "2026-05-01T11:59:55.000Z", NOW);
  metrics.documentEnded({ status: "superseded", reason: "412" }, 30, "2026-05-01T11:59:00.000Z", NOW);
  metrics.documentEnded({ status: "retry", code: OutcomeCode.sinkWriteFailed, reason: "AccessDenied" }, 80, undefined, NOW);
  metrics.documentEnded(
    { status: "failed-permanently", code: "ENCRYPTED", reason: "encrypted", outputs: ["b.error.json"] },
    20,
    "2026-05-01T11:59:58.000Z",
    NOW,
  );
  metrics.onConsumerEvent({ type: "deleted", count: 2 });
  metrics.onConsumerEvent({ type: "returned", messageId: "m3", status: "retry", visibilityTimeout: 30 });
  metrics.onConsumerEvent({ type: "released", count: 1 });
}

describe("Metrics", () => {
  it("counts a sequence of events in the snapshot", () => {
    const metrics = new Metrics();
    exercise(metrics);
    expect(metrics.snapshot()).toEqual({
      sqs_messages_received_total: 3,
      sqs_messages_deleted_total: 2,
      sqs_messages_returned_total: 1,
      sqs_messages_released_total: 1,
      sqs_messages_malformed_total: 1,
      sqs_messages_delete_failed_total: 1,
      sqs_visibility_timeout_extensions_total: 2,
      sqs_receive_errors_total: 1,
      s3_objects_processed_total: 1,
      s3_objects_superseded_total: 1,
      s3_objects_failed_total: 1,
      s3_objects_rejected_total: 0,
      s3_objects_failed_permanently_total: 1,
      s3_bytes_processed_total: 1000,
      s3_bytes_written_total: 250,
      s3_objects_inflight: 1,
      sqs_messages_inflight: undefined,
      processing_time_ms_total: 1330,
      last_event_lag_ms: 5000,
    });
  });

  it("exposes the same numbers under doc_processor_ names, with Filebeat's where they fit", async () => {
    const metrics = new Metrics();
    exercise(metrics);
    const s = await scrape(metrics);
    const expected: Record<string, number> = {
      sqs_messages_received_total: 3,
      sqs_messages_deleted_total: 2,
      sqs_messages_returned_total: 1,
      sqs_messages_released_total: 1,
      sqs_messages_malformed_total: 1,
      sqs_messages_delete_failed_total: 1,
      sqs_visibility_timeout_extensions_total: 2,
      sqs_receive_errors_total: 1,
      s3_objects_processed_total: 1,
      s3_objects_superseded_total: 1,
      s3_objects_failed_total: 1,
      s3_objects_rejected_total: 0,
      s3_objects_failed_permanently_total: 1,
      s3_bytes_processed_total: 1000,
      s3_bytes_written_total: 250,
      s3_objects_inflight: 1,
    };
    for (const [name, value] of Object.entries(expected)) expect(s.get(METRIC_PREFIX + name), name).toBe(value);

    // Processing time by outcome (seconds): the done document took 1.2 s.
    const hist = `${METRIC_PREFIX}s3_object_processing_seconds`;
    expect(s.get(`${hist}_count{outcome="done"}`)).toBe(1);
    expect(s.get(`${hist}_sum{outcome="done"}`)).toBeCloseTo(1.2);
    expect(s.get(`${hist}_bucket{le="1",outcome="done"}`)).toBe(0);
    expect(s.get(`${hist}_bucket{le="2.5",outcome="done"}`)).toBe(1);
    expect(s.get(`${hist}_count{outcome="superseded"}`)).toBe(1);
    expect(s.get(`${hist}_count{outcome="retry"}`)).toBe(1);

    // Lag from the S3 event, for processed documents only: 5 s.
    const lag = `${METRIC_PREFIX}s3_event_lag_seconds`;
    expect(s.get(`${lag}_count`)).toBe(1);
    expect(s.get(`${lag}_sum`)).toBe(5);
    expect(s.get(`${lag}_bucket{le="2.5"}`)).toBe(0);
    expect(s.get(`${lag}_bucket{le="5"}`)).toBe(1);
  });

  it("registers exactly these metric names, all prefixed and typed", async () => {
    const metrics = new Metrics();
    const names = (await metrics.registry.getMetricsAsJSON()).map((m) => `${m.name} ${m.type}`).sort();
    expect(names).toEqual(
      [
        "s3_bytes_processed_total counter",
        "s3_bytes_written_total counter",
        "s3_event_lag_seconds histogram",
        "s3_object_processing_seconds histogram",
        "s3_objects_failed_permanently_total counter",
        "s3_objects_failed_total counter",
        "s3_objects_inflight gauge",
        "s3_objects_processed_total counter",
        "s3_objects_rejected_total counter",
        "s3_objects_superseded_total counter",
        "sqs_messages_delete_failed_total counter",
        "sqs_messages_deleted_total counter",
        "sqs_messages_inflight gauge",
        "sqs_messages_malformed_total counter",
        "sqs_messages_received_total counter",
        "sqs_messages_released_total counter",
        "sqs_messages_returned_total counter",
        "sqs_receive_errors_total counter",
        "sqs_visibility_timeout_extensions_total counter",
      ].map((n) => METRIC_PREFIX + n),
    );
  });

  it("reads the messages in flight from the attached source at scrape and snapshot time", async () => {
    const metrics = new Metrics();
    let inFlight = 2;
    metrics.observeInFlightMessages(() => inFlight);
    expect((await scrape(metrics)).get(`${METRIC_PREFIX}sqs_messages_inflight`)).toBe(2);
    inFlight = 7;
    expect((await scrape(metrics)).get(`${METRIC_PREFIX}sqs_messages_inflight`)).toBe(7);
    expect(metrics.snapshot().sqs_messages_inflight).toBe(7);
  });

  it("keeps each instance's registry apart (two daemons' metrics in one process do not collide)", async () => {
    const a = new Metrics();
    const b = new Metrics();
    a.onConsumerEvent({ type: "cycle", result: "received", received: 4 });
    expect((await scrape(a)).get(`${METRIC_PREFIX}sqs_messages_received_total`)).toBe(4);
    expect((await scrape(b)).get(`${METRIC_PREFIX}sqs_messages_received_total`)).toBe(0);
  });

  it("ignores an event time it cannot parse (no lag observed) and never counts down", async () => {
    const metrics = new Metrics();
    metrics.documentStarted();
    metrics.documentEnded({ status: "done", outputs: [], bytesIn: 0, bytesOut: 0 }, 10, "not a date", NOW);
    metrics.onConsumerEvent({ type: "deleted", count: -3 });
    const s = await scrape(metrics);
    expect(s.get(`${METRIC_PREFIX}s3_event_lag_seconds_count`)).toBe(0);
    expect(metrics.snapshot().last_event_lag_ms).toBeUndefined();
    expect(s.get(`${METRIC_PREFIX}sqs_messages_deleted_total`)).toBe(0);
  });

  it("summarises the counters and the last lag in one STATUS= line", () => {
    const metrics = new Metrics();
    exercise(metrics);
    metrics.observeInFlightMessages(() => 1);
    expect(metrics.statusLine()).toBe("processed 1, failed 1, rejected 0, in flight 1, received 3, deleted 2, lag 5.0s");
    expect(new Metrics().statusLine()).toBe("processed 0, failed 0, rejected 0, in flight 0, received 0, deleted 0");
  });
});

describe("Metrics: delete failures", () => {
  it("counts each message of a DeleteMessage or DeleteMessageBatch error, and no other operation's", () => {
    const metrics = new Metrics();
    const failed = (operation: "DeleteMessage" | "DeleteMessageBatch" | "ChangeMessageVisibilityBatch", ids: string[]) =>
      metrics.onConsumerEvent({ type: "error", operation, error: new Error("x"), messageIds: ids });
    failed("DeleteMessage", ["a"]);
    failed("DeleteMessageBatch", ["b", "c"]);
    failed("ChangeMessageVisibilityBatch", ["d", "e"]);
    expect(metrics.snapshot().sqs_messages_delete_failed_total).toBe(3);
  });
});
