/**
 * `ar-seg eval <video-or-dataset...> [--model DIR] [--labels DIR] [--split test] [--modes hr,lr,ar]
 * [--interval L] [--scale S]`: the paper's evaluation protocol (method.md) through the pipeline.
 *
 * Keyframes every L frames from frame 0 (on a stream encoded with GOP L, each GOP's I-frame);
 * a frame's reference distance d is its distance from its keyframe. For each mode, one confusion
 * matrix per d is accumulated over every frame of every clip (lib/metrics.ts); the table gives
 * mIoU_d for d = 0..L-1 and their mean, the IoU per class (mean over d) and the frames counted.
 *
 * Inputs: a video (labels in `labels/` next to it, or --labels DIR), or a dataset directory
 * holding splits.json, which expands to DATASET/<split>/<clip>/video.mp4 with
 * DATASET/<split>/<clip>/labels/. Label PNGs are 8-bit (greyscale or palette), named by frame
 * index (000000.png, ...), one per frame in display order; value = class index, 255 = ignore
 * (and the bundle's ignoreIndex).
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { ArSeg, SegmentMode } from '../pipeline';
import { ArSegError, ErrorCodes, invalidArg } from '../errors';
import { DistanceMetrics, DistanceReport, IGNORE_LABEL } from '../metrics';
import { decodeLabelPng } from '../png';
import { progressBar } from './progress';

export const EVAL_MODES: readonly SegmentMode[] = ['hr', 'lr', 'ar'];

export interface EvalClip {
  /** `<split>/<clip>` for a dataset's clips, the path as given for a video. */
  name: string;
  video: string;
  /** The directory of label PNGs. */
  labels: string;
}

export interface EvalCliOptions {
  /** The model bundle directory. */
  model: string;
  /** Labels directory for a single video (default: `labels/` next to it). */
  labels?: string;
  /** The split of a dataset directory. Default 'test'. */
  split?: string;
  /** Modes to evaluate. Default hr, lr, ar. */
  modes?: SegmentMode[];
  /** Keyframe interval L. Default: the bundle's keyframeInterval. */
  interval?: number;
  /** LR scale. Default: the bundle's lrScale. */
  scale?: number;
  device?: 'cpu' | 'cuda';
  progress: boolean;
}

export interface EvalReport {
  model: string;
  /** Names of the evaluated classes (the bundle's, less its ignoreIndex), per-class order. */
  classes: string[];
  /** Class indices of `classes` in the bundle. */
  classIndices: number[];
  /** Label values not counted. */
  ignore: number[];
  interval: number;
  scale: number;
  clips: { name: string; video: string; labels: string; frames: number }[];
  /** One entry per evaluated mode, in the order hr, lr, ar. */
  modes: Partial<Record<SegmentMode, DistanceReport>>;
  seconds: number;
  warnings: string[];
}

function labelsError(message: string): ArSegError {
  return new ArSegError(ErrorCodes.LABELS, message);
}

async function statOrNull(p: string) {
  try {
    return await fs.stat(p);
  } catch {
    return null;
  }
}

interface DatasetSplits {
  [split: string]: unknown;
  classes?: unknown;
  gop?: unknown;
}

/** Expands the command's inputs (videos, clip directories, datasets) into clips. */
export async function resolveClips(
  inputs: string[],
  o: { labels?: string; split?: string },
): Promise<{ clips: EvalClip[]; datasets: { dir: string; splits: DatasetSplits }[] }> {
  if (inputs.length === 0) throw invalidArg('give at least one video or dataset directory');
  const split = o.split ?? 'test';
  const clips: EvalClip[] = [];
  const datasets: { dir: string; splits: DatasetSplits }[] = [];
  for (const input of inputs) {
    const st = await statOrNull(input);
    if (st?.isDirectory()) {
      const splitsFile = path.join(input, 'splits.json');
      if (await statOrNull(splitsFile)) {
        let splits: DatasetSplits;
        try {
          splits = JSON.parse(await fs.readFile(splitsFile, 'utf8'));
        } catch (err) {
          throw new ArSegError(ErrorCodes.INVALID_DATA, `${splitsFile}: not valid JSON (${(err as Error).message})`);
        }
        const names = splits[split];
        if (!Array.isArray(names) || names.some((n) => typeof n !== 'string'))
          throw invalidArg(`${splitsFile} has no split '${split}' (a list of clip names); it has: ${Object.keys(splits).filter((k) => Array.isArray(splits[k])).join(', ') || 'none'}`);
        if (names.length === 0) throw invalidArg(`split '${split}' of ${splitsFile} is empty`);
        datasets.push({ dir: input, splits });
        for (const name of names as string[]) {
          const dir = path.join(input, split, name);
          clips.push({ name: `${split}/${name}`, video: path.join(dir, 'video.mp4'), labels: path.join(dir, 'labels') });
        }
        continue;
      }
      const video = path.join(input, 'video.mp4');
      if (await statOrNull(video)) {
        clips.push({ name: input, video, labels: path.join(input, 'labels') });
        continue;
      }
      throw new ArSegError(ErrorCodes.NOT_FOUND, `${input}: a directory that is neither a dataset (no splits.json) nor a clip (no video.mp4)`);
    }
    if (!st && !/^[a-z][a-z0-9+.-]*:/i.test(input)) throw new ArSegError(ErrorCodes.NOT_FOUND, `${input}: no such file or directory`);
    clips.push({ name: input, video: input, labels: path.join(path.dirname(input), 'labels') });
  }
  if (o.labels !== undefined) {
    if (clips.length !== 1) throw invalidArg(`--labels is for a single video; these inputs give ${clips.length} clips (each reads labels/ next to its video)`);
    clips[0].labels = o.labels;
  }
  if (datasets.length === 0 && clips.length === 1 && /^[a-z][a-z0-9+.-]*:/i.test(clips[0].video) && o.labels === undefined)
    throw invalidArg(`${clips[0].video}: a URL has no directory next to it: give its labels with --labels DIR`);
  return { clips, datasets };
}

/**
 * The label files of a clip, by frame index: 000000.png ... in `dir`, contiguous from 0.
 * Throws ERR_LABELS when the directory is missing, holds none, or one is missing in between.
 */
export async function listLabelFiles(dir: string, clip: string): Promise<string[]> {
  let names: string[];
  try {
    names = await fs.readdir(dir);
  } catch {
    throw labelsError(`clip ${clip}: no labels directory ${dir} (label PNGs 000000.png, 000001.png, ... are expected there)`);
  }
  const byIndex = new Map<number, string>();
  for (const name of names) {
    const m = /^(\d+)\.png$/i.exec(name);
    if (!m) continue;
    const i = Number(m[1]);
    if (byIndex.has(i)) throw labelsError(`clip ${clip}: two label files for frame ${i} in ${dir}: ${byIndex.get(i)} and ${name}`);
    byIndex.set(i, name);
  }
  if (byIndex.size === 0) throw labelsError(`clip ${clip}: no label PNGs (000000.png, ...) in ${dir}`);
  const last = Math.max(...byIndex.keys());
  const files: string[] = [];
  for (let i = 0; i <= last; i++) {
    const name = byIndex.get(i);
    if (name === undefined) throw labelsError(`clip ${clip}: missing label file ${path.join(dir, `${String(i).padStart(6, '0')}.png`)} (labels run to frame ${last})`);
    files.push(path.join(dir, name));
  }
  return files;
}

/**
 * Reads one label PNG and checks it against the frame: its size, and every value a class index
 * (< classes) or 255. Throws ERR_LABELS naming the file.
 */
export async function readLabelFile(file: string, width: number, height: number, classes: number): Promise<Uint8Array> {
  let img: ReturnType<typeof decodeLabelPng>;
  try {
    img = decodeLabelPng(await fs.readFile(file));
  } catch (err) {
    throw labelsError(`${file}: cannot read the label PNG (${(err as Error).message})`);
  }
  if (img.width !== width || img.height !== height) throw labelsError(`${file}: the label PNG is ${img.width}x${img.height}, the frame is ${width}x${height}`);
  const labels = img.labels;
  for (let i = 0; i < labels.length; i++) {
    const v = labels[i];
    if (v >= classes && v !== IGNORE_LABEL)
      throw labelsError(`${file}: value ${v} at (x ${i % width}, y ${Math.floor(i / width)}) is neither a class (0..${classes - 1}) nor ${IGNORE_LABEL} (ignore)`);
  }
  return labels;
}

/**
 * Counts a clip's frames against its labels, one frame at a time, for one mode: checks that no
 * frame is past the labels and, at the end, that every label had its frame.
 */
export class ClipLabels {
  readonly clip: EvalClip;
  readonly files: string[];
  readonly classes: number;

  constructor(clip: EvalClip, files: string[], classes: number) {
    this.clip = clip;
    this.files = files;
    this.classes = classes;
  }

  static async open(clip: EvalClip, classes: number): Promise<ClipLabels> {
    return new ClipLabels(clip, await listLabelFiles(clip.labels, clip.name), classes);
  }

  /** The labels of frame `index`, checked; ERR_LABELS when the clip has more frames than labels. */
  async frame(index: number, width: number, height: number): Promise<Uint8Array> {
    if (index >= this.files.length)
      throw labelsError(`clip ${this.clip.name}: the video has more frames than labels (${this.files.length} in ${this.clip.labels}; frame ${index} has none)`);
    return readLabelFile(this.files[index], width, height, this.classes);
  }

  /** After the last frame: ERR_LABELS when fewer frames were decoded than there are labels. */
  finish(decoded: number): void {
    if (decoded < this.files.length)
      throw labelsError(`clip ${this.clip.name}: ${decoded} frames decoded from ${this.clip.video} but ${this.files.length} labels in ${this.clip.labels}`);
  }
}

export async function runEval(inputs: string[], o: EvalCliOptions): Promise<EvalReport> {
  const started = process.hrtime.bigint();
  const warnings: string[] = [];
  const modes = EVAL_MODES.filter((m) => (o.modes ?? EVAL_MODES).includes(m));
  if (modes.length === 0) throw invalidArg('no modes to evaluate (hr, lr, ar)');
  const { clips, datasets } = await resolveClips(inputs, o);
  // Every clip's labels are listed before the model loads, so that a missing file fails at once.
  const labelFiles: string[][] = [];
  for (const clip of clips) labelFiles.push(await listLabelFiles(clip.labels, clip.name));
  const seg = await ArSeg.load(o.model, { device: o.device });
  try {
    const m = seg.bundle.manifest;
    const K = m.classes.length;
    const ignoreIndex = typeof m.ignoreIndex === 'number' && m.ignoreIndex >= 0 && m.ignoreIndex < K ? m.ignoreIndex : null;
    const ignore = ignoreIndex === null ? [] : [ignoreIndex];
    const L = o.interval ?? m.keyframeInterval;
    if (!Number.isInteger(L) || L < 1) throw invalidArg('the keyframe interval must be a positive integer');
    const scale = o.scale ?? m.lrScale;
    const metrics = new Map(modes.map((mode) => [mode, new DistanceMetrics(K, L, { ignore })]));
    const evaluated = metrics.get(modes[0])!.evaluatedClasses();
    const classNames = evaluated.map((c) => m.classes[c].name);

    for (const { dir, splits } of datasets) {
      if (Array.isArray(splits.classes)) {
        const names = splits.classes.map(String);
        if (names.length !== classNames.length || names.some((n, i) => n !== classNames[i]))
          warnings.push(`${dir}: the dataset's classes (${names.join(', ')}) differ from the model's evaluated classes (${classNames.join(', ')}); labels are read as the model's class indices`);
      }
      if (typeof splits.gop === 'number' && splits.gop !== L)
        warnings.push(`${dir}: the dataset's GOP is ${splits.gop} but keyframes are every ${L} frames: keyframes are not at GOP starts`);
    }

    const labels = clips.map((clip, i) => new ClipLabels(clip, labelFiles[i], K));
    const total = labels.reduce((s, l) => s + l.files.length, 0) * modes.length;
    const bar = progressBar(`eval (${modes.join(', ')})`, total, o.progress);
    let done = 0;
    const frames = new Map<string, number>();
    let notIFrames = 0;
    try {
      for (const clipLabels of labels) {
        const clip = clipLabels.clip;
        for (const mode of modes) {
          const acc = metrics.get(mode)!;
          const segmentation = seg.segment(clip.video, { mode, scale, keyframes: L });
          let declared: number | null = null;
          try {
            declared = (await segmentation.info()).frameCount ?? null;
          } catch {
            // an input that cannot be opened fails the first read of the loop below, with its code
          }
          let decoded = 0;
          for await (const r of segmentation) {
            // A container that declares more frames than labels is refused at its first frame
            // (thrown inside the loop, so that the reader is closed).
            if (decoded === 0 && declared !== null && declared > clipLabels.files.length)
              throw labelsError(`clip ${clip.name}: the video has more frames than labels (${declared} frames in ${clip.video}, ${clipLabels.files.length} labels in ${clip.labels})`);
            const gt = await clipLabels.frame(r.index, r.width, r.height);
            const d = r.index - r.keyframeIndex;
            acc.add(d, gt, r.labels);
            if (mode === modes[0] && d === 0 && r.pictType !== 'I') notIFrames++;
            decoded++;
            bar.update(++done);
          }
          clipLabels.finish(decoded);
          frames.set(clip.name, decoded);
        }
      }
    } finally {
      bar.stop();
    }
    if (notIFrames > 0)
      warnings.push(`${notIFrames} keyframes (every ${L} frames from frame 0) are not I-frames: the protocol wants the stream encoded with GOP ${L}`);
    const report: EvalReport = {
      model: m.name,
      classes: classNames,
      classIndices: evaluated,
      ignore: [...metrics.get(modes[0])!.ignore],
      interval: L,
      scale,
      clips: clips.map((c) => ({ name: c.name, video: c.video, labels: c.labels, frames: frames.get(c.name) ?? 0 })),
      modes: Object.fromEntries(modes.map((mode) => [mode, metrics.get(mode)!.report()])),
      seconds: Number(process.hrtime.bigint() - started) / 1e9,
      warnings,
    };
    return report;
  } finally {
    await seg.close();
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
      `${r.clips.length} clip${r.clips.length === 1 ? '' : 's'}, ${frames.framesTotal} frames per mode`,
    '',
    `| mode | ${ds.map((d) => `d=${d}`).join(' | ')} | mean |`,
    `|---|${ds.map(() => '---:').join('|')}|---:|`,
  );
  for (const mode of modes) {
    const rep = r.modes[mode]!;
    lines.push(`| ${mode} | ${rep.perDistance.map(pct).join(' | ')} | **${pct(rep.mean)}** |`);
  }
  lines.push(`| frames | ${frames.frames.join(' | ')} | ${frames.framesTotal} |`);
  lines.push('', 'IoU (%) per class, mean over d', '', `| class | ${modes.join(' | ')} |`, `|---|${modes.map(() => '---:').join('|')}|`);
  r.classes.forEach((name, k) => lines.push(`| ${name} | ${modes.map((mode) => pct(r.modes[mode]!.perClass[k])).join(' | ')} |`));
  return lines.join('\n') + '\n';
}
