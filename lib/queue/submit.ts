/**
 * `submit`: one job per clip, segmentation or evaluation, in a run. Job ids come from content
 * (jobs.ts), so a job already in the queue is not added twice: a completed one whose result is
 * on disk is reused, a failed one is retried, a waiting or running one is left alone.
 */
import * as path from 'node:path';
import type { Queue } from 'bullmq';
import { loadBullmq } from './bullmq';
import { ArSegError, invalidArg } from '../errors';
import { integerIn, nonEmptyString, numberIn, oneOf, optionsObject, show } from '../options';
import { EVAL_MODES } from '../evaluate';
import type { SegmentMode } from '../pipeline';
import { hashBundle } from './content-hash';
import { checkTarget, closeQuietly, connectClient, queueError, QueueTarget } from './connection';
import { EvalJobData, EvalJobOptions, JOB_FORMAT, JobData, jobId, SegmentJobData, SegmentJobOptions } from './jobs';
import { resolveEvalClips, resolveSegmentClips, SubmitClip } from './inputs';
import { readJobManifest } from './job-output';
import { RUN_FORMAT, RunRecord, runId, saveRun } from './run';
import type { DatasetSplits } from '../dataset';

export interface SubmitOptions extends QueueTarget {
  /** The directory under which each job writes OUT/<jobId>/ (on storage every worker sees). */
  out: string;
  /** The model bundle directory (on storage every worker sees). */
  model: string;
  /** Evaluate against the clips' labels instead of segmenting. */
  eval?: boolean;
  /** Segmentation: 'ar' (default), 'hr' or 'lr'. */
  mode?: SegmentMode;
  /** LR scale per side (default: the bundle's). */
  scale?: number;
  /** Segmentation: 'gop', 'adaptive' or an interval L (default: the bundle's interval). */
  keyframes?: 'gop' | 'adaptive' | number;
  /** Segmentation: colour overlays too. */
  overlay?: boolean;
  /**
   * Segmentation: GMAC per frame in summary.json. Default false: counting runs every graph once
   * more with profiling, which costs a short clip's job more than its segmentation.
   */
  flops?: boolean;
  /** Evaluation: the labels of a single video (default labels/ next to it). */
  labels?: string;
  /** The split of a dataset directory (default 'test'). */
  split?: string;
  /** Evaluation: modes (default hr, lr, ar). */
  modes?: SegmentMode[];
  /** Evaluation: keyframe interval L (default: the bundle's). */
  interval?: number;
  /** Attempts per job for transient failures (default 3; input errors are never retried). */
  attempts?: number;
  /** First retry delay in ms, doubled at each retry (default 10000). */
  backoff?: number;
}

/** What submit() did. */
export interface SubmitResult {
  /** The run's id, for status and results. */
  run: string;
  /** Segmentation or evaluation jobs. */
  kind: 'segment' | 'eval';
  /** Clips in the run. */
  clips: number;
  /** Distinct jobs among them. */
  jobs: number;
  /** Jobs added to the queue now. */
  added: number;
  /** Jobs already completed, with their result on disk: reused. */
  completed: number;
  /** Jobs that had failed and were put back to run again. */
  retried: number;
  /** Jobs already waiting or running. */
  pending: number;
}

/**
 * The options, checked here with lib/options.ts although the worker's pipeline checks them again:
 * a bad option must be refused before it is queued for a thousand machines, and it is part of
 * the job's id.
 */
function checkOptions(o: SubmitOptions): void {
  optionsObject(o);
  nonEmptyString('out', o.out, 'a directory path');
  nonEmptyString('model', o.model, 'a bundle directory');
  oneOf('mode', o.mode, EVAL_MODES, 'ar');
  if (o.scale !== undefined) numberIn('scale', o.scale, 0, 1, undefined, { lowOpen: true });
  if (o.keyframes !== 'gop' && o.keyframes !== 'adaptive' && o.keyframes !== undefined)
    integerIn('keyframes', o.keyframes, 1, Infinity);
  if (o.interval !== undefined) integerIn('interval', o.interval, 1, 1024);
  if (o.modes !== undefined) {
    if (!Array.isArray(o.modes) || o.modes.length === 0)
      throw invalidArg(`option 'modes' must be a non-empty list of 'hr', 'lr', 'ar', got ${show(o.modes)}`);
    for (const mode of o.modes) oneOf('modes', mode, EVAL_MODES, 'ar');
  }
  integerIn('attempts', o.attempts, 1, 100, 3);
  integerIn('backoff', o.backoff, 0, Infinity, 10000);
  if (o.eval && (o.mode !== undefined || o.keyframes !== undefined || o.overlay || o.flops))
    throw invalidArg(
      'mode, keyframes, overlay and flops are segmentation options; evaluation takes modes, interval and scale',
    );
  if (!o.eval && (o.modes !== undefined || o.interval !== undefined || o.labels !== undefined))
    throw invalidArg('modes, interval and labels are evaluation options (with eval)');
}

const positiveInt = (v: unknown): number | undefined =>
  Number.isInteger(v) && (v as number) >= 1 ? (v as number) : undefined;
const scaleOf = (v: unknown): number | undefined => (typeof v === 'number' && v > 0 && v <= 1 ? v : undefined);

/** Enqueues the clips of `inputs` (videos, clip directories, datasets, directories of videos). */
export async function submit(inputs: string[], o: SubmitOptions): Promise<SubmitResult> {
  const { queue: queueName } = checkTarget(o);
  checkOptions(o);
  if (!Array.isArray(inputs) || inputs.length === 0) throw invalidArg('give at least one video or directory');
  const out = path.resolve(o.out);
  const modelDir = path.resolve(o.model);
  const bundle = await hashBundle(modelDir);
  const m = bundle.manifest;
  const model = { dir: modelDir, hash: bundle.hash };
  const kind = o.eval ? 'eval' : 'segment';

  let clips: SubmitClip[];
  let datasets: { dir: string; splits: DatasetSplits }[] = [];
  let options: SegmentJobOptions | EvalJobOptions;
  // Defaults are resolved against the bundle here, so that an option left out and the same
  // value given explicitly make the same job.
  if (o.eval) {
    ({ clips, datasets } = await resolveEvalClips(inputs, { labels: o.labels, split: o.split }));
    options = {
      modes: EVAL_MODES.filter((mode) => (o.modes ?? EVAL_MODES).includes(mode)),
      interval: o.interval ?? positiveInt(m.keyframeInterval),
      scale: o.scale ?? scaleOf(m.lrScale),
    };
  } else {
    clips = await resolveSegmentClips(inputs, { split: o.split });
    options = {
      mode: o.mode ?? 'ar',
      scale: o.scale ?? scaleOf(m.lrScale),
      keyframes: o.keyframes ?? positiveInt(m.keyframeInterval) ?? 'gop',
      overlay: Boolean(o.overlay),
      flops: o.flops ?? false,
    };
  }

  const jobs: JobData[] = clips.map((c) => {
    const clip = { name: c.name, video: c.video, hash: c.hash };
    return o.eval
      ? ({
          format: JOB_FORMAT,
          kind: 'eval',
          out,
          model,
          clip,
          labels: c.labels!,
          options: options as EvalJobOptions,
        } satisfies EvalJobData)
      : ({
          format: JOB_FORMAT,
          kind: 'segment',
          out,
          model,
          clip,
          options: options as SegmentJobOptions,
        } satisfies SegmentJobData);
  });
  const ids = jobs.map((j) => jobId(j));
  const run: RunRecord = {
    format: RUN_FORMAT,
    id: runId(kind, ids, out),
    kind,
    queue: queueName,
    out,
    model,
    options,
    clips: clips.map((c, i) => ({ name: c.name, video: c.video, labels: c.labels?.dir, jobId: ids[i] })),
    datasets,
    submittedAt: new Date().toISOString(),
  };

  const redis = await connectClient(o);
  const { Queue } = await loadBullmq();
  const queue = new Queue(queueName, { connection: redis });
  queue.on('error', () => undefined); // failures surface through the awaited calls below
  const result: SubmitResult = {
    run: run.id,
    kind,
    clips: clips.length,
    jobs: 0,
    added: 0,
    completed: 0,
    retried: 0,
    pending: 0,
  };
  try {
    const seen = new Set<string>();
    for (let i = 0; i < jobs.length; i++) {
      if (seen.has(ids[i])) continue;
      seen.add(ids[i]);
      result.jobs++;
      result[await enqueue(queue, jobs[i], ids[i], o)]++;
    }
    await saveRun(redis, run);
  } catch (err) {
    if (err instanceof ArSegError) throw err;
    throw queueError(err, o, `submitting run ${run.id}`);
  } finally {
    await closeQuietly(queue, redis);
  }
  return result;
}

/** Adds one job, or leaves the one already there (see the file's comment). */
async function enqueue(
  queue: Queue,
  data: JobData,
  id: string,
  o: SubmitOptions,
): Promise<'added' | 'completed' | 'retried' | 'pending'> {
  const existing = await queue.getJob(id);
  if (existing) {
    const state = await existing.getState();
    if (state === 'completed') {
      const out = (existing.data as JobData | undefined)?.out;
      if (typeof out === 'string' && (await readJobManifest(out, id))) return 'completed';
      // Its result is gone from disk: compute it again.
      await existing.remove();
    } else if (state === 'failed') {
      await existing.retry('failed', { resetAttemptsMade: true, resetAttemptsStarted: true });
      return 'retried';
    } else if (state !== 'unknown') {
      return 'pending';
    }
  }
  await queue.add(data.kind, data, {
    jobId: id,
    attempts: o.attempts ?? 3,
    backoff: { type: 'exponential', delay: o.backoff ?? 10000 },
    removeOnComplete: false,
    removeOnFail: false,
  });
  return 'added';
}
