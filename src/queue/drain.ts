/**
 * The drain, once receiving has stopped and no poll of ours is open: the messages that were still waiting for a slot
 * (detached by the stop) go back to the queue first, the rest get until the deadline (heartbeats running), then their
 * documents are aborted, given a short grace, and what is still running is released; pending deletes are flushed last.
 */
import type { Logger } from "../logging/logger.js";
import type { DeleteBatcher } from "./delete-batcher.js";
import type { Heartbeat } from "./heartbeat.js";
import type { Detached, InFlight } from "./in-flight.js";

export interface DrainDeps {
  inFlight: Pick<InFlight, "size" | "running" | "abandon" | "handBack" | "settledWithin" | "abortRunning" | "settled">;
  deletes: Pick<DeleteBatcher, "drain">;
  heartbeat: Pick<Heartbeat, "close">;
  log: Logger;
  clock: () => number;
  /** After the documents are aborted at the deadline, how long they get to settle before release. */
  abortGraceMs: number;
}

/**
 * Resolves once nothing is held any more; `timedOut` when the deadline passed with documents still running.
 * `unstarted`: the messages the stop detached before they started.
 */
export async function drain(
  deps: DrainDeps,
  unstarted: Detached,
  deadline: number,
  drainTimeoutMs: number,
): Promise<{ timedOut: boolean }> {
  const { inFlight, log, clock } = deps;
  // Another consumer can start these now rather than after the drain.
  const releasedUnstarted = await inFlight.handBack(unstarted, "not started before shutdown");
  log.info(
    { inFlight: inFlight.size, releasedUnstarted, drainTimeoutMs },
    "consumer stopping: receiving stopped, draining",
  );
  let timedOut = false;
  if (!(await inFlight.settledWithin(Math.max(0, deadline - clock())))) {
    timedOut = true;
    log.warn({ messages: inFlight.running }, "drain deadline reached; aborting in-flight documents");
    inFlight.abortRunning("shutting down");
    await inFlight.settledWithin(deps.abortGraceMs);
    await inFlight.abandon("running", "still running at the drain deadline", "shutting down");
    // Whatever is acknowledging still finishes; abandoned ones are no longer tracked.
    await inFlight.settled();
  }
  await deps.deletes.drain();
  deps.heartbeat.close();
  return { timedOut };
}
