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
 * On 'cuda' (and 'cuda-emulated', its test double) with native heads the frames take the device
 * path (device-path.ts): CReFF, the heads and the labels on the GPU, with the same choices.
 *
 * Modes 'hr' (every frame at HR) and 'lr' (every frame at LR, no fusion) take the same path for
 * comparison. Decoding runs ahead on the thread pool while the networks run (the reader's
 * bounded read-ahead), so decode and inference overlap.
 */
import * as ort from 'onnxruntime-node';
import { Bundle, BundleOptions, BundlePipeline, DecoderChoice, ExecutionDevice, LabelsResize } from './bundle';
import { FeatureTensor, Keyframe } from './creff';
import { DevicePath } from './device-path';
import type { Logits, PointwiseHead } from './pointwise-head';
import { ArSegError, ErrorCodes, toArSegError } from './errors';
import type { KeyframePolicy, MotionSource, MotionSourceOption, PictType, TensorSpec, VideoFrame } from './frame';
import { integerIn, numberIn, oneOf, optionsObject } from './options';
import { resizeMotion } from './motion';
import { addon } from './native';
import { openVideo, OpenOptions, ReaderStats, VideoInfo, VideoReader } from './video';

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
  /** CReFF formulation: 'exact' (default) or 'keyframe-conv' (faster, approximate). */
  creffMode?: 'exact' | 'keyframe-conv';
  /** Frames decoded ahead of inference. Default 4. */
  ahead?: number;
  /** libavformat options for the source (see openVideo). */
  formatOptions?: OpenOptions['formatOptions'];
  /** The largest picture accepted, in pixels (see FrameOptions.limitInputPixels). Default 8192 x 8192. */
  limitInputPixels?: number | boolean;
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
  /** The whole frame. */
  total: number;
}

/** One segmented frame. */
export interface SegmentResult {
  /** Presentation order, from 0. */
  index: number;
  /** Presentation time in seconds, null when the stream has none. */
  pts: number | null;
  /** The frame's picture type. */
  pictType: PictType;
  /** A keyframe (segmented at HR in mode 'ar'). */
  isKeyframe: boolean;
  /** The index of the keyframe this frame belongs to. */
  keyframeIndex: number;
  /** Which branch produced the labels: 'hr', 'lr', or 'ar' (LR fused with the keyframe). */
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
  motionSource: MotionSourceOption | undefined;
}

/**
 * What a branch hands on: a feature for the decoder, the logits when it made them itself, or
 * (the device path) the labels themselves, with the logits when asked for.
 */
type BranchOutput =
  | { branch: SegmentResult['branch']; feature: FeatureTensor; logits?: undefined; device?: undefined }
  | { branch: SegmentResult['branch']; logits: Logits; feature?: undefined; device?: undefined }
  | { branch: SegmentResult['branch']; device: { labels: Uint8Array; logits?: Logits; toDevice: number; toHost: number }; feature?: undefined; logits?: undefined };

/** State of one segment() call across frames. */
interface RunState {
  o: ResolvedOptions;
  /** The decoder stage of HR frames, and of LR and AR frames (the LR network's own decoder when the bundle has one). */
  decodeHr: (feature: FeatureTensor) => Promise<Logits>;
  decodeLr: (feature: FeatureTensor) => Promise<Logits>;
  /** The native head CReFF applies on fused frames (CPU, decoder 'auto'; the AR frames' decoder), or null. */
  fusedHead: PointwiseHead | null;
  /** The keyframe of the current GOP (mode 'ar'): its feature, and prepared for the CPU kernel. */
  key: { feature: FeatureTensor; prepared: Keyframe | null } | null;
  /** The output buffer CReFF reuses from frame to frame. */
  fusedBuffer: Float32Array | null;
  /**
   * The device path (device 'cuda' or 'cuda-emulated' with native heads, see devicePathReason):
   * it holds the keyframe on the device, so `key.feature` only gives its size there. Null otherwise.
   */
  device: DevicePath | null;
}

/** The frames of one segment() call, in presentation order, and the stream's facts. */
export interface Segmentation extends AsyncIterable<SegmentResult> {
  /** Opens the source if it is not open yet (the segmentation then reads from that same open). */
  info(): Promise<VideoInfo>;
  /** The reader's counts so far: frames delivered, decode errors, frames the decoder dropped. */
  stats(): ReaderStats;
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
  /** The readers of the segmentations running now: close() closes them, which interrupts a blocked read. */
  #readers = new Set<VideoReader>();
  /** The frames being processed now (networks, CReFF): close() waits for them before releasing the sessions. */
  #inflight = new Set<Promise<unknown>>();
  /** The device paths of the segmentations running now: close() frees their keyframes on the device. */
  #devicePaths = new Set<DevicePath>();

  private constructor(bundle: Bundle, device: ExecutionDevice) {
    this.bundle = bundle;
    this.device = device;
  }

  /**
   * Loads a model bundle (see bundle.ts): validates it and opens its graphs in ONNX Runtime.
   * device 'cuda' runs the networks on ONNX Runtime's CUDA provider and, when the decoders are
   * pointwise heads, CReFF, the heads and the labels in the device path (the keyframe feature
   * stays on the GPU for its GOP, only the labels come back; `devicePathReason` says why not
   * otherwise); it fails with ERR_CUDA_UNAVAILABLE and
   * the reason (`ar-seg doctor`) when either is missing. 'cuda-emulated' runs that device path's
   * GPU code on the CPU (tests).
   */
  static async load(dir: string, options: BundleOptions = {}): Promise<ArSeg> {
    return new ArSeg(await Bundle.load(dir, options), options.device ?? 'cpu');
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
    const motionStride = integerIn('motionStride', options.motionStride, 1, 64, pipeline.motionComposition === 'official' ? 1 : 4);
    const creffMode = oneOf('creffMode', options.creffMode, ['exact', 'keyframe-conv'] as const, 'exact');
    const decoder = oneOf<DecoderChoice>('decoder', options.decoder, ['auto', 'onnx'], 'auto');
    // motionSource goes to the reader as it is: checked there (natively), like keyframes.
    return { mode, pipeline, scale, keyframes, motionStride, creffMode, decoder, logits: Boolean(options.logits), rgb: Boolean(options.rgb), motionSource: options.motionSource };
  }

  /**
   * Segments a video file or URL; yields one result per frame in presentation order. Options are
   * checked at once (ERR_INVALID_ARG); breaking out of the loop stops decoding.
   */
  segment(source: string, options: SegmentOptions = {}): Segmentation {
    if (this.#closed) throw new ArSegError(ErrorCodes.CLOSED, 'this ArSeg is closed');
    const o = this.#resolve(options);
    const motion = o.mode === 'ar' || typeof o.keyframes === 'object' ? 'accumulated' : 'none';
    const reader = openVideo(source, {
      tensors: this.#tensorSpecs(o),
      rgb: o.rgb,
      motion,
      // The official composition (mergeMotion) only when the bundle asks for it: the reader's
      // own default is this project's bilinear composition.
      ...(motion !== 'none' && o.pipeline.motionComposition !== 'bilinear' ? { composition: o.pipeline.motionComposition } : {}),
      stride: o.motionStride,
      motionSource: o.motionSource,
      keyframes: o.keyframes,
      ahead: options.ahead ?? 4,
      formatOptions: options.formatOptions,
      limitInputPixels: options.limitInputPixels,
    });
    this.#readers.add(reader);
    const frames = this.#run(reader, o);
    return { info: () => reader.open(), stats: () => reader.stats(), [Symbol.asyncIterator]: () => frames };
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
    if (o.pipeline.lrInput === 'hr-tensor-align-corners') return [{ scale: 1, multiple: 1, ...normalise }, { from: 0, scale: o.scale }];
    const multiple = m.input.sizeMultiple ?? 8;
    return [
      { scale: 1, multiple, ...normalise },
      { scale: o.scale, multiple, ...normalise },
    ];
  }

  /** The native head of a branch's decoder when it runs natively (CPU, decoder 'auto'), else null. */
  #nativeHead(o: ResolvedOptions, branch: SegmentResult['branch']): PointwiseHead | null {
    return o.decoder === 'auto' && this.device === 'cpu' ? this.bundle.headFor(branch) : null;
  }

  /**
   * Why segment() runs on this device without the device path (null when it takes it, with
   * decoder 'auto'): the device is 'cpu', or a decoder of the bundle is not a native pointwise
   * head (DevicePath.unsupportedReason). On 'cuda' the frames then take the plain CUDA path:
   * ONNX Runtime runs the decoders, CReFF.run the kernel, the labels are made on the CPU.
   */
  get devicePathReason(): string | null {
    if (this.device === 'cpu') return "device 'cpu'";
    return DevicePath.unsupportedReason(this.bundle);
  }

  /** The device path for a segment() call, or null (decoder 'onnx', or see devicePathReason). */
  #devicePath(o: ResolvedOptions): DevicePath | null {
    if (this.device === 'cpu' || o.decoder !== 'auto' || this.devicePathReason) return null;
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
   * The frame loop: each frame goes to one branch (#hrBranch, #lrBranch, #arBranch), which gives
   * a feature for the decoder or the logits themselves; then the decoder (when needed) and the
   * labels. The keyframe feature of mode 'ar' lives in `gop` from its keyframe to the next.
   */
  async *#run(reader: VideoReader, o: ResolvedOptions): AsyncGenerator<SegmentResult> {
    let run: RunState | null = null;
    try {
      run = {
        o,
        decodeHr: this.#decoder(o, 'hr'),
        decodeLr: this.#decoder(o, 'lr'),
        fusedHead: this.#nativeHead(o, 'ar'),
        key: null,
        fusedBuffer: null,
        device: this.#devicePath(o),
      };
      if (run.device) this.#devicePaths.add(run.device);
      for (;;) {
        const t0 = now();
        let frame: VideoFrame | null;
        try {
          frame = await reader.read();
        } catch (err) {
          // close() closed the reader under a blocked read: say that this ArSeg was closed
          if (this.#closed) throw new ArSegError(ErrorCodes.CLOSED, 'this ArSeg was closed while reading', { cause: err });
          throw err;
        }
        if (frame === null) return;
        if (this.#closed) throw new ArSegError(ErrorCodes.CLOSED, 'this ArSeg was closed');
        const work = this.#frame(frame, run, t0);
        this.#inflight.add(work);
        try {
          yield await work;
        } finally {
          this.#inflight.delete(work);
        }
      }
    } catch (err) {
      throw toArSegError(err);
    } finally {
      this.#readers.delete(reader);
      reader.close();
      if (run?.device) {
        this.#devicePaths.delete(run.device);
        run.device.close();
      }
    }
  }

  /** One frame through its branch, the decoder (when needed) and the labels. */
  async #frame(frame: VideoFrame, run: RunState, t0: number): Promise<SegmentResult> {
    const { o } = run;
    const timings: StageTimings = { decode: now() - t0, hrEncoder: 0, lrEncoder: 0, creff: 0, decoder: 0, labels: 0, total: 0 };
    const useHr = o.mode === 'hr' || (o.mode === 'ar' && frame.isKeyframe);
    const out = useHr ? await this.#hrBranch(frame, run, timings) : o.mode === 'lr' ? await this.#lrBranch(frame, run, timings) : await this.#arBranch(frame, run, timings);
    if (out.device) {
      // The device path gave the labels (and the logits when asked) already.
      timings.total = now() - t0;
      const result = this.#result(frame, out.branch, out.device.labels, out.device.logits ?? null, timings, o);
      result.bus = { toDevice: out.device.toDevice, toHost: out.device.toHost };
      return result;
    }
    let logits = out.logits;
    let t = now();
    if (!logits) {
      logits = await (out.branch === 'hr' ? run.decodeHr : run.decodeLr)(out.feature!);
      timings.decoder = now() - t;
    }
    t = now();
    const labels = await this.#labels(logits, frame, out.branch);
    timings.labels = now() - t;
    timings.total = now() - t0;
    return this.#result(frame, out.branch, labels, logits, timings, o);
  }

  /** HR encoder on the full frame; in mode 'ar' the feature becomes the GOP's keyframe. */
  async #hrBranch(frame: VideoFrame, run: RunState, timings: StageTimings): Promise<BranchOutput> {
    const { o } = run;
    const hr = frame.tensors![0];
    let t = now();
    const hrFeature = await runSession(this.bundle.hrEncoder, hr.data, [...hr.dims]);
    const feature = { data: hrFeature.data as Float32Array, dims: hrFeature.dims };
    timings.hrEncoder = now() - t;
    if (run.device) {
      // One upload serves the labels and, in mode 'ar', the GOP's keyframe on the device.
      t = now();
      const keep = o.mode === 'ar' ? o.creffMode : undefined;
      const resize = this.#labelsResize('hr', feature.dims[2], feature.dims[3], frame);
      const r = await run.device.labels(feature, { width: frame.width, height: frame.height, resize, head: 'hr', logits: o.logits, keyframe: keep });
      if (keep) run.key = { feature, prepared: null };
      timings.decoder = now() - t;
      return { branch: 'hr', device: { labels: r.labels, logits: r.logits, toDevice: r.bytesToDevice, toHost: r.bytesToHost } };
    }
    if (o.mode === 'ar') {
      t = now();
      // The CPU kernel takes a keyframe prepared once per GOP; the CUDA kernel the raw feature.
      const prepared = this.device !== 'cuda' ? await this.bundle.creff.prepareKeyframe(feature, { mode: o.creffMode }) : null;
      run.key = { feature, prepared };
      timings.creff = now() - t;
    }
    return { branch: 'hr', feature };
  }

  /** LR encoder on the downscaled frame. */
  async #lrEncoder(frame: VideoFrame, timings: StageTimings): Promise<FeatureTensor> {
    const lr = frame.tensors![1];
    const t = now();
    const out = await runSession(this.bundle.lrEncoder, lr.data, [...lr.dims]);
    timings.lrEncoder = now() - t;
    return { data: out.data as Float32Array, dims: out.dims };
  }

  /** Mode 'lr': the LR feature goes to the decoder as it is. */
  async #lrBranch(frame: VideoFrame, run: RunState, timings: StageTimings): Promise<BranchOutput> {
    const feature = await this.#lrEncoder(frame, timings);
    if (run.device) {
      const t = now();
      const resize = this.#labelsResize('lr', feature.dims[2], feature.dims[3], frame);
      const r = await run.device.labels(feature, { width: frame.width, height: frame.height, resize, head: 'lr', logits: run.o.logits });
      timings.decoder = now() - t;
      return { branch: 'lr', device: { labels: r.labels, logits: r.logits, toDevice: r.bytesToDevice, toHost: r.bytesToHost } };
    }
    return { branch: 'lr', feature };
  }

  /**
   * Mode 'ar' off keyframes: the LR feature fused with the GOP's keyframe feature by CReFF, along
   * the motion accumulated to the keyframe (resized and scaled to the feature size). With the
   * native head, CReFF applies it itself and gives the logits (the C x H x W fused feature is
   * never written): the decoder's time is then part of the CReFF stage.
   */
  async #arBranch(frame: VideoFrame, run: RunState, timings: StageTimings): Promise<BranchOutput> {
    const { o, key, fusedHead } = run;
    if (!key) throw new ArSegError(ErrorCodes.NATIVE, 'no keyframe feature before a non-keyframe');
    const lrFeature = await this.#lrEncoder(frame, timings);
    const t = now();
    const [, , H, W] = key.feature.dims;
    const motion = resizeMotion(frame.motion!, frame.width, frame.height, W, H, o.pipeline.motionResize);
    if (run.device) {
      // The keyframe is on the device already: up go the LR feature and the motion, back the labels.
      const resize = this.#labelsResize('ar', H, W, frame);
      const r = await run.device.fuse(lrFeature, motion, H, W, { width: frame.width, height: frame.height, resize, logits: o.logits });
      timings.creff = now() - t;
      return { branch: 'ar', device: { labels: r.labels, logits: r.logits, toDevice: r.bytesToDevice, toHost: r.bytesToHost } };
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
    const fused = await this.bundle.creff.run(lrFeature, key.prepared ?? key.feature, { data: motion, dims: [2, H, W] }, {
      sampling: o.pipeline.sampling,
      // ('cuda-emulated' without the device path, i.e. with ONNX Runtime's decoder: the CPU kernel)
      device: this.device === 'cuda' ? 'cuda' : 'cpu',
      mode: o.creffMode,
      output,
      head,
    });
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
    if (lc !== classes) throw new ArSegError(ErrorCodes.BUNDLE, `the decoder gave ${lc} classes, the bundle lists ${classes}`);
    const { upsampling, via } = this.#labelsResize(branch, lh, lw, frame);
    return addon().labelsFromLogits(logits.data, lc, lh, lw, frame.height, frame.width, upsampling, via);
  }

  /** The resize of a branch's lh x lw logits to the frame (Bundle.labelsResize; the same on the CPU and the device path). */
  #labelsResize(branch: SegmentResult['branch'], lh: number, lw: number, frame: VideoFrame): LabelsResize {
    const [height, width] = branch === 'ar' ? [lh, lw] : frame.tensors![branch === 'lr' ? 1 : 0].dims.slice(2);
    return this.bundle.labelsResize(branch, lh, lw, { height, width });
  }

  #result(frame: VideoFrame, branch: SegmentResult['branch'], labels: Uint8Array, logits: Logits | null, timings: StageTimings, o: ResolvedOptions): SegmentResult {
    const result: SegmentResult = {
      index: frame.index,
      pts: frame.pts,
      pictType: frame.pictType,
      isKeyframe: frame.isKeyframe,
      keyframeIndex: frame.keyframeIndex,
      branch,
      width: frame.width,
      height: frame.height,
      labels,
      timings,
    };
    if (o.logits && logits) result.logits = { data: logits.data, dims: [1, logits.dims[1], logits.dims[2], logits.dims[3]] };
    if (frame.rgb) result.rgb = frame.rgb;
    if (frame.motionSource) result.motionSource = frame.motionSource;
    return result;
  }

  /**
   * Ends every segmentation of this ArSeg and releases the ONNX Runtime sessions (and the
   * keyframes the device path keeps on the GPU). A segmentation blocked on its input (a silent
   * network peer, a FIFO with no writer) is interrupted: its loop rejects with ERR_CLOSED. Frames
   * already in the networks finish first. Idempotent.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const reader of this.#readers) reader.close();
    this.#readers.clear();
    await Promise.allSettled([...this.#inflight]);
    // A segmentation abandoned without being resumed never reaches its finally: free its keyframe here.
    for (const path of this.#devicePaths) path.close();
    this.#devicePaths.clear();
    await this.bundle.close();
  }
}
