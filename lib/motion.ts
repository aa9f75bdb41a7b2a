/**
 * Helpers over dense motion fields (see MotionField): sampling at a pixel and resizing to
 * another grid, with the displacement scaled to the new pixel units (docs/method.md: the field given
 * to CReFF is resized to the feature size with its values scaled by the same factor).
 */
import { toArSegError } from './errors';
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
 * Resamples a field (of a frameWidth x frameHeight frame) onto an outWidth x outHeight grid,
 * natively (native/motion/resize_field.cc; test/motion.test.js checks it against sampleMotion),
 * covering the same frame, each output cell sampled at its centre, with displacements
 * multiplied by outWidth / frameWidth (x) and outHeight / frameHeight (y), i.e. expressed in
 * output-grid pixels. Returns 2 x outHeight x outWidth.
 */
export function resizeMotion(
  field: MotionField,
  frameWidth: number,
  frameHeight: number,
  outWidth: number,
  outHeight: number,
): Float32Array {
  // the sizes are checked natively (ERR_INVALID_ARG), where they are used
  try {
    return addon().resizeMotion(field.data, field.width, field.height, field.stride, frameWidth, frameHeight, outWidth, outHeight);
  } catch (err) {
    throw toArSegError(err);
  }
}
