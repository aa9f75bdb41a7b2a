/**
 * `results`: a finished run's results. For an evaluation run, the clips' confusion matrices
 * summed per mode and per distance into the report `ar-seg eval` gives on one machine (the same
 * figures to the last digit: the sums are of integers); for a segmentation run, where each
 * clip's outputs are. Read from the jobs' manifests on the shared output storage.
 */
import * as path from 'node:path';
import { ArSegError, ErrorCodes } from '../errors';
import { buildReport, datasetWarnings, EvalReport, keyframesNotIWarning, newMetrics, Protocol } from '../evaluate';
import { DistanceMetrics } from '../metrics';
import type { LabelledClip } from '../dataset';
import { closeQuietly, queueError, QueueTarget } from './connection';
import type { EvalJobResult } from './eval-job';
import { JobManifest, readJobManifest } from './job-output';
import type { SegmentJobResult } from './segment-job';
import { JobStatus, openRun, RunStatus, runStatus } from './status';
import type { RunRecord } from './run';
import { canonicalJson } from './content-hash';

export interface ResultsOptions extends QueueTarget {
  /** Merge the completed jobs even when others failed (their clips are left out, with a warning). */
  partial?: boolean;
}

/** One clip of a segmentation run. */
export interface SegmentClipResult {
  /** The clip's name. */
  name: string;
  /** Its video. */
  video: string;
  /** Its job's id. */
  jobId: string;
  /** OUT/<jobId>: labels/, overlays/, summary.json, manifest.json. */
  dir: string;
  /** Frames segmented. */
  frames: number;
  /** Keyframes among them. */
  keyframes: number;
  /** Frame width. */
  width: number;
  /** Frame height. */
  height: number;
  /** Seconds the segmentation took. */
  seconds: number;
  /** Frames per second of the segmentation. */
  fps: number;
}

/** A finished run's results: an evaluation's merged report, or where each clip's segmentation is. */
export type RunResults = EvalRunResults | SegmentRunResults;

/** An evaluation run's results. */
export interface EvalRunResults {
  /** Evaluation. */
  kind: 'eval';
  /** The run's id. */
  run: string;
  /** The report of ar-seg eval over the run's clips (`seconds`: the sum of the jobs'). */
  report: EvalReport;
}

/** A segmentation run's results. */
export interface SegmentRunResults {
  /** Segmentation. */
  kind: 'segment';
  /** The run's id. */
  run: string;
  /** Each clip's result, in the run's order. */
  clips: SegmentClipResult[];
  /** Frames over every clip. */
  frames: number;
  /** With `partial`: the clips left out. */
  warnings: string[];
}

function describeFailures(jobs: JobStatus[]): string {
  const bad = jobs.filter((j) => j.state === 'failed' || j.state === 'missing');
  const shown = bad
    .slice(0, 5)
    .map(
      (j) =>
        `${j.clip}: ${j.state === 'missing' ? 'missing (submit again)' : `${j.failure?.code ?? 'failed'}: ${j.failure?.message ?? ''}`}`,
    );
  return shown.join('; ') + (bad.length > shown.length ? `; and ${bad.length - shown.length} more` : '');
}

/** Checks that the run is finished (ERR_RUN_UNFINISHED) and, unless partial, that nothing failed (ERR_RUN_FAILED). */
export function checkFinished(st: RunStatus, partial: boolean): void {
  const c = st.counts;
  if (!st.finished)
    throw new ArSegError(
      ErrorCodes.RUN_UNFINISHED,
      `run ${st.run} is not finished: ${c.completed + c.failed + c.missing} of ${st.total} jobs done (${c.active} running, ${c.waiting} waiting, ${c.delayed} waiting to retry)`,
    );
  if (!partial && c.failed + c.missing > 0)
    throw new ArSegError(
      ErrorCodes.RUN_FAILED,
      `run ${st.run}: ${c.failed + c.missing} of ${st.total} jobs failed or are missing: ${describeFailures(st.jobs)} (results with partial merge the others)`,
    );
}

/** The finished run's results; see the file's comment. */
export async function results(id: string, o: ResultsOptions): Promise<RunResults> {
  const { queue, redis, run } = await openRun(id, o);
  try {
    const st = await runStatus(queue, run);
    checkFinished(st, Boolean(o.partial));
    const byId = new Map(st.jobs.map((j) => [j.id, j]));
    const manifests = new Map<string, JobManifest>();
    for (const j of st.jobs) {
      if (j.state !== 'completed') continue;
      const m = await readJobManifest(path.dirname(j.dir), j.id);
      if (!m)
        throw new ArSegError(
          ErrorCodes.RUN_FAILED,
          `run ${run.id}: the result of ${j.clip} is not on disk (${j.dir} has no valid manifest.json): submit the run again to compute it`,
        );
      manifests.set(j.id, m);
    }
    const missing = run.clips.filter((c) => !manifests.has(c.jobId));
    const warnings = missing.length
      ? [`${missing.length} of ${run.clips.length} clips left out (failed or missing): ${describeFailures(st.jobs)}`]
      : [];
    if (run.kind === 'eval') return { kind: 'eval', run: run.id, report: mergeEval(run, manifests, warnings) };
    const clips: SegmentClipResult[] = [];
    for (const c of run.clips) {
      const m = manifests.get(c.jobId);
      if (!m) continue;
      const s = m.result as SegmentJobResult;
      clips.push({
        name: c.name,
        video: c.video,
        jobId: c.jobId,
        dir: byId.get(c.jobId)!.dir,
        frames: s.frames,
        keyframes: s.keyframes,
        width: s.width,
        height: s.height,
        seconds: s.seconds,
        fps: s.fps,
      });
    }
    return { kind: 'segment', run: run.id, clips, frames: clips.reduce((a, c) => a + c.frames, 0), warnings };
  } catch (err) {
    throw err instanceof ArSegError ? err : queueError(err, o, `reading the results of run ${id}`);
  } finally {
    await closeQuietly(queue, redis);
  }
}

/**
 * Sums the clips' matrices in the run's clip order (a clip given twice counts twice, as in
 * ar-seg eval) and builds the report with evaluate.ts's own functions.
 */
export function mergeEval(run: RunRecord, manifests: Map<string, JobManifest>, warnings: string[]): EvalReport {
  const counted = run.clips.filter((c) => manifests.has(c.jobId));
  if (counted.length === 0) throw new ArSegError(ErrorCodes.RUN_FAILED, `run ${run.id}: no clip has a result to merge`);
  const first = manifests.get(counted[0].jobId)!.result as EvalJobResult;
  const p: Protocol = first.protocol;
  const metrics = new Map(p.modes.map((mode) => [mode, newMetrics(p)]));
  let notI = 0;
  let seconds = 0;
  const clips: { clip: LabelledClip; frames: number }[] = [];
  for (const c of counted) {
    const r = manifests.get(c.jobId)!.result as EvalJobResult;
    // Every job of a run has the same model and options; a different protocol is a bug or tampering.
    if (canonicalJson(r.protocol) !== canonicalJson(p) || r.model.name !== first.model.name)
      throw new ArSegError(
        ErrorCodes.INVALID_DATA,
        `run ${run.id}: the result of ${c.name} was evaluated with another protocol or model`,
      );
    for (const mode of p.modes) {
      const saved = r.metrics[mode];
      if (!saved)
        throw new ArSegError(ErrorCodes.INVALID_DATA, `run ${run.id}: the result of ${c.name} has no mode ${mode}`);
      metrics.get(mode)!.merge(DistanceMetrics.fromJSON(saved));
    }
    notI += r.keyframesNotI;
    seconds += r.seconds;
    clips.push({ clip: { name: c.name, video: c.video, labels: c.labels ?? '' }, frames: r.frames });
  }
  const names = metrics
    .get(p.modes[0])!
    .evaluatedClasses()
    .map((k) => first.model.classes[k]);
  const all = datasetWarnings(run.datasets, names, p.interval);
  if (notI > 0) all.push(keyframesNotIWarning(notI, p.interval));
  all.push(...warnings);
  return buildReport(
    { name: first.model.name, classes: first.model.classes.map((name) => ({ name })) },
    p,
    metrics,
    clips,
    seconds,
    all,
  );
}
