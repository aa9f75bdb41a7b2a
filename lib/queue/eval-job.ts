/**
 * An evaluation job: one clip through evaluateClip (lib/evaluate.ts) in each mode, its
 * confusion matrices per mode and per reference distance kept as exact integer counts, so that
 * `results` sums the clips of a run to the figures `ar-seg eval` gives on one machine.
 */
import type { ArSeg, SegmentMode } from '../pipeline';
import { ClipLabels } from '../dataset';
import { evaluateClip, newMetrics, Protocol, resolveProtocol } from '../evaluate';
import type { DistanceMetricsJson } from '../metrics';
import type { EvalJobData } from './jobs';
import { checkStop, JobContext } from './job-context';

/** An evaluation job's result (in its manifest). */
export interface EvalJobResult {
  /** The model's name and every class name, by index (the report names the evaluated ones). */
  model: { name: string; classes: string[] };
  protocol: Protocol;
  /** Frames decoded and scored per mode. */
  frames: number;
  /** Keyframes that were not I-frames (in the first mode, as ar-seg eval counts them). */
  keyframesNotI: number;
  /** Seconds the evaluation took. */
  seconds: number;
  /** Per mode, the confusion matrices per d. */
  metrics: Partial<Record<SegmentMode, DistanceMetricsJson>>;
}

export async function runEvalJob(
  seg: ArSeg,
  data: EvalJobData,
  labelFiles: string[],
  ctx: JobContext,
): Promise<EvalJobResult> {
  const started = process.hrtime.bigint();
  const m = seg.bundle.manifest;
  const p = resolveProtocol(seg, data.options);
  const labels = new ClipLabels(
    { name: data.clip.name, video: data.clip.video, labels: data.labels.dir },
    labelFiles,
    p.classes,
  );
  const total = labelFiles.length * p.modes.length;
  let done = 0;
  let frames = 0;
  let keyframesNotI = 0;
  const metrics: EvalJobResult['metrics'] = {};
  for (const mode of p.modes) {
    const acc = newMetrics(p);
    const r = await evaluateClip(seg, labels, mode, p, acc, () => {
      checkStop(ctx);
      ctx.onProgress(++done, total);
    });
    if (mode === p.modes[0]) keyframesNotI = r.keyframesNotI;
    frames = r.frames;
    metrics[mode] = acc.toJSON();
  }
  return {
    model: { name: m.name, classes: m.classes.map((c) => c.name) },
    protocol: p,
    frames,
    keyframesNotI,
    seconds: Number(process.hrtime.bigint() - started) / 1e9,
    metrics,
  };
}
