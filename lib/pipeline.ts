/**
 * The AR-Seg scheduler: segments a compressed video with keyframes at high resolution and every
 * other frame at low resolution fused with the keyframe's feature through CReFF.
 *
 *   keyframe:     HR encoder -> feature (kept for the GOP) -> decoder -> labels
 *   other frames: LR encoder -> CReFF(LR feature, keyframe feature, motion accumulated to the
 *                 keyframe, resized and scaled to the feature size) -> decoder -> labels
 *
 * The decoder is the bundle's native pointwise head when it has one (a 1x1 convolution checked
 * against ONNX Runtime at load; CPU), else ONNX Runtime's session; `decoder: 'onnx'` forces the
 * latter. LR and AR frames use the LR network's own decoder when the bundle has one.
 *
 * The pipeline around the networks follows the bundle (Bundle.pipeline): how the LR input is
 * made, how motion is composed and resized to the feature size, the warp, and how logits become
 * labels; a converted official checkpoint runs the official evaluation path (docs/conversion.md).
 *
 * On 'cuda' (and 'cuda-emulated', its test double) with native heads the frames of the
 * synchronous schedule take the device path (device-path.ts): CReFF, the heads and the labels on
 * the GPU, with the same choices.
 *
 * Modes 'hr' (every frame at HR) and 'lr' (every frame at LR, no fusion) take the same path for
 * comparison. Decoding runs ahead on the thread pool while the networks run (frame-intake.ts),
 * so decode and inference overlap.
 *
 * Live streams (docs/live.md): the source may be a packet source (packet-source.ts); `drop:
 * 'latest'` segments only the newest frame when inference falls behind; `keyframeLatency:
 * 'async'` encodes keyframes at HR on a thread of their own while the frames after them are
 * fused with the newest keyframe that is ready (keyframe-table.ts). For these the networks run
 * on worker threads (network-thread.ts), so the main thread keeps reading and decoding.
 */
import * as ort from 'onnxruntime-node';
import { Bundle, BundleOptions, BundlePipeline, DecoderChoice, ExecutionDevice, LabelsResize } from './bundle';
import type { FeatureTensor } from './creff';
import { DevicePath, DeviceLabels } from './device-path';
import type { Logits, PointwiseHead } from './pointwise-head';
import { ArSegError, ErrorCodes, invalidArg, toArSegError } from './errors';
import type {
  KeyframePolicy,
  MotionSource,
  MotionFill,
  MotionSourceOption,
  PictType,
  Tensor,
  TensorSpec,
  VideoFrame,
} from './frame';
import {
  DropPolicy,
  FrameIntake,
  FrameSource,
  IntakeItem,
  IntakeStats,
  PacketFrameSource,
  ReaderSource,
} from './frame-intake';
import { AcrossKeyframes, KeyframeChoice, KeyframeTable } from './keyframe-table';
import { integerIn, numberIn, oneOf, optionsObject, show } from './options';
import { resizeMotion } from './motion';
import { addon } from './native';
import { NetworkThread } from './network-thread';
import type { AppliedPriority, ThreadPriority } from './network-thread';
import { createPacketReader } from './packet-reader';
import { isPacketSource, PacketSource } from './packet-source';
import { openVideo, OpenOptions, VideoInfo } from './video';

/**
 * How frames are segmented: 'ar' (AR-Seg: keyframes at HR, other frames at LR fused with the
 * keyframe by CReFF), 'hr' (every frame at HR) or 'lr' (every frame at LR, no fusion).
 */
export type SegmentMode = 'ar' | 'hr' | 'lr';

/** Options of `ArSeg.segment`; checked at once (ERR_INVALID_ARG). */
export interface SegmentOptions {
  /** 'ar' (default), 'hr' or 'lr'. */
  mode?: SegmentMode;
  /** LR scale per side; default the bundle's lrScale. */
  scale?: number;
  /**
   * Keyframe policy: 'gop' (every I-frame), an interval L, or 'adaptive' (new keyframes at scene
   * cuts and large motion, at most the bundle's interval apart unless set). Default: the
   * bundle's keyframeInterval.
   */
  keyframes?: KeyframePolicy;
  /** Also return the decoder's logits (classes x feature size, before upsampling). */
  logits?: boolean;
  /**
   * Who runs the decoder: 'auto' (default; the bundle's native pointwise head when it has one,
   * see BundleOptions.decoder) or 'onnx' (ONNX Runtime, as a check or for comparison).
   */
  decoder?: DecoderChoice;
  /** Also return the frame's RGB pixels (for overlays). */
  rgb?: boolean;
  /**
   * Cell size in pixels of the motion field read from the stream. Default 4; 1 for a bundle
   * whose motion composition is 'official' (mergeMotion composes per pixel).
   */
  motionStride?: number;
  /**
   * Where the motion comes from: 'auto' (default: the bitstream's vectors when the codec has
   * them, else estimated from the pictures, so VP9, AV1, MJPEG... work in mode 'ar'),
   * 'bitstream' or 'estimate' (see MotionSourceOption).
   */
  motionSource?: MotionSourceOption;
  /**
   * Cells the bitstream does not link to a past picture (intra, future-only) in the motion to
   * the keyframe: 'estimate' (default) or 'none' (see MotionFill).
   */
  motionFill?: MotionFill;
  /** CReFF formulation: 'exact' (default) or 'keyframe-conv' (faster, approximate). */
  creffMode?: 'exact' | 'keyframe-conv';
  /** Frames decoded ahead of inference (with drop 'none'). Default 4. */
  ahead?: number;
  /** libavformat options for the source (see openVideo). */
  formatOptions?: OpenOptions['formatOptions'];
  /** The largest picture accepted, in pixels (see FrameOptions.limitInputPixels). Default 8192 x 8192. */
  limitInputPixels?: number | boolean;
  /**
   * When keyframes are encoded at HR (mode 'ar'). 'sync' (default): in line, the paper's
   * schedule (docs/method.md): a keyframe's frame waits for its HR encoder and every frame is
   * fused with its own keyframe. 'async': on a thread of their own, as soon as they are decoded;
   * each frame is fused with the newest keyframe that is ready (its own when it is), along its
   * motion carried back to that keyframe; `usedKeyframe` and `keyframeDistance` say which.
   */
  keyframeLatency?: 'sync' | 'async';
  /**
   * With keyframeLatency 'async': keyframe K serves frames from K + keyframeDelay on, and those
   * wait for it. Makes the schedule independent of timing (evaluation, tests, simulating a
   * slower encoder); 0 gives the synchronous schedule's labels. Default: none (never wait).
   */
  keyframeDelay?: number;
  /**
   * With keyframeLatency 'async': a bound on staleness. A frame whose newest ready keyframe is
   * more than this many frames back (or that has none yet) waits for the keyframe being
   * encoded, as the synchronous schedule would: accuracy bounded, at the cost of that frame's
   * latency when the keyframe thread falls behind (a loaded CPU). Default: none.
   */
  maxKeyframeDistance?: number;
  /**
   * With keyframeLatency 'async', how a frame fused with an older keyframe than its own gets
   * its motion to it: 'bridge' (default; docs/live.md), or, for measuring that choice,
   * 'zero-motion' or 'lr' (no fusion until its own keyframe is ready).
   */
  acrossKeyframes?: AcrossKeyframes;
  /**
   * When inference falls behind the source: 'none' (default) segments every frame; 'latest'
   * decodes every frame (their motion is needed) but segments only the newest, and each result
   * says how many frames were dropped before it (`skipped`). With keyframeLatency 'sync' a
   * keyframe is dropped only when a newer keyframe has arrived (the frames after it need its HR
   * feature).
   */
  drop?: DropPolicy;
  /** Packet sources: the codec of the packets (a libavcodec name). Default 'h264'. */
  codec?: string;
  /**
   * Packet sources: each packet is one whole access unit (true, the default: camera drivers,
   * ROS 2, Foxglove), decoded at once; false for byte chunks cut anywhere.
   */
  accessUnits?: boolean;
}

/** Milliseconds spent per stage on this frame. */
export interface StageTimings {
  /** Waiting for the decoded frame (decoding runs ahead, so mostly 0). */
  decode: number;
  /** The HR encoder (keyframes, mode 'hr'). */
  hrEncoder: number;
  /** The LR encoder (mode 'lr', fused frames of 'ar'). */
  lrEncoder: number;
  /**
   * CReFF, with the preparation of keyframes; on fused frames with the native head, the decoder
   * too; on the device path, the decoder and the labels too.
   */
  creff: number;
  /** The decoder; 0 on fused frames where CReFF applied the native head itself. On the device path of HR and LR frames, the labels too. */
  decoder: number;
  /** Upsampling and arg-max to labels; 0 on the device path (counted with the stage before). */
  labels: number;
  /** Waiting for a keyframe's HR feature (keyframeDelay), or for its encoder in line. */
  keyframeWait: number;
  /** The whole frame. */
  total: number;
}

/** One segmented frame. */
export interface SegmentResult {
  /** Presentation order, from 0. */
  index: number;
  /** Presentation time in seconds: a packet source's own timestamp, else the stream's; null when there is none. */
  pts: number | null;
  /** The frame's picture type. */
  pictType: PictType;
  /** A keyframe of the policy (segmented at HR in mode 'ar'; motion is accumulated to it). */
  isKeyframe: boolean;
  /** The frame's own keyframe (by the keyframe policy). */
  keyframeIndex: number;
  /**
   * The keyframe whose HR feature made these labels: the frame itself on branch 'hr', the
   * keyframe fused on branch 'ar' (its own, or an older one with keyframeLatency 'async'),
   * null on branch 'lr'. Never later than the frame.
   */
  usedKeyframe: number | null;
  /** index - usedKeyframe, or null. */
  keyframeDistance: number | null;
  /** Frames dropped before this one (drop 'latest'; the first also counts packets skipped before the first keyframe). */
  skipped: number;
  /** performance.now() milliseconds when the frame's data arrived (its packet), or was decoded: latency = performance.now() - receivedAt. */
  receivedAt: number;
  /** performance.now() milliseconds when the frame was decoded (decodedAt - receivedAt: how far decoding is behind the source). */
  decodedAt: number;
  /** A packet source's `meta` for this frame. */
  meta?: unknown;
  /** Which branch produced the labels: 'hr', 'lr', or 'ar' (LR fused with a keyframe). */
  branch: 'hr' | 'lr' | 'ar';
  /** Frame width in pixels. */
  width: number;
  /** Frame height in pixels. */
  height: number;
  /** Class index per pixel, height x width. */
  labels: Uint8Array;
  /** With `logits: true`: the decoder's output, classes at the feature's size (before upsampling). */
  logits?: {
    /** classes x h x w values. */
    data: Float32Array;
    /** [1, classes, h, w] */
    dims: [1, number, number, number];
  };
  /** The frame, height x width x 3, when asked for. */
  rgb?: Uint8Array;
  /** Where the frame's motion came from, when motion was read (mode 'ar', adaptive keyframes). */
  motionSource?: MotionSource;
  /** Milliseconds per stage. */
  timings: StageTimings;
  /**
   * On the device path ('cuda', 'cuda-emulated'): the bytes this frame moved across the bus
   * through ar-seg-native's own copies (ONNX Runtime's are not included; BENCHMARKS.md counts both).
   */
  bus?: {
    /** Bytes host to device. */
    toDevice: number;
    /** Bytes device to host. */
    toHost: number;
  };
}

function now(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

function feature(t: ort.Tensor): FeatureTensor {
  return { data: t.data as Float32Array, dims: t.dims };
}

async function runSession(session: ort.InferenceSession, input: Float32Array, dims: number[]): Promise<ort.Tensor> {
  const out = await session.run({ [session.inputNames[0]]: new ort.Tensor('float32', input, dims) });
  return out[session.outputNames[0]];
}

interface ResolvedOptions {
  mode: SegmentMode;
  /** The bundle's pipeline choices (Bundle.pipeline). */
  pipeline: Readonly<BundlePipeline>;
  scale: number;
  keyframes: KeyframePolicy;
  motionStride: number;
  creffMode: 'exact' | 'keyframe-conv';
  decoder: DecoderChoice;
  logits: boolean;
  rgb: boolean;
  keyframeLatency: 'sync' | 'async';
  keyframeDelay: number | undefined;
  maxKeyframeDistance: number | undefined;
  acrossKeyframes: AcrossKeyframes;
  drop: DropPolicy;
  motionSource: MotionSourceOption | undefined;
  motionFill: MotionFill | undefined;
}

/** Where the encoders run for one segment() call. */
interface Networks {
  /** The HR encoder in line (mode 'hr', and keyframes of the synchronous schedule). */
  hr(input: Tensor): Promise<FeatureTensor>;
  lr(input: Tensor): Promise<FeatureTensor>;
  /** The HR encoder on the keyframe thread (the asynchronous schedule, which always runs threaded). */
  keyframe?(input: Tensor): Promise<FeatureTensor>;
}

/** What a frame goes through: which branch, and for 'ar' the keyframe and the field to it. */
type Plan = { branch: 'hr'; ready: FeatureTensor | null } | { branch: 'lr' } | { branch: 'ar'; choice: KeyframeChoice };

/**
 * What a branch hands on: a feature for the decoder, the logits when it made them itself, or
 * (the device path) the labels themselves, with the logits when asked for.
 */
type BranchOutput =
  | { branch: SegmentResult['branch']; feature: FeatureTensor; logits?: undefined; device?: undefined }
  | { branch: SegmentResult['branch']; logits: Logits; feature?: undefined; device?: undefined }
  | {
      branch: SegmentResult['branch'];
      device: DeviceLabels;
      feature?: undefined;
      logits?: undefined;
    };

/** State of one segment() call across frames. */
interface RunState {
  o: ResolvedOptions;
  networks: Networks;
  /** The decoder stage of HR frames, and of LR and AR frames (the LR network's own decoder when the bundle has one). */
  decodeHr: (feature: FeatureTensor) => Promise<Logits>;
  decodeLr: (feature: FeatureTensor) => Promise<Logits>;
  /** The native head CReFF applies on fused frames (CPU, decoder 'auto'; the AR frames' decoder), or null. */
  fusedHead: PointwiseHead | null;
  /** The keyframes (mode 'ar'): their features, and the way from a frame back to each. */
  keyframes: KeyframeTable;
  /** The output buffer CReFF reuses from frame to frame. */
  fusedBuffer: Float32Array | null;
  /** Keyframes encoded on the keyframe thread (asynchronous schedule). */
  keyframesEncoded: number;
  /**
   * The device path (device 'cuda' or 'cuda-emulated' with native heads, the synchronous
   * schedule; see #devicePath), opened when the loop starts; null otherwise.
   */
  device: DevicePath | null;
  /** The keyframe the device path holds on the device (its index), or null. */
  deviceKeyframe: number | null;
}

/** Counters of a segmentation so far. */
export interface SegmentationStats extends IntakeStats {
  /** Keyframes whose HR feature was made. */
  keyframesEncoded: number;
  /**
   * keyframeLatency 'async': the scheduling the keyframe thread really got (SCHED_IDLE, or the
   * nice value, and why 'idle' fell back where it did), once that thread has started; else null.
   */
  keyframePriority: AppliedPriority | null;
}

/** The frames of one segment() call, in presentation order, and the stream's facts. */
export interface Segmentation extends AsyncIterable<SegmentResult> {
  /**
   * Opens the source if it is not open yet (the segmentation then reads from that same open).
   * Packet sources: ERR_UNSUPPORTED (their facts come with the frames).
   */
  info(): Promise<VideoInfo>;
  /** Frames decoded, segmented and dropped so far, and the decoder's errors. */
  stats(): SegmentationStats;
}

/** Options of ArSeg.load: the bundle's, and the keyframe thread's budget. */
export interface ArSegOptions extends BundleOptions {
  /**
   * ONNX Runtime intra-op threads of the keyframe thread (keyframeLatency 'async'). Default:
   * `threads`, else all cores.
   */
  keyframeThreads?: number;
  /**
   * How the keyframe thread (keyframeLatency 'async') and its ONNX Runtime threads are scheduled
   * against the frames' own work (Linux):
   * - 'idle': SCHED_IDLE, set before its session exists so that ONNX Runtime's threads inherit
   *   it: the HR encoder runs on CPU time no normal thread wants, and slows the frames beside it
   *   least. Where the kernel refuses it (or off Linux) the thread falls back to 'nice', and
   *   `stats().keyframePriority.fallbackReason` says why.
   * - 'nice': its nice value raised by `keyframeNice` (nice 10 still takes about a tenth of each
   *   busy core: a CFS weight of 110 against 1024).
   *
   * Either can starve the keyframe under other processes' load; `maxKeyframeDistance` bounds
   * the staleness that follows. Default 'idle' (measured against 'nice' in BENCHMARKS.md, "Live
   * latency").
   */
  keyframePriority?: ThreadPriority;
  /**
   * Added to the keyframe thread's nice value (Linux, 0..19) with keyframePriority 'nice' (and
   * its fallback): the HR encoder of the asynchronous schedule then takes mostly the CPU that
   * the frames' own work leaves. Default 10; 0 shares the CPU evenly.
   */
  keyframeNice?: number;
}

/** A segment() call in progress, as close() sees it. */
interface ActiveRun {
  /** Stops the run's intake and keyframe encoding: its loop ends with ERR_CLOSED. */
  abort(): void;
  /** The step in progress (a frame's networks), or null between steps. */
  step: Promise<unknown> | null;
}

/**
 * AR-Seg on compressed video: load a model bundle with `ArSeg.load`, then `segment()` videos.
 * Keyframes run the HR encoder; other frames the LR encoder, fused with the keyframe's feature
 * along the motion vectors of the bitstream by CReFF (docs/segmenting.md).
 */
export class ArSeg {
  /** The loaded model bundle. */
  readonly bundle: Bundle;
  /** Where the networks and CReFF run. */
  readonly device: ExecutionDevice;
  #closed = false;
  readonly #options: ArSegOptions;
  readonly #runs = new Set<ActiveRun>();
  /** Worker threads with their own sessions, started on first use (live sources, async keyframes). */
  #foreground: Promise<NetworkThread> | null = null;
  #background: Promise<NetworkThread> | null = null;
  /** The keyframe thread's scheduling, once it has started. */
  #keyframePriority: AppliedPriority | null = null;
  /** The device paths of the segmentations running now: close() frees their keyframes on the device. */
  #devicePaths = new Set<DevicePath>();

  private constructor(bundle: Bundle, device: ExecutionDevice, options: ArSegOptions) {
    this.bundle = bundle;
    this.device = device;
    this.#options = options;
  }

  /**
   * Loads a model bundle (see bundle.ts): validates it and opens its graphs in ONNX Runtime.
   * device 'cuda' runs the networks on ONNX Runtime's CUDA provider and, when the decoders are
   * pointwise heads, CReFF, the heads and the labels in the device path (the keyframe feature
   * stays on the GPU for its GOP, only the labels come back; `devicePathReason` says why not
   * otherwise); it fails with ERR_CUDA_UNAVAILABLE and the reason (`ar-seg doctor`) when either
   * is missing. 'cuda-emulated' runs that device path's GPU code on the CPU (tests).
   */
  static async load(dir: string, options: ArSegOptions = {}): Promise<ArSeg> {
    options = optionsObject(options);
    // The keyframe thread's budget is consumed here (the rest by Bundle.load).
    if (options.keyframeThreads !== undefined) integerIn('keyframeThreads', options.keyframeThreads, 1, 256);
    if (options.keyframeNice !== undefined) integerIn('keyframeNice', options.keyframeNice, 0, 19);
    oneOf<ThreadPriority>('keyframePriority', options.keyframePriority, ['idle', 'nice'], 'idle');
    return new ArSeg(await Bundle.load(dir, options), options.device ?? 'cpu', { ...options });
  }

  /**
   * The options the pipeline consumes, checked (lib/options.ts). The reader's own (keyframes,
   * ahead, formatOptions) are checked by openVideo, synchronously, when segment() opens it.
   */
  #resolve(options: SegmentOptions): ResolvedOptions {
    options = optionsObject(options);
    const m = this.bundle.manifest;
    const mode = oneOf<SegmentMode>('mode', options.mode, ['ar', 'hr', 'lr'], 'ar');
    const scale = numberIn('scale', options.scale, 0, 1, m.lrScale, { lowOpen: true });
    let keyframes = options.keyframes ?? m.keyframeInterval;
    if (keyframes === 'adaptive') keyframes = { policy: 'adaptive', maxInterval: m.keyframeInterval };
    const pipeline = this.bundle.pipeline;
    // mergeMotion composes per pixel: the official composition reads the field at stride 1
    const motionStride = integerIn(
      'motionStride',
      options.motionStride,
      1,
      64,
      pipeline.motionComposition === 'official' ? 1 : 4,
    );
    const creffMode = oneOf('creffMode', options.creffMode, ['exact', 'keyframe-conv'] as const, 'exact');
    const decoder = oneOf<DecoderChoice>('decoder', options.decoder, ['auto', 'onnx'], 'auto');
    const keyframeLatency = oneOf('keyframeLatency', options.keyframeLatency, ['sync', 'async'] as const, 'sync');
    if (keyframeLatency === 'async' && mode !== 'ar')
      throw invalidArg("option 'keyframeLatency' 'async' applies to mode 'ar'");
    const keyframeDelay =
      options.keyframeDelay === undefined ? undefined : integerIn('keyframeDelay', options.keyframeDelay, 0, Infinity);
    if (keyframeDelay !== undefined && keyframeLatency !== 'async')
      throw invalidArg("option 'keyframeDelay' needs keyframeLatency 'async'");
    const maxKeyframeDistance =
      options.maxKeyframeDistance === undefined
        ? undefined
        : integerIn('maxKeyframeDistance', options.maxKeyframeDistance, 0, Infinity);
    if (maxKeyframeDistance !== undefined && (keyframeLatency !== 'async' || keyframeDelay !== undefined))
      throw invalidArg("option 'maxKeyframeDistance' needs keyframeLatency 'async' without keyframeDelay");
    const acrossKeyframes = oneOf<AcrossKeyframes>(
      'acrossKeyframes',
      options.acrossKeyframes,
      ['bridge', 'zero-motion', 'lr'],
      'bridge',
    );
    const drop = oneOf<DropPolicy>('drop', options.drop, ['none', 'latest'], 'none');
    return {
      mode,
      pipeline,
      scale,
      keyframes,
      motionStride,
      creffMode,
      decoder,
      logits: Boolean(options.logits),
      rgb: Boolean(options.rgb),
      keyframeLatency,
      keyframeDelay,
      maxKeyframeDistance,
      acrossKeyframes,
      drop,
      // motionSource goes to the reader as it is: checked there (natively), like keyframes.
      motionSource: options.motionSource,
      motionFill: options.motionFill,
    };
  }

  /**
   * Segments a video file or URL, or a live packet source (packet-source.ts: an iterable of
   * { data, pts } access units, or a PacketQueue); yields one result per frame in presentation
   * order (per segmented frame with drop 'latest'). Options are checked at once
   * (ERR_INVALID_ARG); breaking out of the loop stops decoding. A packet source that starts
   * mid-GOP is read from its first keyframe on (the packets before it are counted in the first
   * result's `skipped`); one that fails ends, after the frames it gave, with its error
   * (ERR_READ unless it threw an ArSegError).
   */
  segment(source: string | PacketSource, options: SegmentOptions = {}): Segmentation {
    if (this.#closed) throw new ArSegError(ErrorCodes.CLOSED, 'this ArSeg is closed');
    const o = this.#resolve(options);
    const motion = o.mode === 'ar' || typeof o.keyframes === 'object' ? ('accumulated' as const) : ('none' as const);
    const frameOptions = {
      tensors: this.#tensorSpecs(o),
      rgb: o.rgb,
      motion,
      // The official composition (mergeMotion) only when the bundle asks for it: the reader's
      // own default is this project's bilinear composition.
      ...(motion !== 'none' && o.pipeline.motionComposition !== 'bilinear'
        ? { composition: o.pipeline.motionComposition }
        : {}),
      stride: o.motionStride,
      motionSource: o.motionSource,
      motionFill: o.motionFill,
      keyframes: o.keyframes,
      limitInputPixels: options.limitInputPixels,
    };
    let frameSource: FrameSource;
    let info: () => Promise<VideoInfo>;
    const live = typeof source !== 'string';
    // Each source checks the options it consumes: the reader its own (ahead, formatOptions), the
    // packet reader the codec and accessUnits; the intake's capacity is `ahead` for packets.
    let capacity = 1;
    if (typeof source === 'string') {
      const reader = openVideo(source, { ...frameOptions, ahead: options.ahead, formatOptions: options.formatOptions });
      frameSource = new ReaderSource(reader);
      info = () => reader.open();
    } else {
      if (!isPacketSource(source))
        throw invalidArg(`source must be a path, a URL, or an iterable of packets { data, pts }, got ${show(source)}`);
      capacity = integerIn('ahead', options.ahead, 1, 64, 4);
      const packets = createPacketReader({
        codec: options.codec ?? 'h264',
        ...frameOptions,
        waitForKeyframe: true,
        accessUnits: options.accessUnits ?? true,
      });
      frameSource = new PacketFrameSource(source, packets);
      info = () =>
        Promise.reject(
          new ArSegError(
            ErrorCodes.UNSUPPORTED,
            'a packet source has no stream facts before its frames: read them from the results',
          ),
        );
    }
    // The networks leave the main thread where it must stay free: live sources (it feeds the
    // decoder), dropping (the intake must see every frame as it comes), async keyframes.
    const threaded = live || o.drop === 'latest' || o.keyframeLatency === 'async';
    const run = this.#newRun(o, threaded);
    if (threaded) {
      // Start the threads now, not at the first frame that needs them: opening sessions takes
      // a while. Their failures surface at that first frame.
      this.#thread('foreground').catch(() => undefined);
      if (o.mode === 'ar' && o.keyframeLatency === 'async') this.#thread('background').catch(() => undefined);
    }
    const intake = new FrameIntake(frameSource, {
      drop: o.drop,
      capacity,
      keep: (f) => o.mode === 'ar' && o.keyframeLatency === 'sync' && f.isKeyframe,
      observe: (f) => {
        if (o.mode === 'ar') run.keyframes.observe(f);
      },
    });
    // Registered now, not when the loop starts: close() also ends a segmentation not iterated
    // yet (its source may be open already, by info()).
    const active: ActiveRun = {
      abort: () => {
        intake.close();
        run.keyframes.close();
      },
      step: null,
    };
    this.#runs.add(active);
    const frames = this.#run(intake, run, active);
    return {
      info,
      stats: () => ({
        ...intake.stats(),
        keyframesEncoded: run.keyframesEncoded,
        keyframePriority: o.mode === 'ar' && o.keyframeLatency === 'async' ? this.#keyframePriority : null,
      }),
      [Symbol.asyncIterator]: () => frames,
    };
  }

  /**
   * The reader's two tensors: [0] the HR input, [1] the LR input, made as the bundle says
   * (LrInput): from the frame by swscale at sizes rounded to the size multiple, or (official)
   * the HR tensor at the frame's own size and the LR one resized from it natively with
   * align_corners=True to floor(size x scale).
   */
  #tensorSpecs(o: ResolvedOptions): TensorSpec[] {
    const m = this.bundle.manifest;
    const normalise = { mean: m.input.mean, std: m.input.std, channelOrder: m.input.channelOrder };
    if (o.pipeline.lrInput === 'hr-tensor-align-corners')
      return [
        { scale: 1, multiple: 1, ...normalise },
        { from: 0, scale: o.scale },
      ];
    const multiple = m.input.sizeMultiple ?? 8;
    return [
      { scale: 1, multiple, ...normalise },
      { scale: o.scale, multiple, ...normalise },
    ];
  }

  /** The state of a new run: where its networks run, and its keyframe table. */
  #newRun(o: ResolvedOptions, threaded: boolean): RunState {
    const { bundle } = this;
    const inline: Networks = {
      hr: (t) => runSession(bundle.hrEncoder, t.data, [...t.dims]).then(feature),
      lr: (t) => runSession(bundle.lrEncoder, t.data, [...t.dims]).then(feature),
    };
    const networks: Networks = threaded
      ? {
          hr: async (t) => (await this.#thread('foreground')).run('hr', t.data, t.dims),
          lr: async (t) => (await this.#thread('foreground')).run('lr', t.data, t.dims),
          keyframe: async (t) => (await this.#thread('background')).run('hr', t.data, t.dims),
        }
      : inline;
    const run: RunState = {
      o,
      networks,
      decodeHr: this.#decoder(o, 'hr'),
      decodeLr: this.#decoder(o, 'lr'),
      fusedHead: this.#nativeHead(o, 'ar'),
      keyframes: new KeyframeTable(),
      fusedBuffer: null,
      keyframesEncoded: 0,
      device: null,
      deviceKeyframe: null,
    };
    if (o.mode === 'ar' && o.keyframeLatency === 'async') {
      run.keyframes = new KeyframeTable({
        // Skipping superseded keyframes depends on timing: not when the schedule must not.
        supersede: o.keyframeDelay === undefined,
        encode: async (_entry, tensor) => {
          const f = await networks.keyframe!(tensor);
          const prepared =
            this.device !== 'cuda' ? await this.bundle.creff.prepareKeyframe(f, { mode: o.creffMode }) : null;
          run.keyframesEncoded++;
          return { feature: f, prepared };
        },
      });
    }
    return run;
  }

  /**
   * The worker thread for in-line networks ('foreground': HR and LR encoders, normal priority)
   * or for the asynchronous schedule's keyframes ('background': the HR encoder, with its own
   * thread budget and a lower priority, keyframePriority). Started on first use, kept until close().
   */
  #thread(which: 'foreground' | 'background'): Promise<NetworkThread> {
    if (this.#closed) return Promise.reject(new ArSegError(ErrorCodes.CLOSED, 'this ArSeg is closed'));
    const existing = which === 'foreground' ? this.#foreground : this.#background;
    if (existing) return existing;
    const { bundle } = this;
    // ONNX Runtime's intra-op threads spin while they wait for work by default: on a few cores
    // shared by two sessions, the decoder and CReFF, that spinning takes the CPU from the others.
    const session = { ...bundle.sessionOptions, extra: { session: { intra_op: { allow_spinning: '0' } } } };
    let started: Promise<NetworkThread>;
    if (which === 'foreground') {
      started = NetworkThread.start({
        name: 'network',
        graphs: { hr: bundle.graphFile('hrEncoder'), lr: bundle.graphFile('lrEncoder') },
        session,
      });
      this.#foreground = started;
    } else {
      const threads = this.#options.keyframeThreads ?? this.#options.threads;
      started = NetworkThread.start({
        name: 'keyframe',
        graphs: { hr: bundle.graphFile('hrEncoder') },
        session: { ...session, ...(threads ? { intraOpNumThreads: threads } : {}) },
        priority: this.#options.keyframePriority ?? 'idle',
        nice: this.#options.keyframeNice ?? 10,
      });
      this.#background = started;
      started.then(
        (t) => (this.#keyframePriority = t.priority),
        () => undefined,
      );
    }
    // A thread that failed to start is forgotten, so that the next run may try again.
    started.catch(() => {
      if (which === 'foreground' && this.#foreground === started) this.#foreground = null;
      if (which === 'background' && this.#background === started) this.#background = null;
    });
    return started;
  }

  /** The native head of a branch's decoder when it runs natively (CPU, decoder 'auto'), else null. */
  #nativeHead(o: ResolvedOptions, branch: SegmentResult['branch']): PointwiseHead | null {
    return o.decoder === 'auto' && this.device === 'cpu' ? this.bundle.headFor(branch) : null;
  }

  /**
   * Why segment() runs on this device without the device path (null when it takes it, with
   * decoder 'auto' and the synchronous schedule): the device is 'cpu', or a decoder of the
   * bundle is not a native pointwise head (DevicePath.unsupportedReason). On 'cuda' the frames
   * then take the plain CUDA path: ONNX Runtime runs the decoders, CReFF.run the kernel, the
   * labels are made on the CPU.
   */
  get devicePathReason(): string | null {
    if (this.device === 'cpu') return "device 'cpu'";
    return DevicePath.unsupportedReason(this.bundle);
  }

  /**
   * The device path for a segment() call, or null: decoder 'onnx', see devicePathReason, or
   * keyframeLatency 'async' (the device path holds one keyframe, the frame's own; the
   * asynchronous schedule may fuse with an older one, so it takes the plain CUDA path).
   */
  #devicePath(o: ResolvedOptions): DevicePath | null {
    if (this.device === 'cpu' || o.decoder !== 'auto' || o.keyframeLatency === 'async' || this.devicePathReason)
      return null;
    return DevicePath.open(this.bundle, this.device);
  }

  /**
   * The decoder stage of a branch's frames: a feature [1, C, h, w] to its logits [1, classes, h,
   * w]. The native head writes into one buffer reused from frame to frame, unless the logits are
   * returned with the results (then each frame gets its own).
   */
  #decoder(o: ResolvedOptions, branch: SegmentResult['branch']): (feature: FeatureTensor) => Promise<Logits> {
    const { bundle } = this;
    const C = bundle.manifest.feature.channels;
    const head = this.#nativeHead(o, branch);
    const session = bundle.decoderFor(branch);
    let reused: Float32Array | null = null;
    return async (feature) => {
      const [, fc, fh, fw] = feature.dims;
      if (fc !== C) throw new ArSegError(ErrorCodes.BUNDLE, `the encoder gave ${fc} channels, the bundle says ${C}`);
      if (head) {
        let output: Float32Array | undefined;
        if (!o.logits) {
          if (reused?.length !== head.classes * fh * fw) reused = new Float32Array(head.classes * fh * fw);
          output = reused;
        }
        return head.run(feature, { output });
      }
      const logits = await runSession(session, feature.data, [1, fc, fh, fw]);
      const [, lc, lh, lw] = logits.dims;
      return { data: logits.data as Float32Array, dims: [1, lc, lh, lw] };
    };
  }

  /**
   * The frame loop: the intake hands over the next frame to segment; #plan picks its branch
   * (#hrBranch, #lrBranch, #arBranch) and, for 'ar', the keyframe and the field to it; the
   * branch gives a feature for the decoder or the logits themselves; then the decoder (when
   * needed) and the labels.
   */
  async *#run(intake: FrameIntake, run: RunState, active: ActiveRun): AsyncGenerator<SegmentResult> {
    const step = <T>(p: Promise<T>): Promise<T> => {
      active.step = p;
      return p;
    };
    try {
      run.device = this.#devicePath(run.o);
      if (run.device) this.#devicePaths.add(run.device);
      for (;;) {
        const t0 = now();
        let item: IntakeItem | null;
        try {
          item = await intake.next();
        } catch (err) {
          // close() closed the source under a blocked read: say that this ArSeg was closed
          if (this.#closed)
            throw new ArSegError(ErrorCodes.CLOSED, 'this ArSeg was closed while reading', { cause: err });
          throw err;
        }
        if (item === null) return;
        if (this.#closed) throw new ArSegError(ErrorCodes.CLOSED, 'this ArSeg was closed');
        const timings: StageTimings = {
          decode: now() - t0,
          hrEncoder: 0,
          lrEncoder: 0,
          creff: 0,
          decoder: 0,
          labels: 0,
          keyframeWait: 0,
          total: 0,
        };
        const result = await step(this.#segmentFrame(item, run, timings));
        active.step = null;
        timings.total = now() - t0;
        yield result;
      }
    } catch (err) {
      throw toArSegError(err);
    } finally {
      active.step = null;
      this.#runs.delete(active);
      intake.close();
      run.keyframes.close();
      if (run.device) {
        this.#devicePaths.delete(run.device);
        run.device.close();
        run.device = null;
      }
    }
  }

  /** One frame through its branch, the decoder and the labels. */
  async #segmentFrame(item: IntakeItem, run: RunState, timings: StageTimings): Promise<SegmentResult> {
    const { frame } = item;
    let t = now();
    const plan = await this.#plan(frame, run);
    timings.keyframeWait = now() - t;
    const out =
      plan.branch === 'hr'
        ? await this.#hrBranch(frame, run, timings, plan.ready)
        : plan.branch === 'lr'
          ? await this.#lrBranch(frame, run, timings)
          : await this.#arBranch(frame, run, timings, plan.choice);
    const used = plan.branch === 'hr' ? frame.index : plan.branch === 'ar' ? plan.choice.entry.index : null;
    if (out.device) {
      // The device path gave the labels (and the logits when asked) already.
      const result = this.#result(item, out.branch, used, out.device.labels, out.device.logits ?? null, timings, run.o);
      result.bus = { toDevice: out.device.bytesToDevice, toHost: out.device.bytesToHost };
      return result;
    }
    let logits = out.logits;
    t = now();
    if (!logits) {
      logits = await (out.branch === 'hr' ? run.decodeHr : run.decodeLr)(out.feature!);
      timings.decoder = now() - t;
    }
    t = now();
    const labels = await this.#labels(logits, frame, out.branch);
    timings.labels = now() - t;
    return this.#result(item, out.branch, used, labels, logits, timings, run.o);
  }

  /**
   * Which branch a frame takes. Mode 'ar', synchronous: a keyframe goes to the HR encoder, any
   * other frame is fused with its own keyframe. Asynchronous: the newest usable keyframe
   * (keyframe-table.ts): the frame itself when it is a keyframe already encoded (its HR
   * feature is decoded as the synchronous schedule would), an older keyframe along the motion
   * carried to it, or none yet (the LR branch alone, at the start of a stream).
   */
  async #plan(frame: VideoFrame, run: RunState): Promise<Plan> {
    const { o, keyframes } = run;
    if (o.mode === 'hr') return { branch: 'hr', ready: null };
    if (o.mode === 'lr') return { branch: 'lr' };
    if (o.keyframeLatency === 'sync') {
      keyframes.forget(frame.keyframeIndex, frame.index);
      if (frame.isKeyframe) return { branch: 'hr', ready: null };
      const entry = keyframes.get(frame.keyframeIndex);
      if (!entry || entry.state !== 'ready' || !frame.motion)
        throw new ArSegError(ErrorCodes.NATIVE, 'no keyframe feature before a non-keyframe');
      return { branch: 'ar', choice: { entry, distance: frame.index - entry.index, motion: frame.motion } };
    }
    const choice = await keyframes.choose(frame, {
      delay: o.keyframeDelay,
      maxDistance: o.maxKeyframeDistance,
      across: o.acrossKeyframes,
    });
    if (!choice) return { branch: 'lr' };
    keyframes.forget(choice.entry.index, frame.index);
    if (choice.entry.index === frame.index) return { branch: 'hr', ready: choice.entry.feature };
    return { branch: 'ar', choice };
  }

  /**
   * The HR encoder on the full frame (or its feature, already made on the keyframe thread); in
   * mode 'ar' the synchronous schedule keeps it as the keyframe of the frames that follow.
   */
  async #hrBranch(
    frame: VideoFrame,
    run: RunState,
    timings: StageTimings,
    ready: FeatureTensor | null,
  ): Promise<BranchOutput> {
    const { o } = run;
    if (ready) return { branch: 'hr', feature: ready };
    let t = now();
    const hrFeature = await run.networks.hr(frame.tensors![0]);
    timings.hrEncoder = now() - t;
    if (run.device) {
      // One upload serves the labels and, in mode 'ar', the GOP's keyframe on the device (the
      // table keeps the host feature for its size).
      t = now();
      const keep = o.mode === 'ar' ? o.creffMode : undefined;
      const resize = this.#labelsResize('hr', hrFeature.dims[2], hrFeature.dims[3], frame);
      const r = await run.device.labels(hrFeature, {
        width: frame.width,
        height: frame.height,
        resize,
        head: 'hr',
        logits: o.logits,
        keyframe: keep,
      });
      if (keep) {
        run.keyframes.setReady(frame.index, { feature: hrFeature, prepared: null });
        run.deviceKeyframe = frame.index;
      }
      timings.decoder = now() - t;
      return { branch: 'hr', device: r };
    }
    if (o.mode === 'ar') {
      t = now();
      // The CPU kernel takes a keyframe prepared once per GOP; the CUDA kernel the raw feature.
      const prepared =
        this.device !== 'cuda' ? await this.bundle.creff.prepareKeyframe(hrFeature, { mode: o.creffMode }) : null;
      run.keyframes.setReady(frame.index, { feature: hrFeature, prepared });
      timings.creff = now() - t;
    }
    return { branch: 'hr', feature: hrFeature };
  }

  /** LR encoder on the downscaled frame. */
  async #lrEncoder(frame: VideoFrame, run: RunState, timings: StageTimings): Promise<FeatureTensor> {
    const t = now();
    const out = await run.networks.lr(frame.tensors![1]);
    timings.lrEncoder = now() - t;
    return out;
  }

  /** Mode 'lr' (and 'ar' frames with no keyframe yet): the LR feature goes to the decoder as it is. */
  async #lrBranch(frame: VideoFrame, run: RunState, timings: StageTimings): Promise<BranchOutput> {
    const feature = await this.#lrEncoder(frame, run, timings);
    if (run.device) {
      const t = now();
      const resize = this.#labelsResize('lr', feature.dims[2], feature.dims[3], frame);
      const r = await run.device.labels(feature, {
        width: frame.width,
        height: frame.height,
        resize,
        head: 'lr',
        logits: run.o.logits,
      });
      timings.decoder = now() - t;
      return { branch: 'lr', device: r };
    }
    return { branch: 'lr', feature };
  }

  /**
   * Mode 'ar' off keyframes: the LR feature fused with the chosen keyframe's feature by CReFF,
   * along the frame's motion to that keyframe (resized and scaled to the feature size). With the
   * native head, CReFF applies it itself and gives the logits (the C x H x W fused feature is
   * never written): the decoder's time is then part of the CReFF stage.
   */
  async #arBranch(
    frame: VideoFrame,
    run: RunState,
    timings: StageTimings,
    choice: KeyframeChoice,
  ): Promise<BranchOutput> {
    const { o, fusedHead } = run;
    const key = choice.entry;
    const lrFeature = await this.#lrEncoder(frame, run, timings);
    const t = now();
    const [H, W] = key.prepared
      ? [key.prepared.height, key.prepared.width]
      : [key.feature!.dims[2], key.feature!.dims[3]];
    const motion = resizeMotion(choice.motion, frame.width, frame.height, W, H, o.pipeline.motionResize);
    if (run.device) {
      // The keyframe is on the device already: up go the LR feature and the motion, back the labels.
      if (run.deviceKeyframe !== key.index)
        throw new ArSegError(
          ErrorCodes.NATIVE,
          `the device path holds keyframe ${run.deviceKeyframe}, frame ${frame.index} needs ${key.index}`,
        );
      const resize = this.#labelsResize('ar', H, W, frame);
      const r = await run.device.fuse(lrFeature, motion, H, W, {
        width: frame.width,
        height: frame.height,
        resize,
        logits: o.logits,
      });
      timings.creff = now() - t;
      return { branch: 'ar', device: r };
    }
    const head = fusedHead && key.prepared ? { weight: fusedHead.weight, bias: fusedHead.bias } : undefined;
    const outChannels = head ? head.bias.length : this.bundle.manifest.feature.channels;
    // Logits returned with the results must not be overwritten by the next frame: then a buffer
    // of their own; otherwise one buffer reused from frame to frame.
    let output: Float32Array;
    if (head && o.logits) output = new Float32Array(outChannels * H * W);
    else {
      if (run.fusedBuffer?.length !== outChannels * H * W) run.fusedBuffer = new Float32Array(outChannels * H * W);
      output = run.fusedBuffer;
    }
    const fused = await this.bundle.creff.run(
      lrFeature,
      key.prepared ?? key.feature!,
      { data: motion, dims: [2, H, W] },
      {
        sampling: o.pipeline.sampling,
        // ('cuda-emulated' without the device path, i.e. with ONNX Runtime's decoder: the CPU kernel)
        device: this.device === 'cuda' ? 'cuda' : 'cpu',
        mode: o.creffMode,
        output,
        head,
      },
    );
    timings.creff = now() - t;
    return head ? { branch: 'ar', logits: fused } : { branch: 'ar', feature: fused };
  }

  /**
   * Logits upsampled to the frame as the bundle says (LogitsUpsampling: one resize, or the
   * network's own resize and then the evaluation's) and arg-maxed, natively in one pass.
   */
  async #labels(logits: Logits, frame: VideoFrame, branch: SegmentResult['branch']): Promise<Uint8Array> {
    const [, lc, lh, lw] = logits.dims;
    const classes = this.bundle.manifest.classes.length;
    if (lc !== classes)
      throw new ArSegError(ErrorCodes.BUNDLE, `the decoder gave ${lc} classes, the bundle lists ${classes}`);
    const { upsampling, via } = this.#labelsResize(branch, lh, lw, frame);
    return addon().labelsFromLogits(logits.data, lc, lh, lw, frame.height, frame.width, upsampling, via);
  }

  /** The resize of a branch's lh x lw logits to the frame (Bundle.labelsResize; the same on the CPU and the device path). */
  #labelsResize(branch: SegmentResult['branch'], lh: number, lw: number, frame: VideoFrame): LabelsResize {
    const [height, width] = branch === 'ar' ? [lh, lw] : frame.tensors![branch === 'lr' ? 1 : 0].dims.slice(2);
    return this.bundle.labelsResize(branch, lh, lw, { height, width });
  }

  #result(
    item: IntakeItem,
    branch: SegmentResult['branch'],
    used: number | null,
    labels: Uint8Array,
    logits: Logits | null,
    timings: StageTimings,
    o: ResolvedOptions,
  ): SegmentResult {
    const { frame } = item;
    const result: SegmentResult = {
      index: frame.index,
      pts: item.pts,
      pictType: frame.pictType,
      isKeyframe: frame.isKeyframe,
      keyframeIndex: frame.keyframeIndex,
      usedKeyframe: used,
      keyframeDistance: used === null ? null : frame.index - used,
      skipped: item.skipped,
      receivedAt: item.receivedAt,
      decodedAt: item.decodedAt,
      branch,
      width: frame.width,
      height: frame.height,
      labels,
      timings,
    };
    if (o.logits && logits)
      result.logits = { data: logits.data, dims: [1, logits.dims[1], logits.dims[2], logits.dims[3]] };
    if (frame.rgb) result.rgb = frame.rgb;
    if (item.meta !== undefined) result.meta = item.meta;
    if (frame.motionSource) result.motionSource = frame.motionSource;
    return result;
  }

  /**
   * Stops every segmentation in progress (their loops end with ERR_CLOSED; a live source's
   * iterator is asked to return), waits for the networks they are running to return, then
   * releases the worker threads, the keyframes the device path keeps on the GPU and the ONNX
   * Runtime sessions. Idempotent.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const steps: Promise<unknown>[] = [];
    for (const run of this.#runs) {
      run.abort();
      if (run.step) steps.push(run.step.catch(() => undefined));
    }
    const threads = [this.#foreground, this.#background].map((t) =>
      t?.then(
        (thread) => thread.close(),
        () => undefined,
      ),
    );
    await Promise.all([...steps, ...threads]);
    // A segmentation abandoned without being resumed never reaches its finally: free its keyframe here.
    for (const path of this.#devicePaths) path.close();
    this.#devicePaths.clear();
    await this.bundle.close();
  }
}
