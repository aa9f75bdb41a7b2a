/**
 * `ar-seg mvs VIDEO --dump DIR [--dense STRIDE]`: dumps motion vectors in mv-extractor's layout
 * (frame_types.txt, motion_vectors/mvs-<i>.npy as int32 N x 10, byte for byte what stock
 * libavcodec exports), each vector's exact reference beside them
 * (motion_vectors/refs-<i>.npy, int32 N: VideoFrame.vectorRefs, a file mv-extractor's readers
 * do not look for) and, with --dense, the dense fields accumulated to the keyframe
 * (motion_fields/field-<i>.npy, float32 2 x H/S x W/S), which python/ reads for training.
 */
import * as path from 'node:path';
import { expectedFrameCount, openVideo } from '../video';
import { releaseMotion } from '../recycle';
import { MotionFill, MotionSourceOption, VECTOR_COLUMNS, VideoFrame } from '../frame';
import { encodeNpy } from '../npy';
import { prepareOutputDir, writeOutput } from '../output';
import { progressBar } from './progress';

export interface MvsOptions {
  dump?: string;
  dense?: number;
  keyframes?: 'gop' | 'adaptive' | number;
  /** Where vectors come from. Default 'auto': estimated when the codec has none. */
  motionSource?: MotionSourceOption;
  /** With --dense: FrameOptions.motionFill. */
  motionFill?: MotionFill;
  /** The largest picture accepted (see FrameOptions.limitInputPixels). */
  limitInputPixels?: number;
  composition?: 'bilinear' | 'official';
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
  /** Whether the vectors name their exact reference (refs-<i>.npy holds 0 where not). */
  motionExact: boolean;
  dump: string | null;
  /** Frames of the stream the decoder dropped; frame_types.txt has '?' on their lines. */
  droppedFrames: number[];
  seconds: number;
  fps: number;
}

/**
 * Reads every frame's vectors (and with `dense` the field), dumping them with `dump`.
 * `onFrame` sees each frame before its motion arrays are released for the next frames
 * (releaseMotion): it must copy what it keeps.
 */
export async function runMvs(
  source: string,
  options: MvsOptions,
  onFrame?: (frame: VideoFrame) => void,
): Promise<MvsSummary> {
  const started = process.hrtime.bigint();
  // the dump directory first: a wrong --dump fails before anything is read
  const dump = options.dump
    ? await prepareOutputDir(options.dump, options.dense ? ['motion_vectors', 'motion_fields'] : ['motion_vectors'])
    : null;
  const reader = openVideo(source, {
    vectors: true,
    motion: options.dense ? 'accumulated' : 'none',
    stride: options.dense ?? 8,
    keyframes: options.keyframes ?? 'gop',
    motionSource: options.motionSource ?? 'auto',
    motionFill: options.motionFill ?? 'estimate',
    limitInputPixels: options.limitInputPixels,
    composition: options.composition ?? 'bilinear',
  });
  const info = await reader.open();
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
    motionExact: info.motionExact,
    dump,
    droppedFrames: [],
    seconds: 0,
    fps: 0,
  };
  const types: string[] = [];
  const bar = progressBar('mvs', expectedFrameCount(info), options.progress);
  let failure: unknown;
  try {
    for await (const frame of reader) {
      const vectors = frame.vectors!;
      const rows = vectors.length / VECTOR_COLUMNS.length;
      // line i of frame_types.txt is frame i of the stream: '?' for a frame the decoder dropped
      while (types.length < frame.index) {
        summary.droppedFrames.push(types.length);
        types.push('?');
      }
      types.push(frame.pictType);
      summary.frames++;
      summary.pictTypes[frame.pictType] = (summary.pictTypes[frame.pictType] ?? 0) + 1;
      if (frame.isKeyframe) summary.keyframes++;
      summary.vectors += rows;
      if (dump) {
        await writeOutput(
          path.join(dump, 'motion_vectors', `mvs-${frame.index}.npy`),
          encodeNpy(vectors, [rows, VECTOR_COLUMNS.length]),
        );
        await writeOutput(
          path.join(dump, 'motion_vectors', `refs-${frame.index}.npy`),
          encodeNpy(frame.vectorRefs!, [rows]),
        );
        if (frame.motion) {
          const m = frame.motion;
          summary.dense = { stride: m.stride, width: m.width, height: m.height };
          await writeOutput(
            path.join(dump, 'motion_fields', `field-${frame.index}.npy`),
            encodeNpy(m.data, [2, m.height, m.width]),
          );
        }
      }
      onFrame?.(frame);
      // written out (encodeNpy copied it): the next frames reuse this one's storage
      releaseMotion(frame);
      bar.update(summary.frames);
    }
  } catch (err) {
    failure = err;
  } finally {
    bar.stop();
  }
  // Whatever was decoded is kept, even when the stream ends in an error (the first error is the
  // one reported: a full disk fails this file too).
  if (dump) {
    try {
      await writeOutput(path.join(dump, 'frame_types.txt'), types.map((t) => t + '\n').join(''));
    } catch (err) {
      throw (failure ?? err) as Error;
    }
  }
  if (failure) throw failure as Error;
  summary.seconds = Number(process.hrtime.bigint() - started) / 1e9;
  summary.fps = summary.frames / summary.seconds;
  return summary;
}
