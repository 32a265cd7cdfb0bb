/**
 * Parse dispatch: what to do with one received message by what its body is. Malformed: logged and left alone for the
 * redrive policy; a test event or nothing for us: deleted; documents: handed back for the consumer to run.
 */
import type { Message } from "@aws-sdk/client-sqs";
import type { DocumentRef } from "../domain/document.js";
import type { Logger } from "../logging/logger.js";
import { parseReceiveCount } from "./backoff.js";
import type { DeleteBatcher } from "./delete-batcher.js";
import type { Emit } from "./events.js";
import { ignoredFields } from "./log-fields.js";
import type { ParsedNotification } from "./records.js";
import { handleOf, type Handle } from "./sqs-calls.js";

export interface DispatchDeps {
  /** The notification parser (pure). */
  parse: (body: string) => ParsedNotification;
  log: Logger;
  emit: Emit;
  deletes: Pick<DeleteBatcher, "enqueue">;
}

/** A message with documents to run. */
export interface Accepted {
  handle: Handle;
  receiveCount: number;
  documents: DocumentRef[];
}

/** The documents to run, or undefined when the message was dealt with here (deleted, or left for redrive). */
export function dispatch(message: Message, deps: DispatchDeps): Accepted | undefined {
  const { log, emit, deletes } = deps;
  const handle = handleOf(message);
  if (handle === undefined) {
    log.error({ messageId: message.MessageId }, "message without MessageId or ReceiptHandle; skipped");
    return undefined;
  }
  const { messageId } = handle;
  const receiveCount = parseReceiveCount(message.Attributes?.ApproximateReceiveCount);

  let parsed: ParsedNotification;
  try {
    parsed = deps.parse(message.Body ?? "");
  } catch (err) {
    // A parser bug: treat like a malformed body (never delete), but say it loudly.
    log.error(
      { messageId, receiveCount, outcome: "malformed", err },
      "notification parser threw; message left for the redrive policy",
    );
    emit({ type: "malformed", messageId, reason: "parser-error" });
    return undefined;
  }

  switch (parsed.kind) {
    case "malformed":
      // Not deleted and its visibility left alone: retrying cannot help, a shorter visibility would spin on a
      // queue without redrive, and the redrive policy moves it to the DLQ after maxReceiveCount receives.
      log.warn(
        { messageId, receiveCount, outcome: "malformed", reason: parsed.reason, detail: parsed.detail },
        "malformed notification; left for the redrive policy",
      );
      emit({ type: "malformed", messageId, reason: parsed.reason });
      return undefined;
    case "test-event":
      log.info({ messageId, receiveCount, outcome: "test-event" }, "s3:TestEvent acknowledged");
      void deletes.enqueue(handle);
      return undefined;
    case "ignored":
      log.info(
        { messageId, receiveCount, outcome: "ignored", ...ignoredFields(parsed.ignored) },
        "nothing to process; acknowledged",
      );
      void deletes.enqueue(handle);
      return undefined;
    case "documents":
      if (parsed.ignored.length > 0) {
        log.info({ messageId, receiveCount, ...ignoredFields(parsed.ignored) }, "some records of the message are skipped");
      }
      if (parsed.documents.length === 0) {
        log.info({ messageId, receiveCount, outcome: "ignored" }, "nothing to process; acknowledged");
        void deletes.enqueue(handle);
        return undefined;
      }
      return { handle, receiveCount, documents: parsed.documents };
  }
}
