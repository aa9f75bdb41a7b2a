/**
 * `ar-seg mvs VIDEO --dump DIR [--dense STRIDE]`: dumps motion vectors in mv-extractor's layout
 * (frame_types.txt, motion_vectors/mvs-<i>.npy as int32 N x 10) and, with --dense, the dense
 * fields accumulated to the keyframe (motion_fields/field-<i>.npy, float32 2 x H/S x W/S),
 * which python/ reads for training.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { expectedFrameCount, openVideo } from '../video';
import { MotionSourceOption, VECTOR_COLUMNS, VideoFrame } from '../frame';
import { writeNpy } from '../npy';
import { progressBar } from './progress';

export interface MvsOptions {
  dump?: string;
  dense?: number;
  keyframes?: 'gop' | 'adaptive' | number;
  /** Where vectors come from. Default 'auto': estimated when the codec has none. */
  motionSource?: MotionSourceOption;
  progress: boolean;
}

export interface MvsSummary {
  source: string;
  codec: string;
  /** 'bitstream' or 'estimated' (one block per cell against the previous picture). */
  motionSource: 'bitstream' | 'estimated';
  width: number;
  height: number;
  frames: number;
  pictTypes: Record<string, number>;
  keyframes: number;
  vectors: number;
  dense: { stride: number; width: number; height: number } | null;
  dump: string | null;
  seconds: number;
  fps: number;
}

export async function runMvs(
  source: string,
  options: MvsOptions,
  onFrame?: (frame: VideoFrame) => void,
): Promise<MvsSummary> {
  const started = process.hrtime.bigint();
  const reader = openVideo(source, {
    vectors: true,
    motion: options.dense ? 'accumulated' : 'none',
    stride: options.dense ?? 8,
    keyframes: options.keyframes ?? 'gop',
    motionSource: options.motionSource ?? 'auto',
  });
  const info = await reader.open();
  const dump = options.dump ? path.resolve(options.dump) : null;
  if (dump) {
    await fs.mkdir(path.join(dump, 'motion_vectors'), { recursive: true });
    if (options.dense) await fs.mkdir(path.join(dump, 'motion_fields'), { recursive: true });
  }
  const summary: MvsSummary = {
    source,
    codec: info.codec,
    motionSource: info.motionSource ?? 'bitstream',
    width: info.width,
    height: info.height,
    frames: 0,
    pictTypes: {},
    keyframes: 0,
    vectors: 0,
    dense: null,
    dump,
    seconds: 0,
    fps: 0,
  };
  const types: string[] = [];
  const bar = progressBar('mvs', expectedFrameCount(info), options.progress);
  try {
    for await (const frame of reader) {
      const vectors = frame.vectors!;
      const rows = vectors.length / VECTOR_COLUMNS.length;
      types.push(frame.pictType);
      summary.frames++;
      summary.pictTypes[frame.pictType] = (summary.pictTypes[frame.pictType] ?? 0) + 1;
      if (frame.isKeyframe) summary.keyframes++;
      summary.vectors += rows;
      if (dump) {
        await writeNpy(path.join(dump, 'motion_vectors', `mvs-${frame.index}.npy`), vectors, [rows, VECTOR_COLUMNS.length]);
        if (frame.motion) {
          const m = frame.motion;
          summary.dense = { stride: m.stride, width: m.width, height: m.height };
          await writeNpy(path.join(dump, 'motion_fields', `field-${frame.index}.npy`), m.data, [2, m.height, m.width]);
        }
      }
      onFrame?.(frame);
      bar.update(summary.frames);
    }
  } finally {
    bar.stop();
    // Whatever was decoded is kept, even when the stream ends in an error.
    if (dump) await fs.writeFile(path.join(dump, 'frame_types.txt'), types.map((t) => t + '\n').join(''));
  }
  summary.seconds = Number(process.hrtime.bigint() - started) / 1e9;
  summary.fps = summary.frames / summary.seconds;
  return summary;
}
