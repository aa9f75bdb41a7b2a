/**
 * Labelled clips for evaluation: the inputs of `ar-seg eval` (videos, clip directories, datasets
 * holding splits.json) expanded into clips, and each clip's label PNGs listed and read with their
 * checks. Label PNGs are 8-bit (greyscale or palette), named by frame index (000000.png, ...),
 * one per frame in display order; value = class index, 255 = ignore (and the bundle's
 * ignoreIndex). Every problem is ERR_LABELS naming the file.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { ArSegError, ErrorCodes, invalidArg } from './errors';
import { IGNORE_LABEL } from './metrics';
import { decodeLabelPng } from './png';

/** A video and the directory of its label PNGs, one per frame (000000.png...). */
export interface LabelledClip {
  /** `<split>/<clip>` for a dataset's clips, the path as given for a video. */
  name: string;
  /** The video file. */
  video: string;
  /** The directory of label PNGs. */
  labels: string;
}

export function labelsError(message: string): ArSegError {
  return new ArSegError(ErrorCodes.LABELS, message);
}

async function statOrNull(p: string) {
  try {
    return await fs.stat(p);
  } catch {
    return null;
  }
}

/**
 * A dataset's splits.json: each split a list of clip names, plus what the dataset says of
 * itself (checked against the model and the protocol by `evaluate`).
 */
export interface DatasetSplits {
  /** A split's clip names (a list of strings), by split name. */
  [split: string]: unknown;
  /** The dataset's class names, in label order. */
  classes?: unknown;
  /** The GOP its clips were encoded with. */
  gop?: unknown;
}

/** Expands the command's inputs (videos, clip directories, datasets) into clips. */
export async function resolveClips(
  inputs: string[],
  o: { labels?: string; split?: string },
): Promise<{
  /** Every clip, in the order of the inputs. */
  clips: LabelledClip[];
  /** The dataset directories among the inputs, with their splits.json. */
  datasets: {
    /** The dataset directory. */
    dir: string;
    /** Its splits.json. */
    splits: DatasetSplits;
  }[];
}> {
  if (inputs.length === 0) throw invalidArg('give at least one video or dataset directory');
  const split = o.split ?? 'test';
  const clips: LabelledClip[] = [];
  const datasets: { dir: string; splits: DatasetSplits }[] = [];
  for (const input of inputs) {
    const st = await statOrNull(input);
    if (st?.isDirectory()) {
      const splitsFile = path.join(input, 'splits.json');
      if (await statOrNull(splitsFile)) {
        let splits: DatasetSplits;
        try {
          splits = JSON.parse(await fs.readFile(splitsFile, 'utf8')) as DatasetSplits;
        } catch (err) {
          throw new ArSegError(ErrorCodes.INVALID_DATA, `${splitsFile}: not valid JSON (${(err as Error).message})`);
        }
        const names = splits[split];
        if (!Array.isArray(names) || names.some((n) => typeof n !== 'string'))
          throw invalidArg(
            `${splitsFile} has no split '${split}' (a list of clip names); it has: ${
              Object.keys(splits)
                .filter((k) => Array.isArray(splits[k]))
                .join(', ') || 'none'
            }`,
          );
        if (names.length === 0) throw invalidArg(`split '${split}' of ${splitsFile} is empty`);
        datasets.push({ dir: input, splits });
        for (const name of names as string[]) {
          const dir = path.join(input, split, name);
          clips.push({
            name: `${split}/${name}`,
            video: path.join(dir, 'video.mp4'),
            labels: path.join(dir, 'labels'),
          });
        }
        continue;
      }
      const video = path.join(input, 'video.mp4');
      if (await statOrNull(video)) {
        clips.push({ name: input, video, labels: path.join(input, 'labels') });
        continue;
      }
      throw new ArSegError(
        ErrorCodes.NOT_FOUND,
        `${input}: a directory that is neither a dataset (no splits.json) nor a clip (no video.mp4)`,
      );
    }
    if (!st && !/^[a-z][a-z0-9+.-]*:/i.test(input))
      throw new ArSegError(ErrorCodes.NOT_FOUND, `${input}: no such file or directory`);
    clips.push({ name: input, video: input, labels: path.join(path.dirname(input), 'labels') });
  }
  if (o.labels !== undefined) {
    if (clips.length !== 1)
      throw invalidArg(
        `--labels is for a single video; these inputs give ${clips.length} clips (each reads labels/ next to its video)`,
      );
    clips[0].labels = o.labels;
  }
  if (
    datasets.length === 0 &&
    clips.length === 1 &&
    /^[a-z][a-z0-9+.-]*:/i.test(clips[0].video) &&
    o.labels === undefined
  )
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
    throw labelsError(
      `clip ${clip}: no labels directory ${dir} (label PNGs 000000.png, 000001.png, ... are expected there)`,
    );
  }
  const byIndex = new Map<number, string>();
  for (const name of names) {
    const m = /^(\d+)\.png$/i.exec(name);
    if (!m) continue;
    const i = Number(m[1]);
    if (byIndex.has(i))
      throw labelsError(`clip ${clip}: two label files for frame ${i} in ${dir}: ${byIndex.get(i)} and ${name}`);
    byIndex.set(i, name);
  }
  if (byIndex.size === 0) throw labelsError(`clip ${clip}: no label PNGs (000000.png, ...) in ${dir}`);
  const last = Math.max(...byIndex.keys());
  const files: string[] = [];
  for (let i = 0; i <= last; i++) {
    const name = byIndex.get(i);
    if (name === undefined)
      throw labelsError(
        `clip ${clip}: missing label file ${path.join(dir, `${String(i).padStart(6, '0')}.png`)} (labels run to frame ${last})`,
      );
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
  if (img.width !== width || img.height !== height)
    throw labelsError(`${file}: the label PNG is ${img.width}x${img.height}, the frame is ${width}x${height}`);
  const labels = img.labels;
  for (let i = 0; i < labels.length; i++) {
    const v = labels[i];
    if (v >= classes && v !== IGNORE_LABEL)
      throw labelsError(
        `${file}: value ${v} at (x ${i % width}, y ${Math.floor(i / width)}) is neither a class (0..${classes - 1}) nor ${IGNORE_LABEL} (ignore)`,
      );
  }
  return labels;
}

/**
 * Counts a clip's frames against its labels, one frame at a time, for one mode: checks that no
 * frame is past the labels and, at the end, that every label had its frame.
 */
export class ClipLabels {
  /** The clip. */
  readonly clip: LabelledClip;
  /** Its label files, by frame index. */
  readonly files: string[];
  /** Classes of the model: a label value must be one of them or ignored. */
  readonly classes: number;

  constructor(clip: LabelledClip, files: string[], classes: number) {
    this.clip = clip;
    this.files = files;
    this.classes = classes;
  }

  /** Lists the clip's label files (ERR_LABELS when they are missing or not numbered 0..N-1). */
  static async open(clip: LabelledClip, classes: number): Promise<ClipLabels> {
    return new ClipLabels(clip, await listLabelFiles(clip.labels, clip.name), classes);
  }

  /** The labels of frame `index`, checked; ERR_LABELS when the clip has more frames than labels. */
  async frame(index: number, width: number, height: number): Promise<Uint8Array> {
    if (index >= this.files.length)
      throw labelsError(
        `clip ${this.clip.name}: the video has more frames than labels (${this.files.length} in ${this.clip.labels}; frame ${index} has none)`,
      );
    return readLabelFile(this.files[index], width, height, this.classes);
  }

  /** After the last frame: ERR_LABELS when fewer frames were decoded than there are labels. */
  finish(decoded: number): void {
    if (decoded < this.files.length)
      throw labelsError(
        `clip ${this.clip.name}: ${decoded} frames decoded from ${this.clip.video} but ${this.files.length} labels in ${this.clip.labels}`,
      );
  }
}
