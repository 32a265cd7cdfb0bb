/**
 * Counters, gauges and histograms fed by consumer events and document outcomes (core code makes no metrics calls and
 * keeps no counters of its own: these are the one set). Names follow Filebeat's aws-s3 input where they fit, so
 * operators recognise them. The same numbers feed the periodic log line and systemd's STATUS= (plain values, read
 * synchronously) and a prom-client registry that prometheus.ts serves when metricsPort is set.
 */
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import type { ConsumerEvent } from "../queue/events.js";
import type { Outcome } from "../pipeline/outcome.js";

/** Prefix of every metric this daemon defines (process metrics from prom-client keep their standard names). */
export const METRIC_PREFIX = "doc_processor_";

export interface MetricsSnapshot {
  sqs_messages_received_total: number;
  sqs_messages_deleted_total: number;
  sqs_messages_returned_total: number;
  sqs_messages_released_total: number;
  sqs_messages_malformed_total: number;
  sqs_messages_delete_failed_total: number;
  sqs_visibility_timeout_extensions_total: number;
  sqs_receive_errors_total: number;
  s3_objects_processed_total: number;
  s3_objects_superseded_total: number;
  s3_objects_failed_total: number;
  s3_objects_rejected_total: number;
  s3_objects_failed_permanently_total: number;
  s3_bytes_processed_total: number;
  s3_bytes_written_total: number;
  /** Documents being processed now. */
  s3_objects_inflight: number;
  /** Messages the consumer holds now (running or being acknowledged); undefined until a source is attached. */
  sqs_messages_inflight: number | undefined;
  processing_time_ms_total: number;
  /** Time from the S3 event to the end of processing, for the last document done. */
  last_event_lag_ms: number | undefined;
}

type CounterKey = {
  [K in keyof MetricsSnapshot]: K extends `${string}_total` ? (K extends "processing_time_ms_total" ? never : K) : never;
}[keyof MetricsSnapshot];

// Each counter is exported as doc_processor_<key>; the help text is what an operator reads next to it.
const COUNTER_HELP: Record<CounterKey, string> = {
  sqs_messages_received_total: "SQS messages received.",
  sqs_messages_deleted_total: "SQS messages deleted: every document done, or nothing to process.",
  sqs_messages_returned_total: "SQS messages not acknowledged and given a backoff visibility timeout (redelivered later).",
  sqs_messages_released_total: "SQS messages made visible again at once because the daemon was stopping.",
  sqs_messages_malformed_total: "SQS messages whose body is not a notification; left for the redrive policy.",
  sqs_messages_delete_failed_total:
    "SQS messages whose delete failed for good: they will be redelivered (a duplicate risk, not a loss).",
  sqs_visibility_timeout_extensions_total: "Visibility timeout extensions of messages still being processed.",
  sqs_receive_errors_total: "ReceiveMessage calls that failed.",
  s3_objects_processed_total: "Source objects processed, outputs written.",
  s3_objects_superseded_total: "Source objects overwritten after their event (412 on If-Match): a newer event follows.",
  s3_objects_failed_total: "Source objects whose processing failed and will be retried.",
  s3_objects_rejected_total: "Source objects that can never succeed as they are (e.g. too large); left for the DLQ.",
  s3_objects_failed_permanently_total:
    "Source objects a processor found unprocessable (corrupt, encrypted, unsupported); an .error.json says why.",
  s3_bytes_processed_total: "Bytes read from source objects that were processed.",
  s3_bytes_written_total: "Bytes written to the output bucket.",
};

// Seconds: documents take from milliseconds (small text) to maxProcessingSeconds (900 by default).
const PROCESSING_BUCKETS = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900];
// Seconds from the S3 event: a healthy daemon stays in the first buckets; a backlog shows in the last.
const LAG_BUCKETS = [0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 21_600, 86_400];

export interface MetricsOptions {
  /** Registry the metrics are registered in; default a new one (never prom-client's global registry). */
  registry?: Registry;
}

export class Metrics {
  readonly registry: Registry;
  private readonly values: MetricsSnapshot = {
    sqs_messages_received_total: 0,
    sqs_messages_deleted_total: 0,
    sqs_messages_returned_total: 0,
    sqs_messages_released_total: 0,
    sqs_messages_malformed_total: 0,
    sqs_messages_delete_failed_total: 0,
    sqs_visibility_timeout_extensions_total: 0,
    sqs_receive_errors_total: 0,
    s3_objects_processed_total: 0,
    s3_objects_superseded_total: 0,
    s3_objects_failed_total: 0,
    s3_objects_rejected_total: 0,
    s3_objects_failed_permanently_total: 0,
    s3_bytes_processed_total: 0,
    s3_bytes_written_total: 0,
    s3_objects_inflight: 0,
    sqs_messages_inflight: undefined,
    processing_time_ms_total: 0,
    last_event_lag_ms: undefined,
  };
  private readonly counters: Record<CounterKey, Counter>;
  private readonly objectsInflight: Gauge;
  private readonly processingSeconds: Histogram<"outcome">;
  private readonly eventLagSeconds: Histogram;
  private inFlightMessages: (() => number) | undefined;

  constructor(options: MetricsOptions = {}) {
    const registry = (this.registry = options.registry ?? new Registry());
    const registers = [registry];
    this.counters = Object.fromEntries(
      Object.entries(COUNTER_HELP).map(([key, help]) => [key, new Counter({ name: METRIC_PREFIX + key, help, registers })]),
    ) as Record<CounterKey, Counter>;
    this.objectsInflight = new Gauge({
      name: `${METRIC_PREFIX}s3_objects_inflight`,
      help: "Source objects being processed now.",
      registers,
    });
    this.processingSeconds = new Histogram({
      name: `${METRIC_PREFIX}s3_object_processing_seconds`,
      help: "Time to process one source object (read, processors, write), by outcome.",
      labelNames: ["outcome"],
      buckets: PROCESSING_BUCKETS,
      registers,
    });
    this.eventLagSeconds = new Histogram({
      name: `${METRIC_PREFIX}s3_event_lag_seconds`,
      help: "Time from the S3 event (eventTime) to the end of processing, for objects processed.",
      buckets: LAG_BUCKETS,
      registers,
    });
    const read = () => this.inFlightMessages?.();
    new Gauge({
      name: `${METRIC_PREFIX}sqs_messages_inflight`,
      help: "SQS messages held by the daemon now (being processed or acknowledged).",
      registers,
      collect() {
        const n = read();
        if (n !== undefined) this.set(n);
      },
    });
  }

  /**
   * Where the number of messages in flight comes from (the consumer knows it; events alone cannot tell it exactly):
   * read when the metrics are scraped or snapshotted.
   */
  observeInFlightMessages(read: () => number): void {
    this.inFlightMessages = read;
  }

  onConsumerEvent(event: ConsumerEvent): void {
    switch (event.type) {
      case "cycle":
        this.count("sqs_messages_received_total", event.received);
        if (event.result === "receive-failed") this.count("sqs_receive_errors_total");
        break;
      case "deleted":
        this.count("sqs_messages_deleted_total", event.count);
        break;
      case "returned":
        this.count("sqs_messages_returned_total");
        break;
      case "released":
        this.count("sqs_messages_released_total", event.count);
        break;
      case "extended":
        this.count("sqs_visibility_timeout_extensions_total", event.count);
        break;
      case "malformed":
        this.count("sqs_messages_malformed_total");
        break;
      case "error":
        // The consumer reports a delete's error only once it failed for good (after its retry).
        if (event.operation === "DeleteMessage" || event.operation === "DeleteMessageBatch") {
          this.count("sqs_messages_delete_failed_total", event.messageIds.length);
        }
        break;
      case "capped":
        break;
    }
  }

  documentStarted(): void {
    this.values.s3_objects_inflight++;
    this.objectsInflight.inc();
  }

  documentEnded(outcome: Outcome, durationMs: number, eventTime: string | undefined, now: number): void {
    const v = this.values;
    v.s3_objects_inflight--;
    this.objectsInflight.dec();
    v.processing_time_ms_total += durationMs;
    this.processingSeconds.observe({ outcome: outcome.status }, durationMs / 1000);
    switch (outcome.status) {
      case "done": {
        this.count("s3_objects_processed_total");
        this.count("s3_bytes_processed_total", outcome.bytesIn);
        this.count("s3_bytes_written_total", outcome.bytesOut);
        const t = eventTime === undefined ? NaN : Date.parse(eventTime);
        if (Number.isFinite(t)) {
          const lag = Math.max(0, now - t);
          v.last_event_lag_ms = lag;
          this.eventLagSeconds.observe(lag / 1000);
        }
        break;
      }
      case "superseded":
        this.count("s3_objects_superseded_total");
        break;
      case "retry":
        this.count("s3_objects_failed_total");
        break;
      case "rejected":
        this.count("s3_objects_rejected_total");
        break;
      case "failed-permanently":
        this.count("s3_objects_failed_permanently_total");
        break;
      default: {
        // A new outcome must get its counter: this stops compiling until it has one.
        const unhandled: never = outcome;
        void unhandled;
      }
    }
  }

  snapshot(): MetricsSnapshot {
    return { ...this.values, sqs_messages_inflight: this.inFlightMessages?.() };
  }

  /** One short line for systemd's STATUS=. */
  statusLine(): string {
    const v = this.snapshot();
    const lag = v.last_event_lag_ms === undefined ? "" : `, lag ${formatSeconds(v.last_event_lag_ms)}`;
    return (
      `processed ${v.s3_objects_processed_total}, failed ${v.s3_objects_failed_total}, ` +
      `rejected ${v.s3_objects_rejected_total}, in flight ${v.s3_objects_inflight}, ` +
      `received ${v.sqs_messages_received_total}, deleted ${v.sqs_messages_deleted_total}${lag}`
    );
  }

  private count(key: CounterKey, n = 1): void {
    // Counters only go up; a negative or NaN amount would be a bug upstream, never worth a throw here.
    if (!(n > 0)) return;
    this.values[key] += n;
    this.counters[key].inc(n);
  }
}

function formatSeconds(ms: number): string {
  return ms < 10_000 ? `${(ms / 1000).toFixed(1)}s` : `${Math.round(ms / 1000)}s`;
}
