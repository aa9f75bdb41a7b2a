/**
 * `ar-seg demo [--out DIR] [--device cpu|cuda]`: the main job out of the box. Segments the
 * bundled demo clip (models/demo/video.mp4) with the bundled default model (models/default),
 * both found next to the installed package (not the working directory), through `segment`'s
 * implementation: label PNGs, overlays and summary.json. When the clip has labels
 * (models/demo/labels/), it also scores the 'ar' segmentation against them (lib/metrics.ts).
 *
 * ARSEG_DEFAULT_MODEL and ARSEG_DEMO_CLIP override the two directories (also --model, --clip).
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { ArSegError, ErrorCodes, toArSegError } from '../errors';
import { DistanceMetrics } from '../metrics';
import { ClipLabels } from '../dataset';
import { runSegment, SegmentSummary } from './segment';

/** The installed package's root (dist/cli/ is two levels below it). */
export function packageRoot(): string {
  return path.resolve(__dirname, '..', '..');
}

/** Where the default model bundle is: $ARSEG_DEFAULT_MODEL, else <package>/models/default. */
export function defaultModelDir(): string {
  return process.env.ARSEG_DEFAULT_MODEL || path.join(packageRoot(), 'models', 'default');
}

/** Where the demo clip is: $ARSEG_DEMO_CLIP, else <package>/models/demo. */
export function demoClipDir(): string {
  return process.env.ARSEG_DEMO_CLIP || path.join(packageRoot(), 'models', 'demo');
}

/** The default model's directory; ERR_BUNDLE (exit 6) when it is not installed. */
export async function resolveDefaultModel(): Promise<string> {
  const dir = defaultModelDir();
  try {
    await fs.access(path.join(dir, 'arseg.json'));
  } catch {
    throw new ArSegError(
      ErrorCodes.BUNDLE,
      `no default model: ${path.join(dir, 'arseg.json')} does not exist (the package ships it in models/default; ` +
        `pass --model DIR or set ARSEG_DEFAULT_MODEL to a bundle directory)`,
    );
  }
  return dir;
}

export interface DemoOptions {
  out: string;
  device?: 'cpu' | 'cuda';
  progress: boolean;
  /** A bundle directory instead of the default model. */
  model?: string;
  /** A clip directory (video.mp4, optional labels/) instead of the bundled demo clip. */
  clip?: string;
}

export interface DemoSummary extends SegmentSummary {
  /** The clip's mIoU in mode 'ar' against its labels (protocol: mean over d), or null without labels. */
  miou: { mean: number | null; perDistance: (number | null)[]; interval: number; frames: number } | null;
}

export async function runDemo(o: DemoOptions): Promise<DemoSummary> {
  const model = o.model ?? (await resolveDefaultModel());
  const clipDir = o.clip ?? demoClipDir();
  const video = path.join(clipDir, 'video.mp4');
  try {
    await fs.access(video);
  } catch {
    throw new ArSegError(
      ErrorCodes.NOT_FOUND,
      `the demo clip ${video} does not exist (the package ships it in models/demo; pass --clip DIR or set ARSEG_DEMO_CLIP)`,
    );
  }
  const labelsDir = path.join(clipDir, 'labels');
  const clip = { name: clipDir, video, labels: labelsDir };
  const hasLabels = await fs.stat(labelsDir).then(
    (s) => s.isDirectory(),
    () => false,
  );

  let labels: ClipLabels | null = null;
  let metrics: DistanceMetrics | null = null;
  let scoreError: unknown = null;
  let scored = 0;
  const summary = await runSegment(
    video,
    { model, out: o.out, mode: 'ar', overlay: true, progress: o.progress, flops: true, device: o.device },
    async (r, bundle) => {
      if (!hasLabels || scoreError) return;
      try {
        const m = bundle.manifest;
        if (!labels) labels = await ClipLabels.open(clip, m.classes.length);
        if (!metrics) {
          const ignore =
            typeof m.ignoreIndex === 'number' && m.ignoreIndex >= 0 && m.ignoreIndex < m.classes.length
              ? [m.ignoreIndex]
              : [];
          metrics = new DistanceMetrics(m.classes.length, m.keyframeInterval, { ignore });
        }
        metrics.add(r.index - r.keyframeIndex, await labels.frame(r.index, r.width, r.height), r.labels);
        scored++;
      } catch (err) {
        scoreError = err; // the segmentation goes on; the labels' problem is reported at the end
      }
    },
  );
  if (scoreError) throw toArSegError(scoreError);
  let miou: DemoSummary['miou'] = null;
  if (labels && metrics) {
    (labels as ClipLabels).finish(scored);
    const rep = (metrics as DistanceMetrics).report();
    miou = {
      mean: rep.mean,
      perDistance: rep.perDistance,
      interval: (metrics as DistanceMetrics).distances,
      frames: rep.framesTotal,
    };
  }
  return { ...summary, miou };
}
