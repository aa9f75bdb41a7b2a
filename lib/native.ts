/**
 * Loads the compiled addon through node-gyp-build, in its search order: a from-source build in
 * build/Release when there is one (a repository checkout after `npm run build`, or an install
 * that fell back to binding.gyp), else the prebuild in prebuilds/<platform>-<arch>/ that fits
 * (linux-x64: node.napi.glibc.node). PREBUILDS_ONLY=1 skips build/Release.
 */
import * as path from 'node:path';
import { ArSegError, ErrorCodes } from './errors';
import type { VideoInfo } from './video';

export interface NativeFrame {
  index: number;
  pts: number | null;
  pictType: string;
  isKeyframe: boolean;
  keyframeIndex: number;
  corrupt: boolean;
  width: number;
  height: number;
  rgb?: Uint8Array;
  tensors?: { data: Float32Array; width: number; height: number }[];
  vectors?: Int32Array;
  vectorRefs?: Int32Array;
  motion?: { width: number; height: number; stride: number; data: Float32Array };
  motionSource?: 'bitstream' | 'estimated';
}

export interface NativeVideoReader {
  open(): Promise<VideoInfo>;
  read(): Promise<NativeFrame | null>;
  close(): void;
  stats(): { framesDelivered: number; decodeErrors: number; framesDropped: number };
}

export interface NativePacketReader {
  decode(packet: Uint8Array, pts?: number): Promise<NativeFrame[]>;
  flush(): Promise<NativeFrame[]>;
  close(): void;
  stats(): { decodeErrors: number };
  readonly motionExact: boolean;
  /** Where motion comes from (vectors or motion asked for), else null. */
  readonly motionSource: 'bitstream' | 'estimated' | null;
}

export interface NativeCReFFWeights {
  channels: number;
  window: number;
  qWeight: Float32Array;
  qBias: Float32Array;
  kWeight: Float32Array;
  kBias: Float32Array;
  vWeight: Float32Array;
  vBias: Float32Array;
}

export interface NativeKeyframe {
  info(): { channels: number; height: number; width: number; mode: string };
}

export interface NativeCReFF {
  prepareKeyframe(key: Float32Array, height: number, width: number, options: object): Promise<NativeKeyframe>;
  run(
    lr: Float32Array,
    lrHeight: number,
    lrWidth: number,
    key: Float32Array | NativeKeyframe,
    height: number,
    width: number,
    motion: Float32Array,
    options: object,
  ): Promise<{ output: Float32Array; milliseconds: number }>;
}

export interface NativeAddon {
  NativeCReFF: new (weights: NativeCReFFWeights) => NativeCReFF;
  NativeKeyframe: new () => NativeKeyframe;
  cudaStatus(): { available: boolean; reason: string };
  /** The field from `current` to `previous` (8-bit luma planes), see lib/motion.ts estimateMotion. */
  estimateMotion(
    previous: Uint8Array,
    current: Uint8Array,
    width: number,
    height: number,
    options?: { linesize?: number; stride?: number; kernel?: 'vectorised' | 'reference'; finestLevel?: number; iterations?: number; patchStride?: number; coarseRadius?: number; fineRadius?: number; prior?: { data: Float32Array; width: number; height: number; stride: number } },
  ): Promise<{ data: Float32Array; matched: Uint8Array; width: number; height: number; stride: number; milliseconds: number }>;
  resizeMotion(
    field: Float32Array,
    width: number,
    height: number,
    stride: number,
    frameWidth: number,
    frameHeight: number,
    outWidth: number,
    outHeight: number,
    mode?: 'cell-centres' | 'align-corners' | 'nearest',
  ): Float32Array;
  /**
   * The decoder's 1x1 convolution: feature (channels x height x width) -> logits (classes x
   * height x width), written into options.output when given (else a new array).
   */
  pointwiseHead(
    feature: Float32Array,
    channels: number,
    height: number,
    width: number,
    weight: Float32Array,
    bias: Float32Array,
    classes: number,
    options?: { output?: Float32Array; threads?: number },
  ): Promise<Float32Array>;
  /** The vector code the native kernels run: the CPU's best, capped by ARSEG_SIMD=avx2|baseline. */
  simdLevel(): 'avx512' | 'avx2' | 'baseline';
  /**
   * Labels: the logits resized to outHeight x outWidth and arg-maxed; with `via`, first resized
   * to via's size by via.upsampling (the network's own resize), then to the output.
   */
  labelsFromLogits(
    logits: Float32Array,
    classes: number,
    height: number,
    width: number,
    outHeight: number,
    outWidth: number,
    upsampling?: 'align-corners' | 'half-pixel',
    via?: { height: number; width: number; upsampling?: 'align-corners' | 'half-pixel'},
  ): Promise<Uint8Array>;
  NativeVideoReader: new (source: string, options?: object) => NativeVideoReader;
  NativePacketReader: new (codec: string, options?: object) => NativePacketReader;
  libav: Record<string, string | number | boolean>;
}

let cached: NativeAddon | undefined;

export function addon(): NativeAddon {
  if (cached) return cached;
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- node-gyp-build has no ES export
    const load = require('node-gyp-build') as (dir: string) => NativeAddon;
    cached = load(path.join(__dirname, '..'));
  } catch (err) {
    throw new ArSegError(
      ErrorCodes.ADDON_LOAD,
      'ar-seg-native: the native addon could not be loaded. No prebuild fits this platform and ' +
        'no source build was found: run `npm rebuild ar-seg-native` with libavformat-dev ' +
        'libavcodec-dev libavutil-dev libswscale-dev pkg-config installed. (' +
        (err instanceof Error ? err.message : String(err)) +
        ')',
      { cause: err },
    );
  }
  return cached;
}
