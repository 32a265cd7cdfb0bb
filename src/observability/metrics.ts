/**
 * Counters fed by consumer events and document outcomes (core code makes no metrics calls of its own). Names follow
 * Filebeat's aws-s3 input where they fit, so operators recognise them. Summarised in the periodic log line and in
 * systemd's STATUS=.
 */
import type { ConsumerEvent } from "../queue/consumer.js";
import type { Outcome } from "../pipeline/outcome.js";

export interface MetricsSnapshot {
  sqs_messages_received_total: number;
  sqs_messages_deleted_total: number;
  sqs_messages_returned_total: number;
  sqs_messages_released_total: number;
  sqs_messages_malformed_total: number;
  sqs_visibility_timeout_extensions_total: number;
  sqs_receive_errors_total: number;
  s3_objects_processed_total: number;
  s3_objects_superseded_total: number;
  s3_objects_failed_total: number;
  s3_objects_rejected_total: number;
  s3_bytes_processed_total: number;
  s3_bytes_written_total: number;
  documents_inflight: number;
  processing_time_ms_total: number;
  /** Time from the S3 event to the end of processing, for the last document done. */
  last_event_lag_ms: number | undefined;
}

export class Metrics {
  private readonly values: MetricsSnapshot = {
    sqs_messages_received_total: 0,
    sqs_messages_deleted_total: 0,
    sqs_messages_returned_total: 0,
    sqs_messages_released_total: 0,
    sqs_messages_malformed_total: 0,
    sqs_visibility_timeout_extensions_total: 0,
    sqs_receive_errors_total: 0,
    s3_objects_processed_total: 0,
    s3_objects_superseded_total: 0,
    s3_objects_failed_total: 0,
    s3_objects_rejected_total: 0,
    s3_bytes_processed_total: 0,
    s3_bytes_written_total: 0,
    documents_inflight: 0,
    processing_time_ms_total: 0,
    last_event_lag_ms: undefined,
  };

  onConsumerEvent(event: ConsumerEvent): void {
    const v = this.values;
    switch (event.type) {
      case "cycle":
        v.sqs_messages_received_total += event.received;
        if (event.result === "receive-failed") v.sqs_receive_errors_total++;
        break;
      case "deleted":
        v.sqs_messages_deleted_total += event.count;
        break;
      case "returned":
        v.sqs_messages_returned_total++;
        break;
      case "released":
        v.sqs_messages_released_total += event.count;
        break;
      case "extended":
        v.sqs_visibility_timeout_extensions_total += event.count;
        break;
      case "malformed":
        v.sqs_messages_malformed_total++;
        break;
      case "capped":
      case "error":
        break;
    }
  }

  documentStarted(): void {
    this.values.documents_inflight++;
  }

  documentEnded(outcome: Outcome, durationMs: number, eventTime: string | undefined, now: number): void {
    const v = this.values;
    v.documents_inflight--;
    v.processing_time_ms_total += durationMs;
    switch (outcome.status) {
      case "done": {
        v.s3_objects_processed_total++;
        v.s3_bytes_processed_total += outcome.bytesIn;
        v.s3_bytes_written_total += outcome.bytesOut;
        const t = eventTime === undefined ? NaN : Date.parse(eventTime);
        if (Number.isFinite(t)) v.last_event_lag_ms = Math.max(0, now - t);
        break;
      }
      case "superseded":
        v.s3_objects_superseded_total++;
        break;
      case "retry":
        v.s3_objects_failed_total++;
        break;
      case "rejected":
        v.s3_objects_rejected_total++;
        break;
    }
  }

  snapshot(): MetricsSnapshot {
    return { ...this.values };
  }

  /** One short line for systemd's STATUS=. */
  statusLine(): string {
    const v = this.values;
    return (
      `processed ${v.s3_objects_processed_total}, failed ${v.s3_objects_failed_total}, ` +
      `rejected ${v.s3_objects_rejected_total}, in flight ${v.documents_inflight}, ` +
      `received ${v.sqs_messages_received_total}, deleted ${v.sqs_messages_deleted_total}`
    );
  }
}
