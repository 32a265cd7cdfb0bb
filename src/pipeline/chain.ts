/**
 * One run of the processor chain over one opened source object. Every processor reads its own branch of the single
 * GetObject body (source-feed.ts) and its outputs are written in order to their keys. The run's state (the first
 * failure, the refusals, the keys written) lives in one object, so each step reads as a method.
 *
 * A PermanentDocumentError does not stop the others: they finish and write their outputs, then `<key>.error.json`
 * records why the document cannot be processed. Any other failure aborts the chain and wins (the message is retried,
 * and everything is redone then).
 */
import { PassThrough, type Readable } from "node:stream";
import type { SourceObjectInfo } from "../domain/document.js";
import { describeAwsError } from "../errors/aws.js";
import { isPermanentDocumentError, OutcomeCode } from "../errors/document.js";
import { errorMessage } from "../errors/message.js";
import type { Processor, ProcessorLogger, ProcessorOutput } from "../processors/types.js";
import { writeOutput, type SinkTarget } from "../storage/sink.js";
import { writeErrorRecord } from "./error-record.js";
import type { Outcome } from "./outcome.js";
import { checkOutputs, destroyOutputs, planOutput, refusalOf, type Failure, type Refusal } from "./outputs.js";
import { feedBranches } from "./source-feed.js";

export interface ChainDeps {
  sink: SinkTarget;
  outputPrefix: string;
  /** The chain, in order; all of them read the same single GetObject stream. */
  processors: readonly Processor[];
  log: ProcessorLogger;
}

export const aborted = (where: string): Failure => ({ status: "retry", code: OutcomeCode.aborted, reason: `aborted ${where}` });

export class ChainRun {
  readonly #deps: ChainDeps;
  readonly #info: SourceObjectInfo;
  /** One signal for the whole chain: aborted by the consumer, or by the first failure so the rest stops early. */
  readonly #controller = new AbortController();
  #failure: Failure | undefined;
  readonly #refusals: Refusal[] = [];
  readonly #written: string[] = [];
  readonly #keys = new Set<string>();
  #bytesIn = 0;
  #bytesOut = 0;

  constructor(deps: ChainDeps, info: SourceObjectInfo) {
    this.#deps = deps;
    this.#info = info;
  }

  /** Runs the chain over `body` (Content-Length `contentLength`); resolves to the document's Outcome, never rejects. */
  async run(body: Readable, contentLength: number | undefined, docSignal: AbortSignal): Promise<Outcome> {
    const { signal } = this.#controller;
    const onDocAbort = (): void => this.#fail(aborted("while processing"), docSignal.reason);
    docSignal.addEventListener("abort", onDocAbort, { once: true });
    const runs = this.#deps.processors.map((processor) => ({ processor, input: new PassThrough() }));
    const branches = runs.map((r) => r.input);
    // A processor may destroy its input with an error nobody listens to any more; its own rejection reports it.
    for (const b of branches) b.on("error", () => undefined);
    body.on("error", () => undefined);
    const release = (): void => {
      body.destroy();
      for (const b of branches) b.destroy();
    };
    signal.addEventListener("abort", release, { once: true });

    const feeding = feedBranches(body, branches, contentLength).then(
      (n) => {
        this.#bytesIn = n;
      },
      (err: unknown) => this.#sourceFailed(err),
    );
    await Promise.all([feeding, ...runs.map((r) => this.#runProcessor(r.processor, r.input))]);
    // Past this line a late abort changes nothing: everything already settled.
    docSignal.removeEventListener("abort", onDocAbort);
    signal.removeEventListener("abort", release);
    if (!body.destroyed) body.destroy();

    if (this.#failure !== undefined) return this.#failure;
    if (this.#refusals.length > 0) {
      return writeErrorRecord(this.#deps.sink, this.#deps.outputPrefix, this.#info, this.#refusals, this.#written, signal);
    }
    return { status: "done", outputs: this.#written, bytesIn: this.#bytesIn, bytesOut: this.#bytesOut };
  }

  #fail(f: Failure, err?: unknown): void {
    if (this.#failure !== undefined) return; // errors after the first are mostly its consequences
    this.#failure = f;
    this.#deps.log.debug({ err, key: this.#info.key, code: f.code }, f.reason);
    this.#controller.abort(err instanceof Error ? err : new Error(f.reason));
  }

  #sourceFailed(err: unknown): void {
    const reason = `reading the source failed: ${errorMessage(err)}`;
    this.#fail({ status: "retry", code: OutcomeCode.sourceReadFailed, reason }, err);
  }

  async #runProcessor(processor: Processor, input: Readable): Promise<void> {
    const { log } = this.#deps;
    try {
      let produced: unknown;
      try {
        produced = await processor.process({ input, source: this.#info, signal: this.#controller.signal, log });
      } catch (err) {
        if (isPermanentDocumentError(err)) {
          // Not a chain failure: the others go on, and the error record is written once they are done.
          this.#refusals.push(refusalOf(processor, err));
          log.debug({ key: this.#info.key, processor: processor.name, code: err.code }, err.message);
          return;
        }
        const reason = `processor ${processor.name} failed: ${errorMessage(err)}`;
        this.#fail({ status: "retry", code: OutcomeCode.processorFailed, reason }, err);
        return;
      }
      const outputs = checkOutputs(produced, processor.name);
      if (typeof outputs === "string") {
        destroyOutputs(produced);
        this.#fail({ status: "retry", code: OutcomeCode.processorFailed, reason: outputs });
        return;
      }
      await this.#writeOutputs(processor, outputs);
    } finally {
      // The processor is finished with its input; let the feed stop waiting for it.
      if (!input.readableEnded) input.destroy();
    }
  }

  /** In order, one at a time: simple, and memory stays bounded by one upload per processor. */
  async #writeOutputs(processor: Processor, outputs: readonly ProcessorOutput[]): Promise<void> {
    const lineage = { source: this.#info, processor: { name: processor.name, version: processor.version } };
    for (const output of outputs) {
      if (this.#failure !== undefined) {
        destroyOutputs([output]);
        continue;
      }
      const plan = planOutput(this.#deps.outputPrefix, this.#info.key, processor.name, output.suffix, this.#keys);
      if (!plan.ok) {
        destroyOutputs([output]);
        this.#fail(plan.failure, plan.err);
        continue;
      }
      const { key } = plan;
      this.#keys.add(key);
      try {
        const result = await writeOutput(this.#deps.sink, key, output, lineage, this.#controller.signal);
        this.#written.push(key);
        this.#bytesOut += result.bytes;
        this.#deps.log.debug({ key, bytes: result.bytes, method: result.method }, "output written");
      } catch (err) {
        const reason = `writing ${key} failed: ${describeAwsError(err)}`;
        this.#fail({ status: "retry", code: OutcomeCode.sinkWriteFailed, reason }, err);
      }
    }
  }
}
