/**
 * ONNX Runtime sessions on a worker thread of their own.
 *
 * onnxruntime-node runs a session on the thread that calls run() and blocks that thread for the
 * whole inference (its run() is a synchronous call deferred by setImmediate). A network on the
 * main thread therefore stops everything else: reading packets from a live source, starting the
 * next decode, and any second network. A NetworkThread opens its own sessions of a bundle's
 * graphs on a worker thread, with its own ONNX Runtime thread budget and, on Linux, its own
 * scheduling priority (a nice value set on the worker's thread before the sessions exist, so
 * that ONNX Runtime's intra-op threads, created with the sessions, inherit it).
 *
 * Inputs are copied to the worker (the decoder's tensors live in native memory that cannot be
 * moved); features come back moved, not copied. Runs on one thread are served one at a time in
 * the order asked.
 */
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import type * as ort from 'onnxruntime-node';
import type { FeatureTensor } from './creff';
import { ArSegError, ErrorCodes, toArSegError } from './errors';

export interface NetworkThreadOptions {
  /** Graph name -> ONNX file. */
  graphs: Record<string, string>;
  /** Session options (plain data: they cross to the worker). */
  session: ort.InferenceSession.SessionOptions;
  /**
   * Added to the worker thread's nice value (Linux; 0..19 after adding), so that its networks
   * take the CPU only when higher-priority work leaves it. Default 0.
   */
  nice?: number;
  /** For messages: what runs on this thread. */
  name: string;
}

/** What the worker answers (see network-thread-worker.ts). */
export type WorkerReply =
  | { kind: 'ready'; nice: number | null }
  | { kind: 'result'; id: number; data: Float32Array; dims: number[] }
  | { kind: 'error'; id: number; message: string; code?: string }
  | { kind: 'fatal'; message: string };

/** What the worker is asked. */
export type WorkerRequest =
  { kind: 'run'; id: number; graph: string; input: Float32Array; dims: number[] } | { kind: 'close' };

interface Pending {
  resolve: (t: FeatureTensor) => void;
  reject: (e: unknown) => void;
}

export class NetworkThread {
  readonly name: string;
  /** The worker thread's nice value after the change, or null where it could not be read or set. */
  readonly nice: number | null;
  #worker: Worker;
  #pending = new Map<number, Pending>();
  #nextId = 1;
  #closed: Promise<void> | null = null;
  #failure: ArSegError | null = null;
  #exited = false;

  private constructor(name: string, worker: Worker, nice: number | null) {
    this.name = name;
    this.#worker = worker;
    this.nice = nice;
    worker.on('message', (reply: WorkerReply) => this.#onReply(reply));
    worker.on('error', (err) =>
      this.#fail(new ArSegError(ErrorCodes.NATIVE, `the ${name} thread failed: ${err.message}`, { cause: err })),
    );
    worker.on('exit', (code) => {
      this.#exited = true;
      this.#fail(new ArSegError(ErrorCodes.CLOSED, `the ${name} thread exited (code ${code})`));
    });
  }

  /** Starts the worker and opens its sessions; ERR_BUNDLE when a graph cannot be opened there. */
  static start(options: NetworkThreadOptions): Promise<NetworkThread> {
    const worker = new Worker(path.join(__dirname, 'network-thread-worker.js'), {
      workerData: { graphs: options.graphs, session: options.session, nice: options.nice ?? 0 },
    });
    return new Promise((resolve, reject) => {
      const onError = (err: Error) => {
        cleanup();
        reject(
          new ArSegError(ErrorCodes.NATIVE, `the ${options.name} thread did not start: ${err.message}`, { cause: err }),
        );
      };
      const onExit = (code: number) => {
        cleanup();
        reject(
          new ArSegError(ErrorCodes.NATIVE, `the ${options.name} thread exited (code ${code}) before it was ready`),
        );
      };
      const onMessage = (reply: WorkerReply) => {
        cleanup();
        if (reply.kind === 'ready') resolve(new NetworkThread(options.name, worker, reply.nice));
        else {
          void worker.terminate();
          const message = reply.kind === 'fatal' || reply.kind === 'error' ? reply.message : 'unexpected reply';
          reject(new ArSegError(ErrorCodes.BUNDLE, `the ${options.name} thread cannot open its networks: ${message}`));
        }
      };
      const cleanup = () => {
        worker.off('error', onError);
        worker.off('exit', onExit);
        worker.off('message', onMessage);
      };
      worker.on('error', onError);
      worker.on('exit', onExit);
      worker.on('message', onMessage);
    });
  }

  /** Runs one graph on one input ([1, 3, h, w]) and gives its first output. */
  run(graph: string, input: Float32Array, dims: readonly number[]): Promise<FeatureTensor> {
    if (this.#failure) return Promise.reject(this.#failure);
    if (this.#closed) return Promise.reject(new ArSegError(ErrorCodes.CLOSED, `the ${this.name} thread is closed`));
    const id = this.#nextId++;
    return new Promise<FeatureTensor>((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      const request: WorkerRequest = { kind: 'run', id, graph, input, dims: [...dims] };
      this.#worker.postMessage(request);
    });
  }

  /** Runs waiting here (queued or running). */
  get busy(): number {
    return this.#pending.size;
  }

  #onReply(reply: WorkerReply): void {
    if (reply.kind === 'fatal') {
      this.#fail(new ArSegError(ErrorCodes.NATIVE, `the ${this.name} thread failed: ${reply.message}`));
      return;
    }
    if (reply.kind === 'ready') return;
    const pending = this.#pending.get(reply.id);
    if (!pending) return;
    this.#pending.delete(reply.id);
    if (reply.kind === 'result') pending.resolve({ data: reply.data, dims: reply.dims });
    else pending.reject(toArSegError(Object.assign(new Error(`${this.name}: ${reply.message}`), { code: reply.code })));
  }

  #fail(err: ArSegError): void {
    this.#failure ??= err;
    for (const p of this.#pending.values()) p.reject(this.#failure);
    this.#pending.clear();
  }

  /**
   * Rejects every waiting run with ERR_CLOSED at once, then asks the worker to release its
   * sessions and exit; resolves when it has (after the run in progress, if any, returns: ONNX
   * Runtime cannot interrupt a run). Idempotent.
   */
  close(): Promise<void> {
    if (this.#closed) return this.#closed;
    this.#fail(new ArSegError(ErrorCodes.CLOSED, `the ${this.name} thread was closed`));
    const exited = this.#exited
      ? Promise.resolve()
      : new Promise<void>((resolve) => this.#worker.once('exit', () => resolve()));
    if (!this.#exited) this.#worker.postMessage({ kind: 'close' } satisfies WorkerRequest);
    this.#closed = exited;
    return exited;
  }
}
