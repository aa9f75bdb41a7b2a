/**
 * Helpers over dense motion fields (see MotionField): sampling at a pixel and resizing to
 * another grid, with the displacement scaled to the new pixel units (docs/method.md: the field given
 * to CReFF is resized to the feature size with its values scaled by the same factor), and the
 * motion estimator on two pictures of your own (the reader runs it itself where the bitstream
 * has no vectors: FrameOptions.motionSource).
 */
import { ArSegError, ErrorCodes, toArSegError } from './errors';
import { optionsObject } from './options';
import { addon } from './native';
import type { MotionField } from './frame';

/** Bilinear sample of the field at pixel (x, y) of the frame, clamped at the border. */
export function sampleMotion(field: MotionField, x: number, y: number): [number, number] {
  const { width, height, stride, data } = field;
  const half = (stride - 1) / 2;
  const u = Math.min(Math.max((x - half) / stride, 0), width - 1);
  const v = Math.min(Math.max((y - half) / stride, 0), height - 1);
  const j0 = Math.floor(u);
  const i0 = Math.floor(v);
  const j1 = Math.min(j0 + 1, width - 1);
  const i1 = Math.min(i0 + 1, height - 1);
  const fu = u - j0;
  const fv = v - i0;
  const plane = width * height;
  const at = (c: number, i: number, j: number) => data[c * plane + i * width + j];
  const lerp = (c: number) =>
    (1 - fv) * ((1 - fu) * at(c, i0, j0) + fu * at(c, i0, j1)) + fv * ((1 - fu) * at(c, i1, j0) + fu * at(c, i1, j1));
  return [lerp(0), lerp(1)];
}

/**
 * How a field reaches another grid (a bundle's motion.resize):
 * - 'cell-centres' (this project's): each output cell sampled bilinearly at its centre from the
 *   field's cell centres, displacements multiplied by outWidth / frameWidth (x) and
 *   outHeight / frameHeight (y);
 * - 'align-corners' (the official evaluation): the per-pixel field (each pixel its cell's value)
 *   resized bilinearly with align_corners=True, both components multiplied by
 *   outHeight / frameHeight;
 * - 'nearest' (the official training): the same with PyTorch's nearest rule.
 */
export type MotionResize = 'cell-centres' | 'align-corners' | 'nearest';

/** Every MotionResize, in the order of the list above. */
export const MOTION_RESIZES: readonly MotionResize[] = ['cell-centres', 'align-corners', 'nearest'];

/**
 * Resamples a field (of a frameWidth x frameHeight frame) onto an outWidth x outHeight grid
 * covering the same frame, with displacements expressed in output-grid pixels, natively
 * (native/motion/resize_field.cc; test/motion.test.js checks every mode against a JS
 * reference). Returns 2 x outHeight x outWidth.
 */
export function resizeMotion(
  field: MotionField,
  frameWidth: number,
  frameHeight: number,
  outWidth: number,
  outHeight: number,
  mode: MotionResize = 'cell-centres',
): Float32Array {
  // the sizes and the mode are checked natively (ERR_INVALID_ARG), where they are used
  try {
    return addon().resizeMotion(
      field.data,
      field.width,
      field.height,
      field.stride,
      frameWidth,
      frameHeight,
      outWidth,
      outHeight,
      mode,
    );
  } catch (err) {
    throw toArSegError(err);
  }
}

/**
 * Follows `first` and then `second`: the field that takes a pixel p of the frame `first` starts
 * from to where `second` finally takes it, first(p) + second(p + first(p)), with `second`
 * sampled bilinearly at the landing point, in cell units, clamped at the border (as the
 * native composer follows a reference frame's field). Both fields must share one grid.
 * Returns a new field in `second`'s mode.
 */
export function composeMotion(first: MotionField, second: MotionField): MotionField {
  const { width, height, stride } = first;
  if (second.width !== width || second.height !== height || second.stride !== stride)
    throw new ArSegError(
      ErrorCodes.SHAPE,
      `the fields must share a grid: ${width}x${height}/${stride} and ${second.width}x${second.height}/${second.stride}`,
    );
  const plane = width * height;
  const a = first.data;
  const b = second.data;
  const out = new Float32Array(2 * plane);
  const maxU = width - 1;
  const maxV = height - 1;
  for (let i = 0; i < height; i++) {
    for (let j = 0; j < width; j++) {
      const k = i * width + j;
      const ax = a[k];
      const ay = a[plane + k];
      const u = Math.min(Math.max(j + ax / stride, 0), maxU);
      const v = Math.min(Math.max(i + ay / stride, 0), maxV);
      const j0 = Math.floor(u);
      const i0 = Math.floor(v);
      const dj = j0 < maxU ? 1 : 0;
      const di = i0 < maxV ? width : 0;
      const fu = u - j0;
      const fv = v - i0;
      const c = i0 * width + j0;
      for (let ch = 0; ch < 2; ch++) {
        const o = ch * plane + c;
        const top = b[o] + fu * (b[o + dj] - b[o]);
        const bottom = b[o + di] + fu * (b[o + di + dj] - b[o + di]);
        out[ch * plane + k] = (ch === 0 ? ax : ay) + top + fv * (bottom - top);
      }
    }
  }
  return { data: out, width, height, stride, mode: second.mode };
}

/** Options of estimateMotion (native/motion/estimator.h explains the method and its settings). */
export interface EstimateMotionOptions {
  /** Bytes per row of both planes. Default: the width. */
  linesize?: number;
  /** Cell size of the field in pixels (1..256). Default 8. */
  stride?: number;
  /**
   * 'vectorised' (default; the CPU's AVX-512, AVX2 or baseline code, capped by ARSEG_SIMD) or
   * 'reference' (the plain implementation the tests compare it with; slow).
   */
  kernel?: 'vectorised' | 'reference';
  /** Finest pyramid level searched: 0 = full resolution, 1 = half (default), 2, 3. */
  finestLevel?: number;
  /** Gauss-Newton steps per patch and level (0..64). Default 4. */
  iterations?: number;
  /** Pixels between 8x8 patch origins (1..8). Default 6. */
  patchStride?: number;
  /** Whole-pixel offsets (+-) tried on the coarsest level (0..16). Default 4. */
  coarseRadius?: number;
  /** The same on the finer levels (0..16). Default 0. */
  fineRadius?: number;
  /** A field of the same frame (e.g. the last estimate) tried as the coarsest level's start. */
  prior?: MotionField;
}

/** What estimateMotion gives: the field to the previous picture and which cells matched. */
export interface EstimatedMotion extends MotionField {
  /** Per cell, 1 where a patch matched (0: content not in the previous picture, a cut). */
  matched: Uint8Array;
  /** Time the estimate took natively. */
  milliseconds: number;
}

/**
 * The dense motion from `current` to `previous`, two 8-bit luma (grey) planes of width x
 * height: the field (mode 'reference') such that current at p matches previous at p + d, as the
 * reader estimates it for codecs without motion vectors (native/motion/estimator.h). Runs on the
 * thread pool; ERR_INVALID_ARG / ERR_SHAPE for bad arguments.
 */
export async function estimateMotion(
  previous: Uint8Array,
  current: Uint8Array,
  width: number,
  height: number,
  options: EstimateMotionOptions = {},
): Promise<EstimatedMotion> {
  const { prior, ...rest } = optionsObject(options);
  try {
    const r = await addon().estimateMotion(previous, current, width, height, {
      ...rest,
      prior: prior ? { data: prior.data, width: prior.width, height: prior.height, stride: prior.stride } : undefined,
    });
    return {
      data: r.data,
      width: r.width,
      height: r.height,
      stride: r.stride,
      mode: 'reference',
      matched: r.matched,
      milliseconds: r.milliseconds,
    };
  } catch (err) {
    throw toArSegError(err);
  }
}
