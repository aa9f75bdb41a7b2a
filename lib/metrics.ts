/**
 * Segmentation metrics for the evaluation protocol (docs/method.md): confusion matrices, IoU per
 * class, mIoU, and their accumulation per reference distance d (a frame's distance from its
 * keyframe) over a whole set of clips.
 *
 * - A confusion matrix counts pixels by (label, prediction): row = label, column = prediction.
 * - Pixels labelled 255, or with one of the extra ignored values (the bundle's ignoreIndex), are
 *   not counted. A prediction of an ignored class (e.g. 'void') on a counted pixel is a miss
 *   for the pixel's class.
 * - IoU_c = TP / (TP + FP + FN); it is null (not 0) for a class absent from both labels and
 *   predictions (union 0), and ignored classes have none. mIoU is the mean over the classes that
 *   have one; null when none has.
 * - Per distance: one matrix per d, accumulated over every frame of every clip at that d;
 *   mIoU_d comes from that matrix, and the reported figure is the mean of mIoU_d over the d that
 *   have frames. Per-class IoU is likewise the mean over d of IoU_d(c).
 */
import { ArSegError, ErrorCodes, invalidArg } from './errors';

/** The label value that is never counted. */
export const IGNORE_LABEL = 255;

/**
 * A confusion matrix over `classes` classes (rows: label, columns: prediction), with label
 * values that are not counted (`ignore`, 255 always).
 */
export class ConfusionMatrix {
  /** Number of classes (the matrix is classes x classes). */
  readonly classes: number;
  /** Row-major counts: counts[label * classes + prediction]. */
  readonly counts: Float64Array;
  /** Label values besides 255 that are not counted (e.g. the bundle's ignoreIndex). */
  readonly ignore: readonly number[];
  #ignored: Uint8Array;

  constructor(classes: number, options: { ignore?: readonly number[] } = {}) {
    if (!Number.isInteger(classes) || classes < 1 || classes > 255)
      throw invalidArg('classes must be an integer from 1 to 255');
    this.classes = classes;
    this.counts = new Float64Array(classes * classes);
    this.ignore = [...new Set([...(options.ignore ?? []), IGNORE_LABEL])].sort((a, b) => a - b);
    this.#ignored = new Uint8Array(256);
    for (const v of this.ignore) {
      if (!Number.isInteger(v) || v < 0 || v > 255)
        throw invalidArg(`ignored label values must be integers from 0 to 255, got ${v}`);
      this.#ignored[v] = 1;
    }
  }

  /**
   * Counts one frame: `labels` and `predictions` are class indices per pixel, same length.
   * Throws ERR_SHAPE for a length mismatch and ERR_INVALID_ARG for a label that is neither a
   * class nor ignored, or a prediction that is not a class (nothing is counted then).
   */
  add(labels: ArrayLike<number>, predictions: ArrayLike<number>): this {
    const n = labels.length;
    if (predictions.length !== n)
      throw new ArSegError(ErrorCodes.SHAPE, `labels have ${n} pixels, predictions ${predictions.length}`);
    const K = this.classes;
    const ignored = this.#ignored;
    for (let i = 0; i < n; i++) {
      const g = labels[i];
      if (!ignored[g] && !(g >= 0 && g < K && Number.isInteger(g)))
        throw invalidArg(
          `label ${g} at pixel ${i} is neither a class (0..${K - 1}) nor ignored (${this.ignore.join(', ')})`,
        );
      const p = predictions[i];
      if (!(p >= 0 && p < K && Number.isInteger(p)))
        throw invalidArg(`prediction ${p} at pixel ${i} is not a class (0..${K - 1})`);
    }
    const c = this.counts;
    for (let i = 0; i < n; i++) {
      const g = labels[i];
      if (!ignored[g]) c[g * K + predictions[i]]++;
    }
    return this;
  }

  /** Adds another matrix's counts (same class count). */
  merge(other: ConfusionMatrix): this {
    if (other.classes !== this.classes)
      throw new ArSegError(
        ErrorCodes.SHAPE,
        `cannot merge a ${other.classes}-class matrix into a ${this.classes}-class one`,
      );
    for (let i = 0; i < this.counts.length; i++) this.counts[i] += other.counts[i];
    return this;
  }

  /** Pixels counted. */
  get total(): number {
    let s = 0;
    for (const v of this.counts) s += v;
    return s;
  }

  /** IoU per class; null for a class with union 0 or one in `ignore` (see iouFromConfusion). */
  iou(): (number | null)[] {
    return iouFromConfusion(this.counts, this.classes, this.ignore);
  }

  /** Mean IoU over the classes that have one; null when none has. */
  meanIoU(): number | null {
    return meanOf(this.iou());
  }
}

/**
 * IoU per class from a row-major (label x prediction) confusion matrix of `classes` classes.
 * Classes listed in `exclude` and classes with union 0 give null.
 */
export function iouFromConfusion(
  counts: ArrayLike<number>,
  classes: number,
  exclude: readonly number[] = [],
): (number | null)[] {
  if (counts.length !== classes * classes)
    throw new ArSegError(
      ErrorCodes.SHAPE,
      `a ${classes}-class confusion matrix has ${classes * classes} entries, got ${counts.length}`,
    );
  const out: (number | null)[] = [];
  for (let c = 0; c < classes; c++) {
    if (exclude.includes(c)) {
      out.push(null);
      continue;
    }
    let row = 0;
    let col = 0;
    for (let k = 0; k < classes; k++) {
      row += counts[c * classes + k];
      col += counts[k * classes + c];
    }
    const tp = counts[c * classes + c];
    const union = row + col - tp;
    out.push(union > 0 ? tp / union : null);
  }
  return out;
}

/** The mean of the non-null values; null when there are none. */
export function meanOf(values: readonly (number | null)[]): number | null {
  let s = 0;
  let n = 0;
  for (const v of values)
    if (v !== null) {
      s += v;
      n++;
    }
  return n ? s / n : null;
}

/** One mode's results over a set (see DistanceMetrics.report). */
export interface DistanceReport {
  /** mIoU_d for d = 0..distances-1; null where no frame (or no class) was counted. */
  perDistance: (number | null)[];
  /** The mean of mIoU_d over the d that have one: the protocol's figure. */
  mean: number | null;
  /** IoU per class (the evaluated classes, in `classes` order), mean over d. */
  perClass: (number | null)[];
  /** IoU per class per d: perClassPerDistance[d][k]. */
  perClassPerDistance: (number | null)[][];
  /** Frames counted per d. */
  frames: number[];
  /** Frames counted in all. */
  framesTotal: number;
  /** Pixels counted in all (labels not ignored). */
  pixels: number;
}

/** DistanceMetrics as JSON (DistanceMetrics.toJSON / fromJSON). */
export interface DistanceMetricsJson {
  /** Number of classes (each matrix is classes x classes). */
  classes: number;
  /** Number of reference distances d (one matrix each). */
  distances: number;
  /** Label values not counted (255 and the extra ignored ones). */
  ignore: number[];
  /** Frames counted per d. */
  frames: number[];
  /** Per d, the row-major (label x prediction) confusion matrix. */
  counts: number[][];
}

/**
 * Confusion matrices per reference distance d = 0..distances-1 for one mode, accumulated over
 * every frame of a set.
 */
export class DistanceMetrics {
  /** Classes K. */
  readonly classes: number;
  /** Reference distances counted: d = 0..distances-1. */
  readonly distances: number;
  /** Label values not counted (255 and the options' `ignore`), sorted. */
  readonly ignore: readonly number[];
  /** One confusion matrix per distance d. */
  readonly matrices: ConfusionMatrix[];
  /** Frames counted per distance d. */
  readonly frames: number[];

  constructor(classes: number, distances: number, options: { ignore?: readonly number[] } = {}) {
    if (!Number.isInteger(distances) || distances < 1) throw invalidArg('distances must be a positive integer');
    this.classes = classes;
    this.distances = distances;
    this.matrices = Array.from({ length: distances }, () => new ConfusionMatrix(classes, options));
    this.ignore = this.matrices[0].ignore;
    this.frames = new Array<number>(distances).fill(0);
  }

  /** Counts one frame at distance d from its keyframe. */
  add(d: number, labels: ArrayLike<number>, predictions: ArrayLike<number>): this {
    if (!Number.isInteger(d) || d < 0 || d >= this.distances)
      throw invalidArg(`distance ${d} is outside 0..${this.distances - 1}`);
    this.matrices[d].add(labels, predictions);
    this.frames[d]++;
    return this;
  }

  /** Adds another accumulator's counts (same classes and distances). */
  merge(other: DistanceMetrics): this {
    if (other.distances !== this.distances)
      throw new ArSegError(ErrorCodes.SHAPE, `cannot merge ${other.distances} distances into ${this.distances}`);
    for (let d = 0; d < this.distances; d++) {
      this.matrices[d].merge(other.matrices[d]);
      this.frames[d] += other.frames[d];
    }
    return this;
  }

  /**
   * The counts as plain JSON: per d the frames and the row-major matrix. Counts are integers
   * (exact in JSON up to 2^53), so a set split across machines sums to exactly the same figures.
   */
  toJSON(): DistanceMetricsJson {
    return {
      classes: this.classes,
      distances: this.distances,
      ignore: [...this.ignore],
      frames: [...this.frames],
      counts: this.matrices.map((m) => Array.from(m.counts)),
    };
  }

  /** An accumulator holding counts saved by toJSON(); ERR_INVALID_ARG when they are malformed. */
  static fromJSON(j: DistanceMetricsJson): DistanceMetrics {
    if (j === null || typeof j !== 'object') throw invalidArg('metrics: not an object');
    const acc = new DistanceMetrics(j.classes, j.distances, { ignore: j.ignore });
    const count = (v: unknown) => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
    if (!Array.isArray(j.frames) || j.frames.length !== j.distances || !j.frames.every(count))
      throw invalidArg(`metrics: frames must be ${j.distances} counts`);
    if (!Array.isArray(j.counts) || j.counts.length !== j.distances)
      throw invalidArg(`metrics: counts must hold ${j.distances} matrices`);
    j.counts.forEach((c, d) => {
      if (!Array.isArray(c) || c.length !== j.classes * j.classes || !c.every(count))
        throw invalidArg(`metrics: matrix ${d} must hold ${j.classes * j.classes} counts`);
      acc.matrices[d].counts.set(c);
      acc.frames[d] = j.frames[d];
    });
    return acc;
  }

  /** Indices of the classes that are evaluated (all but ignored values that are classes). */
  evaluatedClasses(): number[] {
    const out: number[] = [];
    for (let c = 0; c < this.classes; c++) if (!this.ignore.includes(c)) out.push(c);
    return out;
  }

  /** The mIoU per distance, their mean, and IoU per class. */
  report(): DistanceReport {
    const evaluated = this.evaluatedClasses();
    const perClassPerDistance = this.matrices.map((m, d) => {
      const iou = this.frames[d] ? m.iou() : new Array<null>(this.classes).fill(null);
      return evaluated.map((c) => iou[c]);
    });
    const perDistance = perClassPerDistance.map((row) => meanOf(row));
    const perClass = evaluated.map((_, k) => meanOf(perClassPerDistance.map((row) => row[k])));
    return {
      perDistance,
      mean: meanOf(perDistance),
      perClass,
      perClassPerDistance,
      frames: [...this.frames],
      framesTotal: this.frames.reduce((a, b) => a + b, 0),
      pixels: this.matrices.reduce((a, m) => a + m.total, 0),
    };
  }
}
