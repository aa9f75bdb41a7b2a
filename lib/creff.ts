/**
 * CReFF, Cross Resolution Feature Fusion (docs/method.md, "CReFF, step by step"): fuses the keyframe's
 * high-resolution feature into a low-resolution frame's feature along the motion field, with a
 * K x K local attention. Runs natively: a fused multi-threaded CPU kernel, a CUDA kernel when the
 * build has one and a GPU is present, and the plain reference kernel the others are tested
 * against.
 */
import { addon, NativeCReFF, NativeKeyframe } from './native';
import { ArSegError, ErrorCodes, invalidArg, toArSegError } from './errors';
import { holdArrays } from './recycle';

/** The weights of a depthwise 3x3 convolution with bias over C channels. */
export interface DepthwiseConv {
  /** C x 1 x 3 x 3 */
  weight: Float32Array;
  /** C */
  bias: Float32Array;
}

/** CReFF's configuration and weights (the official module's `fuse_attention`). */
export interface CReFFWeights {
  /** Feature channels C. */
  channels: number;
  /** Attention window K (odd). The reference uses 7. */
  window: number;
  /** lr_query_conv, hr_key_conv, hr_value_conv of the official state dicts. */
  q: DepthwiseConv;
  /** The key convolution, applied to the warped keyframe feature. */
  k: DepthwiseConv;
  /** The value convolution, applied to the warped keyframe feature. */
  v: DepthwiseConv;
}

/** A float32 tensor: data in C order, dims [1, C, H, W] or [C, H, W]. */
export interface FeatureTensor {
  /** The values, C order. */
  data: Float32Array;
  /** [1, C, H, W] or [C, H, W]. */
  dims: readonly number[];
}

/** Where CReFF runs. */
export type CReFFDevice = 'cpu' | 'cuda';

/** Options of `CReFF.run`; checked natively (ERR_INVALID_ARG, ERR_SHAPE). */
export interface CReFFRunOptions {
  /** 'cpu' (default) or 'cuda' (ERR_CUDA_UNAVAILABLE when this build or machine has none). */
  device?: CReFFDevice;
  /** 'fused' (default) or the plain 'reference' kernel (CPU only; slow, for checking). */
  kernel?: 'fused' | 'reference';
  /**
   * 'exact' (default): k and v convolutions on the warped keyframe, the reference formulation.
   * 'keyframe-conv': convolve the keyframe once (prepareKeyframe) and warp the results: faster,
   * approximate (BENCHMARKS.md gives its error).
   */
  mode?: 'exact' | 'keyframe-conv';
  /** 'exact' (default): sample at p + M(p). 'official': the official code's half-pixel quirk. */
  sampling?: 'exact' | 'official';
  /** CPU threads; default all cores. */
  threads?: number;
  /**
   * A Float32Array of C x H x W to write the result into (returned as `data`): reusing one
   * buffer from frame to frame spares an allocation per call. Leave it alone until the promise
   * settles. With a `head` it holds classes x H x W.
   */
  output?: Float32Array;
  /**
   * The decoder's pointwise head (a 1x1 convolution: weight classes x C, bias classes), CPU
   * only. The result is then the logits, [1, classes, H, W], computed as the native head
   * computes them from the fused feature (bit for bit); the fused CPU kernel applies it while
   * each block is in cache and never writes the C x H x W feature.
   */
  head?: {
    /** classes x C weights. */
    weight: Float32Array;
    /** classes biases. */
    bias: Float32Array;
  };
}

/** What `CReFF.run` gives. */
export interface CReFFResult {
  /** The fused feature U + A, dims [1, C, H, W]; with a head, its logits [1, classes, H, W]. */
  data: Float32Array;
  /** [1, C, H, W], or [1, classes, H, W] with a head. */
  dims: [1, number, number, number];
  /** Kernel time (CUDA: device time, without copies). */
  milliseconds: number;
}

/** A keyframe prepared once for the frames of its GOP (fused CPU kernel). */
export class Keyframe {
  /** @internal */
  readonly native: NativeKeyframe;
  /** Channels C. */
  readonly channels: number;
  /** Height H of the keyframe feature. */
  readonly height: number;
  /** Width W of the keyframe feature. */
  readonly width: number;
  /** The formulation it was prepared for. */
  readonly mode: 'exact' | 'keyframe-conv';
  /** @internal */
  constructor(native: NativeKeyframe) {
    this.native = native;
    const info = native.info();
    this.channels = info.channels;
    this.height = info.height;
    this.width = info.width;
    this.mode = info.mode as 'exact' | 'keyframe-conv';
  }
}

function chw(t: FeatureTensor, name: string): [number, number, number] {
  if (!t || typeof t !== 'object' || !(t.data instanceof Float32Array))
    throw invalidArg(`${name} must be { data: Float32Array, dims }`);
  if (!Array.isArray(t.dims) && !ArrayBuffer.isView(t.dims)) throw invalidArg(`${name}.dims must be an array`);
  const dims: number[] = Array.from(t.dims as ArrayLike<number>);
  if (dims.length === 4 && dims[0] === 1) dims.shift();
  if (dims.length !== 3 || !dims.every((d) => Number.isInteger(d) && d > 0))
    throw new ArSegError(
      ErrorCodes.SHAPE,
      `${name}.dims must be [1, C, H, W] or [C, H, W] of positive integers, got [${Array.from(t.dims)}]`,
    );
  const [c, h, w] = dims;
  if (c * h * w !== t.data.length)
    throw new ArSegError(
      ErrorCodes.SHAPE,
      `${name} has ${t.data.length} values but dims [${Array.from(t.dims)}] need ${c * h * w}`,
    );
  return [c, h, w];
}

/**
 * CReFF with its weights: fuses a keyframe's HR feature into an LR frame's feature along the
 * motion field (docs/method.md, "CReFF"). Make one per model; `run()` per frame, with the
 * keyframe prepared once per GOP by `prepareKeyframe()`.
 */
export class CReFF {
  /** Feature channels C. */
  readonly channels: number;
  /** The attention window K. */
  readonly window: number;
  #native: NativeCReFF;

  constructor(weights: CReFFWeights) {
    if (!weights || typeof weights !== 'object') throw invalidArg('CReFF weights must be an object');
    const conv = (name: 'q' | 'k' | 'v') => {
      const c = weights[name];
      if (!c || !(c.weight instanceof Float32Array) || !(c.bias instanceof Float32Array))
        throw invalidArg(`weights.${name} must be { weight: Float32Array, bias: Float32Array }`);
      return c;
    };
    const q = conv('q');
    const k = conv('k');
    const v = conv('v');
    try {
      this.#native = new (addon().NativeCReFF)({
        channels: weights.channels,
        window: weights.window,
        qWeight: q.weight,
        qBias: q.bias,
        kWeight: k.weight,
        kBias: k.bias,
        vWeight: v.weight,
        vBias: v.bias,
      });
    } catch (err) {
      throw toArSegError(err);
    }
    this.channels = weights.channels;
    this.window = weights.window;
  }

  /** @internal The native object (the device path takes its weights from it). */
  nativeHandle(): NativeCReFF {
    return this.#native;
  }

  /**
   * Whether the CUDA kernels can run here, and if not, the first reason and its fix, in the
   * words of `ar-seg doctor`: "no NVIDIA driver found ...", "driver 535.129.03 (CUDA 12.2) is
   * older than 580.65.06, needed by ...", "no GPU: ...", "this build of ar-seg-native has no
   * CUDA kernels ...". `device: 'cuda'` is refused with ERR_CUDA_UNAVAILABLE and the message
   * "<reason>; to fix: <fix>".
   */
  static cudaStatus(): {
    /** Whether `device: 'cuda'` can run. */
    available: boolean;
    /** Why not, when it cannot ('' when it can). */
    reason: string;
    /** What to do about it ('' when it can). */
    fix: string;
  } {
    return addon().cudaStatus();
  }

  /**
   * Prepares a keyframe feature ([1, C, H, W]) once for every frame of its GOP: its channel-last
   * copy, and in 'keyframe-conv' mode its k and v convolutions.
   */
  async prepareKeyframe(
    key: FeatureTensor,
    options: { mode?: 'exact' | 'keyframe-conv'; threads?: number } = {},
  ): Promise<Keyframe> {
    const [c, h, w] = chw(key, 'key');
    this.#checkChannels(c, 'key');
    try {
      return new Keyframe(await this.#native.prepareKeyframe(key.data, h, w, options));
    } catch (err) {
      throw toArSegError(err);
    }
  }

  /**
   * Fuses: lr [1, C, h, w], key [1, C, H, W] (or a prepared Keyframe), motion [2, H, W] (or
   * [1, 2, H, W]) in key-feature pixels, as `resizeMotion` gives it. The arrays are read in place
   * on a worker thread: do not modify them until the promise settles.
   */
  async run(
    lr: FeatureTensor,
    key: FeatureTensor | Keyframe,
    motion: FeatureTensor,
    options: CReFFRunOptions = {},
  ): Promise<CReFFResult> {
    const [c, h, w] = chw(lr, 'lr');
    this.#checkChannels(c, 'lr');
    let H: number;
    let W: number;
    let nativeKey: Float32Array | NativeKeyframe;
    if (key instanceof Keyframe) {
      [H, W] = [key.height, key.width];
      this.#checkChannels(key.channels, 'the keyframe');
      nativeKey = key.native;
    } else {
      const [kc, kh, kw] = chw(key, 'key');
      this.#checkChannels(kc, 'key');
      [H, W] = [kh, kw];
      nativeKey = key.data;
    }
    const [mc, mh, mw] = chw(motion, 'motion');
    if (mc !== 2 || mh !== H || mw !== W)
      throw new ArSegError(
        ErrorCodes.SHAPE,
        `motion must be [2, ${H}, ${W}] (the key feature's size), got [${mc}, ${mh}, ${mw}]`,
      );
    // The options (kernel, device, sampling, mode, threads, output, head) are checked natively.
    // read in place on a worker thread: releaseMotion must not hand these to the decoder meanwhile
    const release = holdArrays(
      nativeKey instanceof Float32Array ? [lr.data, nativeKey, motion.data] : [lr.data, motion.data],
    );
    try {
      const { output, milliseconds } = await this.#native.run(lr.data, h, w, nativeKey, H, W, motion.data, options);
      // C channels, or with a head its classes
      return { data: output, dims: [1, output.length / (H * W), H, W], milliseconds };
    } catch (err) {
      throw toArSegError(err);
    } finally {
      release();
    }
  }

  #checkChannels(c: number, what: string): void {
    if (c !== this.channels)
      throw new ArSegError(ErrorCodes.SHAPE, `${what} has ${c} channels, this CReFF has ${this.channels}`);
  }
}

/**
 * Floating-point operations of one CReFF call (multiply-add = 2): bilinear upsampling and
 * warping, three depthwise 3x3 convolutions, the two K x K attention contractions, softmax and
 * the residual. At C=64, 720x960, K=7 the contractions alone are 8.7 GFLOP (docs/method.md: 4.3 GMAC).
 */
export function creffFlops(channels: number, height: number, width: number, window: number): number {
  const px = height * width;
  const k2 = window * window;
  return 2 * 8 * channels * px + 3 * 19 * channels * px + 2 * 2 * channels * k2 * px + 3 * k2 * px + channels * px;
}
