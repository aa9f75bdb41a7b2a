/**
 * The worker side of NetworkThread (network-thread.ts): reports its thread id and waits while the
 * parent sets its scheduling policy, raises its nice value as asked, opens one ONNX Runtime
 * session per graph (whose threads inherit both), then serves runs one at a time until asked to
 * close.
 */
import { readlinkSync } from 'node:fs';
import * as os from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import * as ort from 'onnxruntime-node';
import type { WorkerReply, WorkerRequest } from './network-thread';

interface Data {
  graphs: Record<string, string>;
  session: ort.InferenceSession.SessionOptions;
}

/** This thread's kernel id (Linux: /proc/thread-self names it), or null. */
function threadId(): number | null {
  try {
    const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
    return Number.isInteger(tid) && tid > 0 ? tid : null;
  } catch {
    return null;
  }
}

/**
 * Linux keeps a nice value per thread: /proc/thread-self names this thread's id, and
 * setpriority(PRIO_PROCESS, tid) (os.setPriority) changes this thread alone. Threads created
 * afterwards by this thread (ONNX Runtime's pool) inherit it. Raising it needs no privilege.
 */
function lowerPriority(by: number): number | null {
  try {
    const tid = threadId();
    if (tid === null) return null;
    if (by > 0) os.setPriority(tid, Math.min(19, os.getPriority(tid) + by));
    return os.getPriority(tid);
  } catch {
    return null;
  }
}

function post(reply: WorkerReply, transfer: ArrayBuffer[] = []): void {
  parentPort!.postMessage(reply, transfer);
}

/** The parent's 'start', sent once it has set this thread's scheduling policy. */
function started(): Promise<{ nice: number }> {
  return new Promise((resolve) => {
    const onStart = (request: WorkerRequest) => {
      if (request.kind !== 'start') return;
      parentPort!.off('message', onStart);
      resolve(request);
    };
    parentPort!.on('message', onStart);
  });
}

async function main(): Promise<void> {
  const data = workerData as Data;
  const start = started();
  post({ kind: 'thread', tid: threadId() });
  const nice = lowerPriority((await start).nice);
  const sessions = new Map<string, ort.InferenceSession>();
  try {
    for (const [name, file] of Object.entries(data.graphs))
      sessions.set(name, await ort.InferenceSession.create(file, data.session));
  } catch (err) {
    post({ kind: 'fatal', message: (err as Error).message });
    return;
  }
  post({ kind: 'ready', nice });
  // One request at a time, in order: a run is synchronous once started, but its start is
  // deferred (setImmediate), and 'close' must not release a session under a waiting run.
  let chain = Promise.resolve();
  parentPort!.on('message', (request: WorkerRequest) => {
    chain = chain.then(() => serve(request, sessions));
  });
}

async function serve(request: WorkerRequest, sessions: Map<string, ort.InferenceSession>): Promise<void> {
  {
    if (request.kind === 'start') return;
    if (request.kind === 'close') {
      for (const s of sessions.values()) await s.release().catch(() => undefined);
      parentPort!.close();
      return;
    }
    const session = sessions.get(request.graph);
    if (!session) {
      post({
        kind: 'error',
        id: request.id,
        message: `no graph '${request.graph}' on this thread`,
        code: 'ERR_NATIVE',
      });
      return;
    }
    try {
      const out = await session.run({
        [session.inputNames[0]]: new ort.Tensor('float32', request.input, request.dims),
      });
      const t = out[session.outputNames[0]];
      let result = t.data as Float32Array;
      // Move the buffer when the output owns all of it; otherwise send a copy of the view.
      if (result.byteOffset !== 0 || result.byteLength !== result.buffer.byteLength) result = result.slice();
      post({ kind: 'result', id: request.id, data: result, dims: [...t.dims] }, [result.buffer as ArrayBuffer]);
    } catch (err) {
      post({ kind: 'error', id: request.id, message: (err as Error).message, code: 'ERR_NATIVE' });
    }
  }
}

void main();
