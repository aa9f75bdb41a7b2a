/**
 * A run: the jobs of one submission, in the order of its clips, kept in the queue's Redis (so
 * that status and results need only the URL and the run's id) and, for people, as
 * OUT/runs/<run>.json. Its id is derived from its kind, its jobs and its output directory:
 * submitting the same thing again gives the same run.
 */
import * as path from 'node:path';
import { promises as fs } from 'node:fs';
import type IORedis from 'ioredis';
import { writeFileAtomic } from '../atomic-write';
import { ArSegError, ErrorCodes, invalidArg } from '../errors';
import type { DatasetSplits } from '../dataset';
import { hashJson } from './content-hash';
import type { EvalJobOptions, JobKind, SegmentJobOptions } from './jobs';

export const RUN_FORMAT = 1;

export interface RunClip {
  name: string;
  video: string;
  /** The label directory (evaluation runs). */
  labels?: string;
  jobId: string;
}

export interface RunRecord {
  format: typeof RUN_FORMAT;
  id: string;
  kind: JobKind;
  queue: string;
  /** The output directory the run's new jobs write under. */
  out: string;
  model: { dir: string; hash: string };
  options: SegmentJobOptions | EvalJobOptions;
  /** One entry per clip, in submission order (a clip given twice counts twice, as in ar-seg eval). */
  clips: RunClip[];
  /** Evaluation runs: the datasets the clips came from (for the warnings ar-seg eval gives). */
  datasets: { dir: string; splits: DatasetSplits }[];
  submittedAt: string;
}

/** The id of the run of these jobs, in this order, written under `out`. */
export function runId(kind: JobKind, jobIds: string[], out: string): string {
  return `run-${hashJson({ format: RUN_FORMAT, kind, jobIds, out }).slice(0, 20)}`;
}

export function isRunId(id: unknown): id is string {
  return typeof id === 'string' && /^run-[0-9a-f]{20}$/.test(id);
}

/** The Redis key of a run's record (next to BullMQ's bull:<queue>:* keys). */
export function runKey(queue: string, id: string): string {
  return `ar-seg:${queue}:run:${id}`;
}

/** Stores the run's record in Redis and OUT/runs/<id>.json. */
export async function saveRun(redis: IORedis, run: RunRecord): Promise<void> {
  await redis.set(runKey(run.queue, run.id), JSON.stringify(run));
  await fs.mkdir(path.join(run.out, 'runs'), { recursive: true });
  await writeFileAtomic(path.join(run.out, 'runs', `${run.id}.json`), JSON.stringify(run, null, 1) + '\n');
}

/** The run's record; ERR_RUN_NOT_FOUND when this queue has none with that id. */
export async function loadRun(redis: IORedis, queue: string, id: string): Promise<RunRecord> {
  if (!isRunId(id))
    throw invalidArg(`${JSON.stringify(id)} is not a run id (run- and 20 hex digits, as submit prints it)`);
  const text = await redis.get(runKey(queue, id));
  if (text === null)
    throw new ArSegError(
      ErrorCodes.RUN_NOT_FOUND,
      `no run ${id} in queue '${queue}' (was it submitted to this Redis and queue?)`,
    );
  const run = JSON.parse(text) as { format?: unknown };
  if (run.format !== RUN_FORMAT)
    throw new ArSegError(
      ErrorCodes.RUN_NOT_FOUND,
      `run ${id} was written by another version (format ${String(run.format)})`,
    );
  return run as RunRecord;
}
