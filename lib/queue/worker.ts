/**
 * `Worker`: runs the queue's jobs until closed. One per GPU or per machine; each job runs with a
 * model kept loaded from job to job (model-pool.ts).
 *
 * - The networks, CReFF, decoding and label maps run in the addon's and ONNX Runtime's threads,
 *   off the main thread, so BullMQ's lock renewal (every lockDuration / 2) keeps running during
 *   long jobs; a worker that dies stops renewing, and after lockDuration another worker's
 *   stalled-job check puts its job back in the queue (up to maxStalledCount times, then the job
 *   fails).
 * - Results are written atomically (job-output.ts); a result already on disk is reused.
 * - Input errors fail the job at once (UnrecoverableError); other failures are retried with the
 *   job's backoff (retry-policy.ts). Progress is reported as { done, total } frames.
 * - close() stops taking jobs and lets running ones finish for `grace` ms, then hands them back
 *   (each goes back to the queue's waiting list, not counted as an attempt); handBack() does it
 *   at once. A job whose lock was lost (another worker has it now) is stopped.
 */
import * as os from 'node:os';
import type { ConnectionOptions, Job, Worker as BullWorker } from 'bullmq';
import { Bullmq, loadBullmq } from './bullmq';
import type { ExecutionDevice } from '../bundle';
import type { ArSeg } from '../pipeline';
import { ArSegError, ErrorCodes, invalidArg } from '../errors';
import { integerIn, oneOf, optionsObject } from '../options';
import { checkTarget, QueueTarget, redactRedisUrl, workerRedisOptions } from './connection';
import { isJobId, JOB_FORMAT, JobData } from './jobs';
import { JobManifest, JobOutput, jobDir, MANIFEST_FORMAT, readJobManifest } from './job-output';
import { verifyInputs } from './inputs';
import { ModelPool } from './model-pool';
import { decodeFailure, encodeFailure, isInputError } from './retry-policy';
import { runSegmentJob } from './segment-job';
import { runEvalJob } from './eval-job';
import { checkStop, JobContext } from './job-context';

export interface WorkerOptions extends QueueTarget {
  /** Jobs run at once (each with its own loaded model). Default 1. */
  concurrency?: number;
  /** Where the networks run. Default 'cpu'. */
  device?: ExecutionDevice;
  /** ONNX Runtime intra-op threads per model. Default: the machine's cores / concurrency. */
  threads?: number;
  /** ms a job's lock lasts without renewal (renewed every half of it). Default 30000. */
  lockDuration?: number;
  /** ms between stalled-job checks. Default 30000. */
  stalledInterval?: number;
  /** Times a job may stall (its worker died) before it fails. Default 1. */
  maxStalledCount?: number;
  /** ms close() lets running jobs finish before handing them back. Default 30000. */
  grace?: number;
  /**
   * ms close() then waits for Redis (handing jobs back, closing the connections) before it drops
   * the connections and rejects with ERR_QUEUE. Default 10000.
   */
  closeTimeout?: number;
  /** ms between progress reports of a running job. Default 1000. */
  progressInterval?: number;
  /** The worker's name in logs and manifests. Default hostname:pid. */
  name?: string;
  /** Called for each event (a log line, for the CLI). */
  onEvent?: (event: WorkerEvent) => void;
}

/** What a worker reports (`ar-seg worker` logs one line per event). */
export type WorkerEvent =
  | WorkerReadyEvent
  | JobStartEvent
  | JobDoneEvent
  | JobFailedEvent
  | JobStoppedEvent
  | WorkerErrorEvent
  | WorkerClosingEvent
  | WorkerClosedEvent;

/** The worker is connected and taking jobs. */
export interface WorkerReadyEvent {
  /** The event's kind. */
  type: 'ready';
  /** The worker's name. */
  worker: string;
  /** The queue's name. */
  queue: string;
  /** The Redis URL, its password replaced by '***'. */
  redis: string;
  /** Jobs run at once. */
  concurrency: number;
  /** Where the networks run. */
  device: ExecutionDevice;
  /** ONNX Runtime threads per model. */
  threads: number;
}

/** The job and clip an event is about. */
export interface JobEventBase {
  /** The job's id. */
  jobId: string;
  /** The clip's name. */
  clip: string;
}

/** A job started. */
export interface JobStartEvent extends JobEventBase {
  /** The event's kind. */
  type: 'start';
  /** The attempt's number, from 1 (a stalled job restarts with the same number). */
  attempt: number;
}

/** A job completed. */
export interface JobDoneEvent extends JobEventBase {
  /** The event's kind. */
  type: 'done';
  /** Frames segmented, or evaluated per mode. */
  frames: number;
  /** Seconds the job took (0 when reused). */
  seconds: number;
  /** The result was already on disk. */
  reused: boolean;
}

/** A job's attempt failed. */
export interface JobFailedEvent extends JobEventBase {
  /** The event's kind. */
  type: 'failed';
  /** The error code (ERR_... or the system's E...; null when none). */
  code: string | null;
  /** The error message. */
  message: string;
  /** Whether the job will be retried (a transient failure with attempts left). */
  retry: boolean;
}

/** A job stopped unfinished: handed back to the queue, or its lock lost (another worker runs it). */
export interface JobStoppedEvent extends JobEventBase {
  /** The event's kind. */
  type: 'handed-back' | 'lock-lost';
}

/** A worker-level error, such as Redis unreachable (reported at most once per 10 s per message). */
export interface WorkerErrorEvent {
  /** The event's kind. */
  type: 'error';
  /** What failed. */
  message: string;
}

/** close() started: no new jobs; running ones finish within `grace` ms or are handed back. */
export interface WorkerClosingEvent {
  /** The event's kind. */
  type: 'closing';
  /** Jobs running. */
  running: number;
  /** Milliseconds they may still take. */
  grace: number;
}

/** Every job has ended and the connections are closed. */
export interface WorkerClosedEvent {
  /** The event's kind. */
  type: 'closed';
}

/** What a job returns to BullMQ (its return value in Redis); the result itself is in OUT/<jobId>/manifest.json. */
export interface JobReturn {
  /** The result's directory, OUT/<jobId>. */
  dir: string;
  /** Frames segmented, or evaluated per mode. */
  frames: number;
  /** Seconds the execution took (0 when the result was reused). */
  seconds: number;
  /** The result was already on disk (an earlier execution's or run's). */
  reused: boolean;
  /** The worker's name. */
  worker: string;
}

interface Running {
  clip: string;
  stop: AbortController;
}

/**
 * Runs the queue's jobs until closed (see the file's comment and docs/queue.md): start with
 * `Worker.start(options)`, stop with `close()`.
 */
export class Worker {
  /** The worker's name (hostname:pid unless given). */
  readonly name: string;
  /** Jobs run at once. */
  readonly concurrency: number;
  #bull: BullWorker<JobData, JobReturn>;
  #pool: ModelPool;
  #o: WorkerOptions;
  #running = new Map<string, Running>();
  #handingBack = false;
  #closing: Promise<void> | null = null;
  /** close() waited for Redis past its bound: the connections stop reconnecting. */
  #gaveUp = false;
  #lastError = { message: '', at: 0 };
  #ready: WorkerEvent;

  #bullmq: Bullmq;

  private constructor(o: WorkerOptions, bullmq: Bullmq) {
    this.#bullmq = bullmq;
    const { queue } = checkTarget(o);
    optionsObject(o);
    integerIn('concurrency', o.concurrency, 1, 256, 1);
    if (o.threads !== undefined) integerIn('threads', o.threads, 1, Infinity);
    integerIn('lockDuration', o.lockDuration, 100, Infinity, 30000);
    integerIn('stalledInterval', o.stalledInterval, 100, Infinity, 30000);
    integerIn('maxStalledCount', o.maxStalledCount, 0, Infinity, 1);
    integerIn('grace', o.grace, 0, Infinity, 30000);
    integerIn('closeTimeout', o.closeTimeout, 0, Infinity, 10000);
    integerIn('progressInterval', o.progressInterval, 0, Infinity, 1000);
    oneOf('device', o.device, ['cpu', 'cuda'], 'cpu');
    this.#o = o;
    this.name = o.name ?? `${os.hostname()}:${process.pid}`;
    this.concurrency = o.concurrency ?? 1;
    const threads = o.threads ?? Math.max(1, Math.floor(os.availableParallelism() / this.concurrency));
    this.#pool = new ModelPool({ device: o.device ?? 'cpu', threads, capacity: this.concurrency });
    this.#bull = new bullmq.Worker<JobData, JobReturn>(queue, (job, token) => this.#process(job, token), {
      // BullMQ makes its connections (one of them blocking) from these ioredis options.
      // Their reconnection stops once close() gives up on Redis (see close()).
      connection: { url: o.redis, ...workerRedisOptions(() => this.#gaveUp) } as ConnectionOptions,
      autorun: false,
      concurrency: this.concurrency,
      lockDuration: o.lockDuration ?? 30000,
      stalledInterval: o.stalledInterval ?? 30000,
      maxStalledCount: o.maxStalledCount ?? 1,
      name: this.name,
    });
    this.#bull.on('error', (err) => this.#error(err));
    this.#bull.on('lockRenewalFailed', (ids: string[]) => {
      for (const id of ids) this.#running.get(id)?.stop.abort('lock-lost');
    });
    this.#ready = {
      type: 'ready',
      worker: this.name,
      queue,
      redis: redactRedisUrl(o.redis),
      concurrency: this.concurrency,
      device: o.device ?? 'cpu',
      threads,
    };
  }

  /**
   * Starts a worker: resolves once it is connected and taking jobs. While Redis cannot be reached
   * it keeps trying (errors are reported as events).
   */
  static async start(o: WorkerOptions): Promise<Worker> {
    const w = new Worker(o, await loadBullmq());
    void w.#bull.run().catch((err) => w.#error(err));
    await w.#bull.waitUntilReady();
    w.#emit(w.#ready);
    return w;
  }

  /** Jobs running now. */
  get running(): number {
    return this.#running.size;
  }

  #emit(e: WorkerEvent): void {
    try {
      this.#o.onEvent?.(e);
    } catch {
      // a logger's failure must not fail a job
    }
  }

  /** Connection errors repeat every reconnection attempt while Redis is down: reported once per 10 s. */
  #error(err: unknown): void {
    const message = err instanceof Error ? err.message : String(err);
    const now = Date.now();
    if (message === this.#lastError.message && now - this.#lastError.at < 10000) return;
    this.#lastError = { message, at: now };
    this.#emit({ type: 'error', message });
  }

  async #process(job: Job<JobData, JobReturn>, token: string | undefined): Promise<JobReturn> {
    const id = job.id ?? '';
    const data = job.data;
    if (!isJobId(id) || data?.format !== JOB_FORMAT || (data.kind !== 'segment' && data.kind !== 'eval'))
      throw new this.#bullmq.UnrecoverableError(
        encodeFailure(
          invalidArg(`job ${id}: not an ar-seg job of format ${JOB_FORMAT} (submitted by another version?)`),
        ),
      );
    const clip = data.clip.name;
    const stop = new AbortController();
    this.#running.set(id, { clip, stop });
    if (this.#handingBack) stop.abort('hand-back');
    const attempt = job.attemptsMade + 1;
    this.#emit({ type: 'start', jobId: id, clip, attempt });
    const startedAt = new Date();
    let output: JobOutput | null = null;
    let seg: ArSeg | null = null;
    try {
      const existing = await readJobManifest(data.out, id);
      if (existing) return this.#finish(id, clip, data, existing, true);
      const ctx: JobContext = { signal: stop.signal, onProgress: this.#progressReporter(job) };
      const labelFiles = await verifyInputs(data);
      checkStop(ctx);
      seg = await this.#pool.acquire(data.model.dir, data.model.hash);
      checkStop(ctx);
      output = await JobOutput.begin(data.out, id);
      const result =
        data.kind === 'segment'
          ? await runSegmentJob(seg, data, output.dir, jobDir(data.out, id), ctx)
          : await runEvalJob(seg, data, labelFiles!, ctx);
      const finishedAt = new Date();
      const manifest: JobManifest = {
        format: MANIFEST_FORMAT,
        jobId: id,
        kind: data.kind,
        clip: data.clip,
        ...(data.kind === 'eval' ? { labels: data.labels } : {}),
        model: { ...data.model, name: seg.bundle.manifest.name },
        options: data.options,
        result,
        execution: {
          worker: this.name,
          attempt,
          startedAt: startedAt.toISOString(),
          finishedAt: finishedAt.toISOString(),
          seconds: (finishedAt.getTime() - startedAt.getTime()) / 1000,
        },
      };
      const published = await output.publish(manifest);
      return this.#finish(id, clip, data, published.manifest, published.reused);
    } catch (err) {
      await output?.discard().catch(() => undefined);
      const reason: unknown = stop.signal.aborted ? stop.signal.reason : null;
      if (reason === 'hand-back') {
        await job.moveToWait(token);
        this.#emit({ type: 'handed-back', jobId: id, clip });
        throw new this.#bullmq.WaitingError();
      }
      if (reason === 'lock-lost') {
        this.#emit({ type: 'lock-lost', jobId: id, clip });
        throw new ArSegError(ErrorCodes.ABORTED, `job ${id}: this worker lost the job's lock (another worker runs it)`);
      }
      const failure = encodeFailure(err);
      const { code, message } = decodeFailure(failure);
      if (isInputError(err)) {
        this.#emit({ type: 'failed', jobId: id, clip, code, message, retry: false });
        throw new this.#bullmq.UnrecoverableError(failure);
      }
      this.#emit({ type: 'failed', jobId: id, clip, code, message, retry: attempt < (job.opts.attempts ?? 1) });
      throw new Error(failure);
    } finally {
      if (seg) this.#pool.release(seg);
      this.#running.delete(id);
    }
  }

  #finish(id: string, clip: string, data: JobData, m: JobManifest, reused: boolean): JobReturn {
    const r = m.result as { frames?: number; seconds?: number };
    const ret: JobReturn = {
      dir: jobDir(data.out, id),
      frames: r.frames ?? 0,
      seconds: reused ? 0 : m.execution.seconds,
      reused,
      worker: this.name,
    };
    this.#emit({ type: 'done', jobId: id, clip, frames: ret.frames, seconds: ret.seconds, reused });
    return ret;
  }

  /** Progress as { done, total }, at most once per progressInterval, one update in flight at a time. */
  #progressReporter(job: Job): JobContext['onProgress'] {
    const every = this.#o.progressInterval ?? 1000;
    let last = 0;
    let inFlight = false;
    return (done, total) => {
      const now = Date.now();
      if (inFlight || now - last < every) return;
      last = now;
      inFlight = true;
      job
        .updateProgress({ done, total })
        .catch(() => undefined)
        .finally(() => {
          inFlight = false;
        });
    };
  }

  /** Hands every running job back to the queue now (they stop within a frame). */
  handBack(): void {
    this.#handingBack = true;
    for (const r of this.#running.values()) r.stop.abort('hand-back');
  }

  /**
   * Ends the worker's two Redis connections (BullMQ's escape hatch to its raw ioredis clients)
   * without waiting for Redis. ioredis ends a connection ('end', waiting commands failed) when
   * its socket closes; one that is waiting between two reconnection attempts has no socket, and
   * disconnect() then only clears the timer: BullMQ, which waits for that 'end', would wait
   * forever. For such a connection this does what ioredis' close handler does.
   */
  async #dropConnections(): Promise<void> {
    const backend = this.#bull.backend as { client?: Promise<unknown>; blockingClient?: Promise<unknown> };
    for (const pending of [backend.client, backend.blockingClient]) {
      const client = (await Promise.race([
        Promise.resolve(pending).catch(() => null),
        sleep(200).then(() => null),
      ])) as IORedisLike | null;
      if (!client || client.status === 'end') continue;
      try {
        client.disconnect();
        if (client.status === 'reconnecting') {
          client.flushQueue?.(new Error('Connection is closed.'));
          client.setStatus?.('end');
        }
      } catch {
        // already ended
      }
    }
  }

  /**
   * Stops taking jobs; running ones may finish for `grace` ms (default: the worker's), then are
   * handed back. Resolves when every job has ended and the connections are closed.
   *
   * It never waits for an unreachable Redis for longer than `closeTimeout` ms (default: the
   * worker's) after the grace period: it then drops the connections, stops the running jobs and
   * rejects with ERR_QUEUE. Jobs that could not be handed back go back to the queue once their
   * lock expires (another worker's stalled-job check).
   */
  close(o: { grace?: number; closeTimeout?: number } = {}): Promise<void> {
    this.#closing ??= (async () => {
      const grace = o.grace ?? this.#o.grace ?? 30000;
      const bound = o.closeTimeout ?? this.#o.closeTimeout ?? 10000;
      this.#emit({ type: 'closing', running: this.#running.size, grace });
      const handBack = setTimeout(() => this.handBack(), grace);
      let expire: NodeJS.Timeout | undefined;
      const expired = new Promise<'expired'>(
        (resolve) => (expire = setTimeout(() => resolve('expired'), grace + bound)),
      );
      // BullMQ's close waits for the running jobs and for Redis to acknowledge QUIT: with Redis
      // gone (and workers' connections retrying forever) that would never end.
      const closing = this.#bull.close().then(
        () => 'closed' as const,
        () => 'closed' as const,
      );
      let error: ArSegError | null = null;
      try {
        if ((await Promise.race([closing, expired])) === 'expired') {
          const running = this.#running.size;
          this.handBack();
          // Stop reconnecting and end both connections now: every command waiting for Redis
          // (BullMQ's QUIT, a hand-back's moveToWait, the blocking fetch) fails, so BullMQ's
          // close and the running jobs end, and no timer keeps the process alive.
          this.#gaveUp = true;
          await this.#dropConnections();
          await Promise.race([closing, sleep(3000)]);
          error = new ArSegError(
            ErrorCodes.QUEUE,
            `closing worker ${this.name}: Redis (${redactRedisUrl(this.#o.redis)}) did not answer within ` +
              `${bound} ms after the grace period; connections dropped` +
              (running > 0 ? `; ${running} running job(s) go back to the queue when their lock expires` : ''),
          );
        }
      } finally {
        clearTimeout(handBack);
        clearTimeout(expire);
        await this.#pool.close();
      }
      this.#emit({ type: 'closed' });
      if (error) throw error;
    })();
    return this.#closing;
  }
}

/** The part of an ioredis client that #dropConnections uses. */
interface IORedisLike {
  status: string;
  disconnect(): void;
  flushQueue?(error: Error): void;
  setStatus?(status: string): void;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms).unref());
