/**
 * The drain, once receiving has stopped: messages still waiting for a slot go back to the queue at once, the rest get
 * until the deadline (heartbeats running), then their documents are aborted, given a short grace, and what is still
 * running is released; pending deletes are flushed last.
 */
import type { Logger } from "../logging/logger.js";
import type { DeleteBatcher } from "./delete-batcher.js";
import type { Heartbeat } from "./heartbeat.js";
import type { InFlight } from "./in-flight.js";

export interface DrainDeps {
  inFlight: Pick<InFlight, "size" | "running" | "abandon" | "settledWithin" | "abortRunning" | "settled">;
  deletes: Pick<DeleteBatcher, "drain">;
  heartbeat: Pick<Heartbeat, "close">;
  log: Logger;
  clock: () => number;
  /** After the documents are aborted at the deadline, how long they get to settle before release. */
  abortGraceMs: number;
}

/** Resolves once nothing is held any more; `timedOut` when the deadline passed with documents still running. */
export async function drain(deps: DrainDeps, deadline: number, drainTimeoutMs: number): Promise<{ timedOut: boolean }> {
  const { inFlight, log, clock } = deps;
  // Messages still waiting for a slot: another consumer can start them now rather than after the drain.
  const unstarted = await inFlight.abandon("unstarted", "not started before shutdown", "shutting down before it started");
  log.info(
    { inFlight: inFlight.size, releasedUnstarted: unstarted, drainTimeoutMs },
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
