/**
 * `status`: where each job of a run stands (BullMQ's state, progress, attempts, the failure's
 * code and message), and the counts.
 */
import type { Job, Queue } from 'bullmq';
import { loadBullmq } from './bullmq';
import type IORedis from 'ioredis';
import { ArSegError, ErrorCodes } from '../errors';
import { checkTarget, closeQuietly, connectClient, queueError, QueueTarget } from './connection';
import type { JobData } from './jobs';
import { jobDir, readJobManifest } from './job-output';
import { decodeFailure } from './retry-policy';
import { loadRun, RunRecord } from './run';

/**
 * A job's state: BullMQ's, or 'missing' when the job is no longer in Redis and its result is
 * not on disk either (submit the run again to compute it). A job removed from Redis whose
 * result is on disk counts as completed.
 */
export type JobStateName = 'completed' | 'failed' | 'active' | 'waiting' | 'delayed' | 'missing';

/** A running job's progress. */
export interface JobProgress {
  /** Frames done (for evaluation, over every mode). */
  done: number;
  /** Frames expected (null: unknown). */
  total: number | null;
}

/** Why a job's attempt failed. */
export interface JobFailure {
  /** ERR_... or the system's E... (null: none recorded, e.g. BullMQ's 'job stalled more than allowable limit'). */
  code: string | null;
  /** The message. */
  message: string;
}

/** Where one job of a run stands. */
export interface JobStatus {
  /** The job's id. */
  id: string;
  /** The clip's name (as the run's clips list it; the first, when a clip was given twice). */
  clip: string;
  /** Its state. */
  state: JobStateName;
  /** A running job's frames: done, and expected (null: unknown). */
  progress: JobProgress | null;
  /** Attempts that ended: failed ones (then retried, or final) and the one that completed. */
  attempts: number;
  /** A failed job's code and message; for a job waiting to retry, the last attempt's. */
  failure: JobFailure | null;
  /** The job's result directory (OUT/<jobId>). */
  dir: string;
}

/** Where a run stands. */
export interface RunStatus {
  /** The run's id. */
  run: string;
  /** Segmentation or evaluation jobs. */
  kind: 'segment' | 'eval';
  /** The queue's name. */
  queue: string;
  /** Distinct jobs. */
  total: number;
  /** Jobs per state. */
  counts: Record<JobStateName, number>;
  /** No job is waiting, delayed or running: every job completed, failed or is missing. */
  finished: boolean;
  /** Fraction of the run's work done: finished jobs, plus the frames of running ones. */
  fraction: number;
  /** Every job of the run. */
  jobs: JobStatus[];
}

function progressOf(p: unknown): JobStatus['progress'] {
  const o = p as { done?: unknown; total?: unknown } | null;
  if (o && typeof o === 'object' && typeof o.done === 'number')
    return { done: o.done, total: typeof o.total === 'number' ? o.total : null };
  return null;
}

/** The state of one job of a run. */
async function jobStatus(queue: Queue, run: RunRecord, id: string, clip: string): Promise<JobStatus> {
  // The state first, then the job: BullMQ moves a job to 'completed' and counts its attempt in
  // one step, so a job read after its state is at least as recent. Read the other way round, a
  // job that completed between the two reads came out 'completed' with the attempts of its
  // active self (0; the queue test's lock renewal case caught it under load).
  const raw = await queue.getJobState(id);
  const job = (await queue.getJob(id)) as Job<JobData> | undefined;
  const out = job?.data?.out ?? run.out;
  const dir = jobDir(out, id);
  if (!job) {
    const onDisk = await readJobManifest(out, id);
    return { id, clip, state: onDisk ? 'completed' : 'missing', progress: null, attempts: 0, failure: null, dir };
  }
  let state: JobStateName;
  if (raw === 'completed' || raw === 'failed' || raw === 'active' || raw === 'delayed') state = raw;
  else if (raw === 'unknown') state = 'missing';
  else state = 'waiting'; // waiting, prioritized, waiting-children
  return {
    id,
    clip,
    state,
    progress: state === 'active' || state === 'completed' ? progressOf(job.progress) : null,
    attempts: job.attemptsMade,
    failure: state !== 'completed' && job.failedReason ? decodeFailure(job.failedReason) : null,
    dir,
  };
}

/** Reads a run's state with an open queue (also used by results). */
export async function runStatus(queue: Queue, run: RunRecord): Promise<RunStatus> {
  const firstClip = new Map<string, string>();
  for (const c of run.clips) if (!firstClip.has(c.jobId)) firstClip.set(c.jobId, c.name);
  const ids = [...firstClip.keys()];
  const jobs: JobStatus[] = [];
  // In slices, so that a run of thousands of clips does not open thousands of requests at once.
  for (let i = 0; i < ids.length; i += 200)
    jobs.push(...(await Promise.all(ids.slice(i, i + 200).map((id) => jobStatus(queue, run, id, firstClip.get(id)!)))));
  const counts: Record<JobStateName, number> = {
    completed: 0,
    failed: 0,
    active: 0,
    waiting: 0,
    delayed: 0,
    missing: 0,
  };
  let work = 0;
  for (const j of jobs) {
    counts[j.state]++;
    if (j.state === 'completed' || j.state === 'failed' || j.state === 'missing') work += 1;
    else if (j.state === 'active' && j.progress?.total) work += Math.min(1, j.progress.done / j.progress.total);
  }
  return {
    run: run.id,
    kind: run.kind,
    queue: run.queue,
    total: jobs.length,
    counts,
    finished: counts.active + counts.waiting + counts.delayed === 0,
    fraction: jobs.length ? work / jobs.length : 1,
    jobs,
  };
}

/** Opens the queue of `t` for reading a run. */
export async function openRun(
  runIdText: string,
  t: QueueTarget,
): Promise<{ queue: Queue; redis: IORedis; run: RunRecord }> {
  const { queue: queueName } = checkTarget(t);
  const redis = await connectClient(t);
  try {
    const run = await loadRun(redis, queueName, runIdText);
    const { Queue } = await loadBullmq();
    const queue = new Queue(queueName, { connection: redis });
    queue.on('error', () => undefined);
    return { queue, redis, run };
  } catch (err) {
    redis.disconnect();
    throw err instanceof ArSegError ? err : queueError(err, t, `reading run ${runIdText}`);
  }
}

/** The state of every job of run `id`. */
export async function status(id: string, t: QueueTarget): Promise<RunStatus> {
  const { queue, redis, run } = await openRun(id, t);
  try {
    return await runStatus(queue, run);
  } catch (err) {
    throw err instanceof ArSegError ? err : queueError(err, t, `reading run ${id}`);
  } finally {
    await closeQuietly(queue, redis);
  }
}

/**
 * Polls run `id` every `interval` ms (default 2000) until no job is waiting or running; returns
 * the last status. ERR_RUN_UNFINISHED after `timeout` ms (default: none).
 */
export async function waitForRun(
  id: string,
  t: QueueTarget,
  o: { interval?: number; timeout?: number; onStatus?: (s: RunStatus) => void } = {},
): Promise<RunStatus> {
  const { queue, redis, run } = await openRun(id, t);
  const deadline = o.timeout === undefined ? Infinity : Date.now() + o.timeout;
  try {
    for (;;) {
      const s = await runStatus(queue, run);
      o.onStatus?.(s);
      if (s.finished) return s;
      if (Date.now() >= deadline)
        throw new ArSegError(ErrorCodes.RUN_UNFINISHED, `run ${id} did not finish within ${o.timeout} ms`);
      await new Promise((resolve) => setTimeout(resolve, o.interval ?? 2000));
    }
  } catch (err) {
    throw err instanceof ArSegError ? err : queueError(err, t, `reading run ${id}`);
  } finally {
    await closeQuietly(queue, redis);
  }
}
