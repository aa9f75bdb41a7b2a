/**
 * Loads the compiled addon through node-gyp-build, in its search order: a from-source build in
 * build/Release when there is one (a repository checkout after `npm run build`, or an install
 * that fell back to binding.gyp), else the prebuild in prebuilds/<platform>-<arch>/ that fits
 * (linux-x64: node.napi.glibc.node). PREBUILDS_ONLY=1 skips build/Release.
 */
import * as path from 'node:path';
import { ArSegError, ErrorCodes } from './errors';
import type { makeFrame, VideoFrame } from './frame';
import type { VideoInfo } from './video';

/** A tensor as the native readers hand it to NativeFrameMaker. */
export interface NativeTensor {
  data: Float32Array;
  width: number;
  height: number;
}

/**
 * What the native readers call, once per decoded frame, to build it (frame.ts, makeFrame; the
 * arguments in native/addon/frame_js.cc's order).
 */
export type NativeFrameMaker = typeof makeFrame;

export interface NativeVideoReader {
  open(): Promise<VideoInfo>;
  read(): Promise<VideoFrame | null>;
  close(): void;
  stats(): { framesDelivered: number; decodeErrors: number; framesDropped: number };
}

export interface NativePacketReader {
  decode(packet: Uint8Array, pts?: number): Promise<VideoFrame[]>;
  flush(): Promise<VideoFrame[]>;
  close(): void;
  stats(): { decodeErrors: number; skippedBeforeKeyframe: number };
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

/** What a device-path call returns (native/device/device_path.h). */
export interface NativeDeviceLabels {
  labels: Uint8Array;
  /** classes x height x width of the feature, when asked for. */
  logits?: Float32Array;
  /** Device time of the kernels. */
  milliseconds: number;
  /** This call's bytes across the bus, each way. */
  bytesToDevice: number;
  bytesToHost: number;
}

export interface NativeLabelsRequest {
  outHeight: number;
  outWidth: number;
  /** The resize to the labels: one, or through `via` first (postprocess/labels_taps.h). */
  upsampling?: 'align-corners' | 'half-pixel';
  via?: { height: number; width: number; upsampling?: 'align-corners' | 'half-pixel' };
  /** Which head makes the logits: the HR network's (default) or the LR network's own. */
  head?: 'hr' | 'lr';
  logits?: boolean;
}

export interface NativeDevicePath {
  labels(
    feature: Float32Array,
    height: number,
    width: number,
    options: NativeLabelsRequest & { keyframe?: 'exact' | 'keyframe-conv' },
  ): Promise<NativeDeviceLabels>;
  fuse(
    lr: Float32Array,
    lrHeight: number,
    lrWidth: number,
    motion: Float32Array,
    options: NativeLabelsRequest & { sampling?: 'exact' | 'official' },
  ): Promise<NativeDeviceLabels>;
  dropKeyframe(): void;
  info(): { backend: string; channels: number; classes: number; lrHead: boolean };
}

/** One GPU as the driver describes it. */
export interface NativeGpu {
  /** CUDA's device index. */
  index: number;
  /** e.g. 'NVIDIA H100 80GB HBM3'. */
  name: string;
  /** e.g. '9.0'. */
  computeCapability: string;
  /** Global memory. */
  memoryBytes: number;
  /** Streaming multiprocessors. */
  multiprocessors: number;
  /** SM clock in kHz; 0 when the driver does not say. */
  clockKHz: number;
  /** Memory clock in kHz; 0 when the driver does not say. */
  memoryClockKHz: number;
  /** Memory bus width in bits. */
  memoryBusBits: number;
  /** e.g. '0000:17:00.0'. */
  pciBusId: string;
}

/** The NVIDIA driver, asked through libcuda.so.1 with dlopen. */
export interface NativeDriverFacts {
  /** Whether libcuda.so.1 loaded. */
  library: boolean;
  /** dlopen's error when not. */
  libraryError: string;
  /** Whether the kernel module is loaded (/proc/driver/nvidia/version). */
  kernelModule: boolean;
  /** The driver release, e.g. '535.129.03' ('' unknown). */
  version: string;
  /** cuDriverGetVersion, e.g. 12020 (0 unknown). */
  cudaVersion: number;
  /** cuInit's CUresult (0 success, -1 not called). */
  initResult: number;
  /** Its name and description. */
  initError: string;
  /** The GPUs it sees. */
  devices: NativeGpu[];
}

/** The CUDA the addon's kernels were built with. */
export interface NativeCudaBuild {
  /** Whether the build has CUDA kernels. */
  built: boolean;
  /** CUDART_VERSION, e.g. 11080 (0 without CUDA). */
  runtimeVersion: number;
  /** e.g. '11.8'. */
  runtime: string;
  /** nvcc's version, e.g. '11.8.89'. */
  toolkit: string;
  /** CMAKE_CUDA_ARCHITECTURES as built, comma-separated. */
  architectures: string;
  /** The driver the statically linked runtime needs, e.g. '450.80.02'. */
  driverFloor: string;
  /** The architectures with machine code, e.g. ['sm_75', ...]. */
  machineCode: string[];
  /** The architectures with PTX, e.g. ['compute_90']. */
  ptx: string[];
}

/** cudaDriver(): the driver, this build's CUDA, the diagnosis. */
export interface NativeCudaDriver {
  /** The driver's facts. */
  driver: NativeDriverFacts;
  /** This build's CUDA. */
  build: NativeCudaBuild;
  /** Whether the kernels can run here; if not, the first reason and its fix. */
  diagnosis: { ok: boolean; reason: string; fix: string };
}

export interface NativeAddon {
  NativeCReFF: new (weights: NativeCReFFWeights) => NativeCReFF;
  NativeKeyframe: new () => NativeKeyframe;
  NativeDevicePath: new (options: {
    backend: 'cuda' | 'cuda-emulated';
    creff?: NativeCReFF;
    channels: number;
    headWeight: Float32Array;
    headBias: Float32Array;
    /** The LR network's own head, for LR and AR frames (both or neither). */
    lrHeadWeight?: Float32Array;
    lrHeadBias?: Float32Array;
  }) => NativeDevicePath;
  cudaStatus(): { available: boolean; reason: string; fix: string };
  /**
   * Detaches the buffers of the arrays the readers handed out as motion storage (tagged
   * natively; others are skipped), so that the storage goes back for later frames (lib/recycle.ts).
   * Returns how many were detached.
   */
  recycleArrays(arrays: ArrayBufferView[]): number;
  /** Bytes of motion storage waiting for later frames (tests). */
  recycledStorageBytes(): number;
  cudaDriver(): NativeCudaDriver;
  /** Whether the dynamic loader can load a library here (dlopen, then dlclose). */
  canLoadLibrary(name: string): { loaded: boolean; error: string };
  /** The field from `current` to `previous` (8-bit luma planes), see lib/motion.ts estimateMotion. */
  estimateMotion(
    previous: Uint8Array,
    current: Uint8Array,
    width: number,
    height: number,
    options?: {
      linesize?: number;
      stride?: number;
      kernel?: 'vectorised' | 'reference';
      finestLevel?: number;
      iterations?: number;
      patchStride?: number;
      coarseRadius?: number;
      fineRadius?: number;
      prior?: { data: Float32Array; width: number; height: number; stride: number };
    },
  ): Promise<{
    data: Float32Array;
    matched: Uint8Array;
    width: number;
    height: number;
    stride: number;
    milliseconds: number;
  }>;
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
   * Puts thread `tid` of this process (default the caller's) in SCHED_IDLE (Linux) and gives its
   * policy as read back; ERR_UNSUPPORTED with the reason where the kernel refuses (or
   * ARSEG_SCHED_IDLE=0 is set, or on another platform), ERR_NOT_FOUND for a thread not in this
   * process.
   */
  setThreadIdle(tid?: number): ThreadPolicyName;
  /** The scheduling policy of thread `tid` of this process (default the caller's); errors as setThreadIdle. */
  threadPolicy(tid?: number): ThreadPolicyName;
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
    via?: { height: number; width: number; upsampling?: 'align-corners' | 'half-pixel' },
  ): Promise<Uint8Array>;
  NativeVideoReader: new (
    source: string,
    options: object | undefined,
    makeFrame: NativeFrameMaker,
  ) => NativeVideoReader;
  NativePacketReader: new (
    codec: string,
    options: object | undefined,
    makeFrame: NativeFrameMaker,
  ) => NativePacketReader;
  libav: Record<string, string | number | boolean>;
}

/** Linux scheduling policies by name (SCHED_OTHER is 'other'). */
export type ThreadPolicyName = 'other' | 'batch' | 'idle' | 'fifo' | 'rr' | 'deadline' | 'unknown';

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
