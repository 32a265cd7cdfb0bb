// The faults scenario's failure figures come from the daemons' metrics snapshots: the last one of each daemon, summed.
import { describe, expect, it } from "vitest";
import { finalMetrics } from "./scenarios/faults.scenario.js";

describe("finalMetrics", () => {
  it("takes each daemon's last snapshot and sums a counter over the daemons", () => {
    const m = finalMetrics([
      { daemon: 0, msg: "status", metrics: { sqs_receive_errors_total: 1, sqs_messages_delete_failed_total: 0 } },
      { daemon: 1, msg: "ReceiveMessage failed; backing off" },
      { daemon: 0, msg: "stopped", metrics: { sqs_receive_errors_total: 4, sqs_messages_delete_failed_total: 2 } },
      { daemon: 1, msg: "stopped", metrics: { sqs_receive_errors_total: 3 } },
    ]);
    expect(m.daemons).toBe(2);
    expect(m.total("sqs_receive_errors_total")).toBe(7);
    expect(m.total("sqs_messages_delete_failed_total")).toBe(2);
  });

  it("counts no daemon without a snapshot, and nothing from log text", () => {
    const m = finalMetrics([
      { daemon: 0, msg: "ReceiveMessage failed; backing off" },
      { daemon: 0, msg: "delete failed; the message will be redelivered" },
    ]);
    expect(m.daemons).toBe(0);
    expect(m.total("sqs_receive_errors_total")).toBe(0);
  });
});
