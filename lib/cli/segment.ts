/**
 * `ar-seg segment VIDEO --model DIR --out DIR [--mode ar|hr|lr] [--scale S] [--keyframes gop|L]
 * [--overlay]`: one palette PNG of labels per frame (labels/<i>.png), optional colour overlays
 * (overlays/<i>.png), and summary.json: frames, keyframes, fps, time per stage, GMAC per frame.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { ArSeg, SegmentMode, SegmentResult, StageTimings } from '../pipeline';
import type { MotionSourceOption } from '../frame';
import type { Bundle } from '../bundle';
import { bundleFlops } from '../flops';
import { encodeLabelPng, encodeOverlayPng } from '../png';
import { progressBar } from './progress';
import { expectedFrameCount } from '../video';
import { toArSegError } from '../errors';

export interface SegmentCliOptions {
  model: string;
  out: string;
  mode: SegmentMode;
  scale?: number;
  keyframes?: 'gop' | 'adaptive' | number;
  /** Where mode 'ar' takes its motion from. Default 'auto'. */
  motionSource?: MotionSourceOption;
  overlay: boolean;
  progress: boolean;
  flops: boolean;
  /** Where the networks run. Default 'cpu'. */
  device?: 'cpu' | 'cuda';
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
  /** Set when the stream ended in an error: what was segmented before it is kept. */
  error?: { code: string; message: string };
}

/** `onResult` sees each frame's result after its files are written (ar-seg demo scores them). */
export async function runSegment(
  source: string,
  o: SegmentCliOptions,
  onResult?: (result: SegmentResult, bundle: Bundle) => void | Promise<void>,
): Promise<SegmentSummary> {
  const seg = await ArSeg.load(o.model, { device: o.device });
  const out = path.resolve(o.out);
  await fs.mkdir(path.join(out, 'labels'), { recursive: true });
  if (o.overlay) await fs.mkdir(path.join(out, 'overlays'), { recursive: true });
  const colors = seg.bundle.classes.map((c) => c.color);
  const segmentation = seg.segment(source, { mode: o.mode, scale: o.scale, keyframes: o.keyframes, rgb: o.overlay, motionSource: o.motionSource });
  let total: number | null = null;
  try {
    total = expectedFrameCount(await segmentation.info());
  } catch {
    // an input that cannot be opened fails the first read of the loop below, with its code
  }
  const bar = progressBar(`segment (${o.mode})`, total, o.progress);
  const sums: StageTimings = { decode: 0, hrEncoder: 0, lrEncoder: 0, creff: 0, decoder: 0, labels: 0, total: 0 };
  const counts = { frames: 0, keyframes: 0, hr: 0, lr: 0, ar: 0 };
  let size = { width: 0, height: 0 };
  let motionSource: SegmentSummary['motionSource'] = null;
  let failure: unknown;
  const started = process.hrtime.bigint();
  try {
    for await (const r of segmentation) {
      const name = `${String(r.index).padStart(6, '0')}.png`;
      await fs.writeFile(path.join(out, 'labels', name), encodeLabelPng(r.labels, r.width, r.height, colors));
      if (o.overlay && r.rgb) await fs.writeFile(path.join(out, 'overlays', name), encodeOverlayPng(r.rgb, r.labels, r.width, r.height, colors));
      if (onResult) await onResult(r, seg.bundle);
      for (const k of Object.keys(sums) as (keyof StageTimings)[]) sums[k] += r.timings[k];
      counts.frames++;
      counts[r.branch]++;
      if (r.isKeyframe) counts.keyframes++;
      size = { width: r.width, height: r.height };
      motionSource = r.motionSource ?? motionSource;
      bar.update(counts.frames);
    }
  } catch (err) {
    failure = err;
  } finally {
    bar.stop();
    await seg.close();
  }
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  let gmac: SegmentSummary['gmacPerFrame'] = null;
  if (o.flops && counts.frames > 0) {
    const f = await bundleFlops(seg.bundle.dir, seg.bundle.manifest, { width: size.width, height: size.height, scale: o.scale });
    const mean = (counts.hr * f.perFrame.hr + counts.lr * f.perFrame.lr + counts.ar * f.perFrame.arOther) / counts.frames;
    gmac = { mean, hr: f.perFrame.hr, lr: f.perFrame.lr, ar: f.perFrame.arOther };
  }
  const meanTimings = Object.fromEntries(Object.entries(sums).map(([k, v]) => [k, counts.frames ? v / counts.frames : 0])) as unknown as StageTimings;
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
  };
  if (failure) {
    const e = toArSegError(failure);
    summary.error = { code: e.code, message: e.message };
  }
  await fs.writeFile(path.join(out, 'summary.json'), JSON.stringify(summary, null, 2) + '\n');
  if (failure) throw failure as Error;
  return summary;
}
