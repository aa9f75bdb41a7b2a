/**
 * Helpers over dense motion fields (see MotionField): sampling at a pixel and resizing to
 * another grid, with the displacement scaled to the new pixel units (docs/method.md: the field given
 * to CReFF is resized to the feature size with its values scaled by the same factor).
 */
import { ArSegError, ErrorCodes, toArSegError } from './errors';
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
    return addon().resizeMotion(field.data, field.width, field.height, field.stride, frameWidth, frameHeight, outWidth, outHeight, mode);
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
    throw new ArSegError(ErrorCodes.SHAPE, `the fields must share a grid: ${width}x${height}/${stride} and ${second.width}x${second.height}/${second.stride}`);
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
