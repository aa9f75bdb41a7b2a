/**
 * Segments a video into a directory with a loaded model: one palette PNG of labels per frame
 * (labels/<i>.png), optional colour overlays (overlays/<i>.png), and summary.json: frames,
 * keyframes, fps, time per stage, GMAC per frame. Shared by `ar-seg segment` (cli/segment.ts,
 * which loads the model) and the queue's segmentation jobs (queue/segment-job.ts, whose worker
 * keeps its models loaded from job to job), so that both write the same outputs.
 */
import * as path from 'node:path';
import { ArSeg, SegmentMode, SegmentResult, StageTimings } from './pipeline';
import type { Bundle } from './bundle';
import type { MotionFill, MotionSourceOption } from './frame';
import { bundleFlops } from './flops';
import { encodeLabelPng, encodeOverlayPng } from './png';
import { expectedFrameCount } from './video';
import { toArSegError } from './errors';
import { prepareOutputDir, writeOutput } from './output';

export interface SegmentToDirOptions {
  out: string;
  mode: SegmentMode;
  scale?: number;
  keyframes?: 'gop' | 'adaptive' | number;
  /** Where mode 'ar' takes its motion from (SegmentOptions.motionSource). Default 'auto'. */
  motionSource?: MotionSourceOption;
  /** Motion fill in mode 'ar' (SegmentOptions.motionFill). Default 'estimate'. */
  motionFill?: MotionFill;
  overlay: boolean;
  flops: boolean;
  /** The largest picture accepted (see FrameOptions.limitInputPixels). */
  limitInputPixels?: number;
  /** Called after each frame's files are written: frames done, and the frames expected (null when the container does not say). */
  onProgress?: (done: number, total: number | null) => void;
}

export interface SegmentSummary {
  source: string;
  model: string;
  mode: SegmentMode;
  /** Where the motion came from (modes that read motion), else null. */
  motionSource: 'bitstream' | 'estimated' | null;
  frames: number;
  keyframes: number;
  width: number;
  height: number;
  seconds: number;
  fps: number;
  /** Milliseconds per frame, mean over the frames, per stage. */
  meanTimings: StageTimings;
  /** GMAC per frame: the mean over this run's frames, and each branch's cost. */
  gmacPerFrame: { mean: number; hr: number; lr: number; ar: number } | null;
  out: string;
  /**
   * Frames of the stream the decoder dropped (damage it could not conceal): no file is written
   * for them, and the others keep their numbers (labels/<frame>.png is frame <frame> of the
   * stream).
   */
  droppedFrames: number[];
  /** Set when the stream ended in an error: what was segmented before it is kept. */
  error?: { code: string; message: string };
}

/**
 * Segments `source` with `seg` (left open) into `o.out`. `onResult` sees each frame's result
 * after its files are written (ar-seg demo scores them; a throw from it stops the run).
 */
export async function segmentToDir(
  seg: ArSeg,
  source: string,
  o: SegmentToDirOptions,
  onResult?: (result: SegmentResult, bundle: Bundle) => void | Promise<void>,
): Promise<SegmentSummary> {
  const out = await prepareOutputDir(o.out, o.overlay ? ['labels', 'overlays'] : ['labels']);
  const colors = seg.bundle.classes.map((c) => c.color);
  const segmentation = seg.segment(source, {
    mode: o.mode,
    scale: o.scale,
    keyframes: o.keyframes,
    rgb: o.overlay,
    limitInputPixels: o.limitInputPixels,
    motionSource: o.motionSource,
    motionFill: o.motionFill,
  });
  let total: number | null = null;
  try {
    total = expectedFrameCount(await segmentation.info());
  } catch {
    // an input that cannot be opened fails the first read of the loop below, with its code
  }
  const sums: StageTimings = {
    decode: 0,
    hrEncoder: 0,
    lrEncoder: 0,
    creff: 0,
    decoder: 0,
    labels: 0,
    keyframeWait: 0,
    total: 0,
  };
  const counts = { frames: 0, keyframes: 0, hr: 0, lr: 0, ar: 0 };
  let size = { width: 0, height: 0 };
  let motionSource: SegmentSummary['motionSource'] = null;
  const dropped: number[] = [];
  let nextIndex = 0;
  let failure: unknown;
  const started = process.hrtime.bigint();
  try {
    for await (const r of segmentation) {
      for (let i = nextIndex; i < r.index; i++) dropped.push(i);
      nextIndex = r.index + 1;
      const name = `${String(r.index).padStart(6, '0')}.png`;
      await writeOutput(path.join(out, 'labels', name), encodeLabelPng(r.labels, r.width, r.height, colors));
      if (o.overlay && r.rgb)
        await writeOutput(
          path.join(out, 'overlays', name),
          encodeOverlayPng(r.rgb, r.labels, r.width, r.height, colors),
        );
      if (onResult) await onResult(r, seg.bundle);
      for (const k of Object.keys(sums) as (keyof StageTimings)[]) sums[k] += r.timings[k];
      counts.frames++;
      counts[r.branch]++;
      if (r.isKeyframe) counts.keyframes++;
      size = { width: r.width, height: r.height };
      motionSource = r.motionSource ?? motionSource;
      o.onProgress?.(counts.frames, total);
    }
  } catch (err) {
    failure = err;
  }
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  // frames dropped after the last one decoded show only in the reader's count
  for (let tail = segmentation.stats().framesDropped - dropped.length; tail > 0; tail--) dropped.push(nextIndex++);
  let gmac: SegmentSummary['gmacPerFrame'] = null;
  if (o.flops && counts.frames > 0) {
    const f = await bundleFlops(seg.bundle.dir, seg.bundle.manifest, {
      width: size.width,
      height: size.height,
      scale: o.scale,
    });
    const mean =
      (counts.hr * f.perFrame.hr + counts.lr * f.perFrame.lr + counts.ar * f.perFrame.arOther) / counts.frames;
    gmac = { mean, hr: f.perFrame.hr, lr: f.perFrame.lr, ar: f.perFrame.arOther };
  }
  const meanTimings = Object.fromEntries(
    Object.entries(sums).map(([k, v]) => [k, counts.frames ? v / counts.frames : 0]),
  ) as unknown as StageTimings;
  const summary: SegmentSummary = {
    source,
    model: seg.bundle.manifest.name,
    mode: o.mode,
    motionSource,
    frames: counts.frames,
    keyframes: counts.keyframes,
    width: size.width,
    height: size.height,
    seconds,
    fps: counts.frames / seconds,
    meanTimings,
    gmacPerFrame: gmac,
    out,
    droppedFrames: dropped,
  };
  if (failure) {
    const e = toArSegError(failure);
    summary.error = { code: e.code, message: e.message };
  }
  try {
    await writeOutput(path.join(out, 'summary.json'), JSON.stringify(summary, null, 2) + '\n');
  } catch (err) {
    // the first failure is the one to report (a full disk fails the summary too)
    throw (failure ?? err) as Error;
  }
  if (failure) throw failure as Error;
  return summary;
}
