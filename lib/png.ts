/**
 * PNG output of segmentations (fast-png): label maps as 8-bit palette PNGs (pixel value = class
 * index, palette = class colours, so they open as colour images and read back as indices), and
 * colour overlays of the labels on the frame.
 */
import { decode, encode } from 'fast-png';

export type Rgb = [number, number, number];

/** A palette PNG of a label map (height x width class indices). */
export function encodeLabelPng(labels: Uint8Array, width: number, height: number, colors: Rgb[]): Uint8Array {
  const palette = colors.map((c) => [c[0], c[1], c[2]] as [number, number, number]);
  while (palette.length < 256) palette.push([0, 0, 0]); // indices past the classes (never written) stay black
  return encode({ width, height, data: labels, depth: 8, channels: 1, palette });
}

/** Reads a label PNG back as class indices: palette or greyscale, 8 bits. */
export function decodeLabelPng(png: Uint8Array): { labels: Uint8Array; width: number; height: number } {
  const img = decode(png);
  if (img.depth !== 8 || img.channels !== 1)
    throw new Error(`label PNGs must be 8-bit palette or greyscale, got ${img.channels} channels of ${img.depth} bits`);
  return { labels: img.data as Uint8Array, width: img.width, height: img.height };
}

/** An RGB PNG of the frame with the label colours blended in (alpha = share of the colour). */
export function encodeOverlayPng(
  rgb: Uint8Array,
  labels: Uint8Array,
  width: number,
  height: number,
  colors: Rgb[],
  alpha = 0.5,
): Uint8Array {
  const out = new Uint8Array(width * height * 3);
  for (let i = 0; i < width * height; i++) {
    const c = colors[labels[i]] ?? [0, 0, 0];
    for (let k = 0; k < 3; k++) out[i * 3 + k] = Math.round((1 - alpha) * rgb[i * 3 + k] + alpha * c[k]);
  }
  return encode({ width, height, data: out, depth: 8, channels: 3 });
}
