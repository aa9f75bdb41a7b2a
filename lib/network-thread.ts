/**
 * ONNX Runtime sessions on a worker thread of their own.
 *
 * onnxruntime-node runs a session on the thread that calls run() and blocks that thread for the
 * whole inference (its run() is a synchronous call deferred by setImmediate). A network on the
 * main thread therefore stops everything else: reading packets from a live source, starting the
 * next decode, and any second network. A NetworkThread opens its own sessions of a bundle's
 * graphs on a worker thread, with its own ONNX Runtime thread budget and, on Linux, its own
 * scheduling priority (SCHED_IDLE or a raised nice value, set on the worker's thread before the
 * sessions exist, so that ONNX Runtime's intra-op threads, created with the sessions, inherit it).
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
import { addon } from './native';

/**
 * How a worker thread is scheduled against the process's other threads (Linux):
 * - 'idle': the SCHED_IDLE policy: it runs only on CPU time that no normal thread wants (a CFS
 *   weight of 3 against a normal thread's 1024);
 * - 'nice': a raised nice value (`nice` added): nice 10 is a weight of 110, about a tenth of a
 *   core beside each busy normal thread.
 */
export type ThreadPriority = 'idle' | 'nice';

/** The scheduling a worker thread really got (see NetworkThread.priority). */
export interface AppliedPriority {
  /** What applies: 'idle' (SCHED_IDLE) or 'nice' (the thread's nice value, possibly unchanged). */
  policy: ThreadPriority;
  /** The thread's nice value, or null where it could not be read or set. */
  nice: number | null;
  /** The thread's kernel id (Linux), or null. */
  tid: number | null;
  /** Set when 'idle' was asked for and not applied: why (the kernel's refusal, another platform). */
  fallbackReason?: string;
}

export interface NetworkThreadOptions {
  /** Graph name -> ONNX file. */
  graphs: Record<string, string>;
  /** Session options (plain data: they cross to the worker). */
  session: ort.InferenceSession.SessionOptions;
  /**
   * 'idle' puts the worker thread in SCHED_IDLE; where the kernel refuses it falls back to
   * 'nice' and says why (AppliedPriority.fallbackReason). Default 'nice'.
   */
  priority?: ThreadPriority;
  /**
   * With 'nice' (or the fallback from 'idle'): added to the worker thread's nice value (Linux;
   * capped at 19), so that its networks take the CPU mostly when higher-priority work leaves it.
   * Default 0.
   */
  nice?: number;
  /** For messages: what runs on this thread. */
  name: string;
}

/** What the worker answers (see network-thread-worker.ts). */
export type WorkerReply =
  | { kind: 'thread'; tid: number | null }
  | { kind: 'ready'; nice: number | null }
  | { kind: 'result'; id: number; data: Float32Array; dims: number[] }
  | { kind: 'error'; id: number; message: string; code?: string }
  | { kind: 'fatal'; message: string };

/** What the worker is asked. */
export type WorkerRequest =
  | { kind: 'start'; nice: number }
  | { kind: 'run'; id: number; graph: string; input: Float32Array; dims: number[] }
  | { kind: 'close' };

interface Pending {
  resolve: (t: FeatureTensor) => void;
  reject: (e: unknown) => void;
}

export class NetworkThread {
  readonly name: string;
  /** The scheduling the worker thread and its ONNX Runtime threads got. */
  readonly priority: AppliedPriority;
  #worker: Worker;
  #pending = new Map<number, Pending>();
  #nextId = 1;
  #closed: Promise<void> | null = null;
  #failure: ArSegError | null = null;
  #exited = false;

  private constructor(name: string, worker: Worker, priority: AppliedPriority) {
    this.name = name;
    this.#worker = worker;
    this.priority = priority;
    worker.on('message', (reply: WorkerReply) => this.#onReply(reply));
    worker.on('error', (err) =>
      this.#fail(new ArSegError(ErrorCodes.NATIVE, `the ${name} thread failed: ${err.message}`, { cause: err })),
    );
    worker.on('exit', (code) => {
      this.#exited = true;
      this.#fail(new ArSegError(ErrorCodes.CLOSED, `the ${name} thread exited (code ${code})`));
    });
  }

  /**
   * Starts the worker and opens its sessions; ERR_BUNDLE when a graph cannot be opened there.
   * The worker first reports its thread id; its scheduling is set then, before it opens the
   * sessions (SCHED_IDLE from here: a worker cannot load the addon, whose classes are per process).
   */
  static start(options: NetworkThreadOptions): Promise<NetworkThread> {
    const worker = new Worker(path.join(__dirname, 'network-thread-worker.js'), {
      workerData: { graphs: options.graphs, session: options.session },
    });
    const wanted = options.priority ?? 'nice';
    let applied: AppliedPriority = { policy: 'nice', nice: null, tid: null };
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
        if (reply.kind === 'thread') {
          applied = NetworkThread.#schedule(reply.tid, wanted);
          // SCHED_IDLE's weight does not depend on the nice value: leave it.
          const start: WorkerRequest = { kind: 'start', nice: applied.policy === 'idle' ? 0 : (options.nice ?? 0) };
          worker.postMessage(start);
          return;
        }
        cleanup();
        if (reply.kind === 'ready') resolve(new NetworkThread(options.name, worker, { ...applied, nice: reply.nice }));
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

  /** Puts thread `tid` in SCHED_IDLE when asked; the fallback and its reason otherwise. */
  static #schedule(tid: number | null, wanted: ThreadPriority): AppliedPriority {
    if (wanted !== 'idle') return { policy: 'nice', nice: null, tid };
    if (tid === null)
      return { policy: 'nice', nice: null, tid, fallbackReason: 'no thread id (SCHED_IDLE is a Linux policy)' };
    try {
      const policy = addon().setThreadIdle(tid);
      if (policy === 'idle') return { policy: 'idle', nice: null, tid };
      return {
        policy: 'nice',
        nice: null,
        tid,
        fallbackReason: `the thread's policy reads '${policy}' after the change`,
      };
    } catch (err) {
      return { policy: 'nice', nice: null, tid, fallbackReason: (err as Error).message };
    }
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
    if (reply.kind === 'ready' || reply.kind === 'thread') return;
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
