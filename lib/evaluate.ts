/**
 * The paper's evaluation protocol (docs/method.md, "Evaluation protocol") through the pipeline.
 *
 * Keyframes every L frames from frame 0 (on a stream encoded with GOP L, each GOP's I-frame);
 * a frame's reference distance d is its distance from its keyframe. For each mode, one confusion
 * matrix per d is accumulated over every frame of every clip (lib/metrics.ts): the report gives
 * mIoU_d for d = 0..L-1 and their mean, the IoU per class (mean over d) and the frames counted.
 * Clips are summed as confusion matrices, never averaged, so a split evaluated clip by clip
 * (evaluateClip + DistanceMetrics.merge) gives exactly the figures of one evaluate() run.
 */
import { ArSeg, SegmentMode } from './pipeline';
import type { MotionFill, MotionSourceOption } from './frame';
import { invalidArg } from './errors';
import { integerIn } from './options';
import { ClipLabels, DatasetSplits, labelsError, LabelledClip, listLabelFiles, resolveClips } from './dataset';
import { DistanceMetrics, DistanceReport } from './metrics';
import type { ExecutionDevice } from './bundle';

/** The modes an evaluation can score, in report order. */
export const EVAL_MODES: readonly SegmentMode[] = ['hr', 'lr', 'ar'];

/** Options of `evaluate` (`ar-seg eval`). */
export interface EvaluateOptions {
  /** The model: a bundle directory (loaded and closed here) or a loaded ArSeg (left open). */
  model: string | ArSeg;
  /** Labels directory for a single video (default: `labels/` next to it). */
  labels?: string;
  /** The split of a dataset directory. Default 'test'. */
  split?: string;
  /** Modes to evaluate. Default hr, lr, ar. */
  modes?: readonly SegmentMode[];
  /** Keyframe interval L. Default: the bundle's keyframeInterval. */
  interval?: number;
  /** LR scale. Default: the bundle's lrScale. */
  scale?: number;
  /** Where a bundle given by directory runs. Default 'cpu'. */
  device?: ExecutionDevice;
  /**
   * Evaluate mode 'ar' with asynchronous keyframes, each ready this many frames after its own
   * frame (SegmentOptions.keyframeDelay): frames nearer their keyframe than that are fused with
   * the keyframe before it (what a live stream pays for keyframes that no longer stall it).
   * Default: the synchronous schedule.
   */
  keyframeDelay?: number;
  /** Where mode 'ar' takes its motion from (SegmentOptions.motionSource). Default 'auto'. */
  motionSource?: MotionSourceOption;
  /** Motion fill in mode 'ar' (SegmentOptions.motionFill). Default 'estimate'. */
  motionFill?: MotionFill;
  /** Called after each evaluated frame: frames done, and the total over every clip and mode. */
  onProgress?: (done: number, total: number) => void;
}

/**
 * An evaluation's results: the protocol's parameters, the clips, and one `DistanceReport` per
 * mode (`formatEvalMarkdown` prints it).
 */
export interface EvalReport {
  /** The model's name (its manifest's). */
  model: string;
  /** Names of the evaluated classes (the bundle's, less its ignoreIndex), per-class order. */
  classes: string[];
  /** Class indices of `classes` in the bundle. */
  classIndices: number[];
  /** Label values not counted. */
  ignore: number[];
  /** The keyframe interval L: distances 0..L-1. */
  interval: number;
  /** The LR scale. */
  scale: number;
  /** Mode 'ar' ran with asynchronous keyframes ready this many frames late; null: synchronous. */
  keyframeDelay: number | null;
  /** The clips evaluated. */
  clips: {
    /** The clip's name (`<split>/<clip>` in a dataset). */
    name: string;
    /** Its video file. */
    video: string;
    /** Its labels directory. */
    labels: string;
    /** Frames it has (labelled). */
    frames: number;
  }[];
  /** One entry per evaluated mode, in the order hr, lr, ar. */
  modes: Partial<Record<SegmentMode, DistanceReport>>;
  /** Wall time of the whole evaluation. */
  seconds: number;
  /** What the dataset says that disagrees with the protocol (its GOP, its classes). */
  warnings: string[];
}

/** What one clip's evaluation in one mode counted. */
export interface ClipModeResult {
  /** Frames decoded and scored. */
  frames: number;
  /** Keyframes (d = 0) that were not I-frames: the stream was not encoded with GOP L. */
  keyframesNotI: number;
}

/** The protocol's parameters resolved against a bundle. */
export interface Protocol {
  /** The modes to evaluate, in EVAL_MODES' order. */
  modes: SegmentMode[];
  /** The keyframe interval L. */
  interval: number;
  /** The LR scale. */
  scale: number;
  /** Label values the matrices ignore besides 255: the bundle's ignoreIndex when it is a class. */
  ignore: number[];
  /** The bundle's class count. */
  classes: number;
  /** Mode 'ar' with asynchronous keyframes ready this many frames late; null: synchronous. */
  keyframeDelay: number | null;
  /** Where mode 'ar' takes its motion from (SegmentOptions.motionSource). */
  motionSource: MotionSourceOption;
  /** Motion fill in mode 'ar' (SegmentOptions.motionFill). */
  motionFill: MotionFill;
}

/** The modes asked for, in EVAL_MODES' order; ERR_INVALID_ARG when none is one of them. */
function evalModes(asked: readonly string[] | undefined): SegmentMode[] {
  const modes = EVAL_MODES.filter((mode) => (asked ?? EVAL_MODES).includes(mode));
  if (modes.length === 0) throw invalidArg('no modes to evaluate (hr, lr, ar)');
  return modes;
}

/** Resolves modes, interval, scale and the ignored class against the model's bundle. */
export function resolveProtocol(
  seg: ArSeg,
  o: Pick<EvaluateOptions, 'modes' | 'interval' | 'scale' | 'keyframeDelay' | 'motionSource' | 'motionFill'>,
): Protocol {
  const m = seg.bundle.manifest;
  const modes = evalModes(o.modes);
  const K = m.classes.length;
  const ignoreIndex =
    typeof m.ignoreIndex === 'number' && m.ignoreIndex >= 0 && m.ignoreIndex < K ? m.ignoreIndex : null;
  const interval = integerIn('interval', o.interval, 1, Infinity, m.keyframeInterval);
  const keyframeDelay = o.keyframeDelay === undefined ? null : integerIn('keyframeDelay', o.keyframeDelay, 0, Infinity);
  // Passed to the reader as it is, which checks it.
  const motionSource = o.motionSource ?? 'auto';
  return {
    modes,
    interval,
    scale: o.scale ?? m.lrScale,
    ignore: ignoreIndex === null ? [] : [ignoreIndex],
    classes: K,
    keyframeDelay,
    motionSource,
    motionFill: o.motionFill ?? 'estimate',
  };
}

/** Fresh per-distance metrics for the protocol. */
export function newMetrics(p: Protocol): DistanceMetrics {
  return new DistanceMetrics(p.classes, p.interval, { ignore: p.ignore });
}

/**
 * Segments one clip in one mode and adds every frame to `acc` at its reference distance.
 * ERR_LABELS when the clip has more frames than labels (checked at the first frame when the
 * container declares its count) or fewer.
 */
export async function evaluateClip(
  seg: ArSeg,
  labels: ClipLabels,
  mode: SegmentMode,
  p: Protocol,
  acc: DistanceMetrics,
  onFrame?: () => void,
): Promise<ClipModeResult> {
  const clip = labels.clip;
  const async =
    mode === 'ar' && p.keyframeDelay !== null
      ? { keyframeLatency: 'async' as const, keyframeDelay: p.keyframeDelay }
      : {};
  const segmentation = seg.segment(clip.video, {
    mode,
    scale: p.scale,
    keyframes: p.interval,
    motionSource: p.motionSource,
    motionFill: p.motionFill,
    ...async,
  });
  let declared: number | null = null;
  try {
    declared = (await segmentation.info()).frameCount ?? null;
  } catch {
    // an input that cannot be opened fails the first read of the loop below, with its code
  }
  let frames = 0;
  let covered = 0; // frames of the stream up to the last decoded one (dropped frames are not scored)
  let keyframesNotI = 0;
  for await (const r of segmentation) {
    // Thrown inside the loop, so that the reader is closed.
    if (frames === 0 && declared !== null && declared > labels.files.length)
      throw labelsError(
        `clip ${clip.name}: the video has more frames than labels (${declared} frames in ${clip.video}, ${labels.files.length} labels in ${clip.labels})`,
      );
    const gt = await labels.frame(r.index, r.width, r.height);
    const d = r.index - r.keyframeIndex;
    acc.add(d, gt, r.labels);
    if (d === 0 && r.pictType !== 'I') keyframesNotI++;
    frames++;
    covered = r.index + 1;
    onFrame?.();
  }
  labels.finish(covered);
  return { frames, keyframesNotI };
}

/** Warnings about a dataset's declared classes and GOP against the model and the protocol. */
export function datasetWarnings(
  datasets: { dir: string; splits: DatasetSplits }[],
  classNames: string[],
  interval: number,
): string[] {
  const warnings: string[] = [];
  for (const { dir, splits } of datasets) {
    if (Array.isArray(splits.classes)) {
      const names = splits.classes.map(String);
      if (names.length !== classNames.length || names.some((n, i) => n !== classNames[i]))
        warnings.push(
          `${dir}: the dataset's classes (${names.join(', ')}) differ from the model's evaluated classes (${classNames.join(', ')}); labels are read as the model's class indices`,
        );
    }
    if (typeof splits.gop === 'number' && splits.gop !== interval)
      warnings.push(
        `${dir}: the dataset's GOP is ${splits.gop} but keyframes are every ${interval} frames: keyframes are not at GOP starts`,
      );
  }
  return warnings;
}

/** The warning for keyframes that are not I-frames (the stream was not encoded with GOP L). */
export function keyframesNotIWarning(notI: number, interval: number): string {
  return `${notI} keyframes (every ${interval} frames from frame 0) are not I-frames: the protocol wants the stream encoded with GOP ${interval}`;
}

/**
 * The report of accumulated metrics (shared by evaluate() and the queue's merged runs, which
 * have the model's manifest but no loaded model).
 */
export function buildReport(
  model: { name: string; classes: readonly { name: string }[] },
  p: Protocol,
  metrics: Map<SegmentMode, DistanceMetrics>,
  clips: { clip: LabelledClip; frames: number }[],
  seconds: number,
  warnings: string[],
): EvalReport {
  const m = model;
  const first = metrics.get(p.modes[0])!;
  const evaluated = first.evaluatedClasses();
  return {
    model: m.name,
    classes: evaluated.map((c) => m.classes[c].name),
    classIndices: evaluated,
    ignore: [...first.ignore],
    interval: p.interval,
    scale: p.scale,
    keyframeDelay: p.keyframeDelay,
    clips: clips.map(({ clip, frames }) => ({ name: clip.name, video: clip.video, labels: clip.labels, frames })),
    modes: Object.fromEntries(p.modes.map((mode) => [mode, metrics.get(mode)!.report()])),
    seconds,
    warnings,
  };
}

/**
 * Evaluates videos or dataset directories (see dataset.ts) in each mode. Every clip's labels are
 * listed before the model loads, so that a missing file fails at once.
 */
export async function evaluate(inputs: string[], o: EvaluateOptions): Promise<EvalReport> {
  const started = process.hrtime.bigint();
  evalModes(o.modes); // checked before the clips are listed and the model loads
  const { clips, datasets } = await resolveClips(inputs, o);
  const labelFiles: string[][] = [];
  for (const clip of clips) labelFiles.push(await listLabelFiles(clip.labels, clip.name));
  const seg = typeof o.model === 'string' ? await ArSeg.load(o.model, { device: o.device }) : o.model;
  try {
    const p = resolveProtocol(seg, o);
    const metrics = new Map(p.modes.map((mode) => [mode, newMetrics(p)]));
    const classNames = metrics
      .get(p.modes[0])!
      .evaluatedClasses()
      .map((c) => seg.bundle.manifest.classes[c].name);
    const warnings = datasetWarnings(datasets, classNames, p.interval);
    const labels = clips.map((clip, i) => new ClipLabels(clip, labelFiles[i], p.classes));
    const total = labels.reduce((s, l) => s + l.files.length, 0) * p.modes.length;
    let done = 0;
    let notI = 0;
    const counted: { clip: LabelledClip; frames: number }[] = [];
    for (const clipLabels of labels) {
      let frames = 0;
      for (const mode of p.modes) {
        const r = await evaluateClip(seg, clipLabels, mode, p, metrics.get(mode)!, () => o.onProgress?.(++done, total));
        if (mode === p.modes[0]) notI += r.keyframesNotI;
        frames = r.frames;
      }
      counted.push({ clip: clipLabels.clip, frames });
    }
    if (notI > 0) warnings.push(keyframesNotIWarning(notI, p.interval));
    return buildReport(
      seg.bundle.manifest,
      p,
      metrics,
      counted,
      Number(process.hrtime.bigint() - started) / 1e9,
      warnings,
    );
  } finally {
    if (typeof o.model === 'string') await seg.close();
  }
}

function pct(v: number | null): string {
  return v === null ? '–' : (100 * v).toFixed(1);
}

/** The report as Markdown: mIoU per d and mean, per-class IoU, frames counted. */
export function formatEvalMarkdown(r: EvalReport): string {
  const modes = EVAL_MODES.filter((m) => r.modes[m]);
  const ds = Array.from({ length: r.interval }, (_, d) => d);
  const frames = r.modes[modes[0]]!;
  const lines: string[] = [];
  lines.push(
    `mIoU (%) of ${r.model} per reference distance d (keyframe every ${r.interval} frames, LR scale ${r.scale}); ` +
      `${r.clips.length} clip${r.clips.length === 1 ? '' : 's'}, ${frames.framesTotal} frames per mode` +
      (r.keyframeDelay !== null && r.modes.ar
        ? `; ar with asynchronous keyframes, each ready ${r.keyframeDelay} frames after its frame`
        : ''),
    '',
    `| mode | ${ds.map((d) => `d=${d}`).join(' | ')} | mean |`,
    `|---|${ds.map(() => '---:').join('|')}|---:|`,
  );
  for (const mode of modes) {
    const rep = r.modes[mode]!;
    lines.push(`| ${mode} | ${rep.perDistance.map(pct).join(' | ')} | **${pct(rep.mean)}** |`);
  }
  lines.push(`| frames | ${frames.frames.join(' | ')} | ${frames.framesTotal} |`);
  lines.push(
    '',
    'IoU (%) per class, mean over d',
    '',
    `| class | ${modes.join(' | ')} |`,
    `|---|${modes.map(() => '---:').join('|')}|`,
  );
  r.classes.forEach((name, k) =>
    lines.push(`| ${name} | ${modes.map((mode) => pct(r.modes[mode]!.perClass[k])).join(' | ')} |`),
  );
  return lines.join('\n') + '\n';
}
