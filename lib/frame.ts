/**
 * What every decoded frame looks like, and the options that say what to produce for it.
 * Shared by the file/URL reader (video.ts) and the packet reader (packet-reader.ts).
 */
import type { NativeTensor } from './native';

/**
 * One float32 NCHW tensor to produce per frame: resized, then (v / 255 - mean) / std. The size is
 * fixed ({ width, height }) or relative to each frame ({ scale, multiple }: the frame's size times
 * scale, rounded to the nearest multiple, at least one multiple).
 *
 * Or `{ from: i, scale }`: the official AR-Seg's LR input, the earlier tensor i (already
 * normalised) resized bilinearly with align_corners=True to floor(its size x scale), at least 1
 * (evaluation.py's F.interpolate to [int(H*s), int(W*s)]); no other field applies.
 */
export interface TensorSpec {
  /** Index of an earlier entry of `tensors` this one is resized from (see above). */
  from?: number;
  /** A fixed width in pixels (with `height`; not with `scale`). */
  width?: number;
  /** A fixed height in pixels (with `width`). */
  height?: number;
  /** The frame's size times this, per side (0 to 4], instead of a fixed size. */
  scale?: number;
  /** With `scale`: round each side to the nearest multiple of this (1..256), at least one. Default 1. */
  multiple?: number;
  /** Per channel, in R, G, B order whatever `channelOrder` is. Default [0, 0, 0]. */
  mean?: [number, number, number];
  /** Per channel, R, G, B. Default [1, 1, 1]. */
  std?: [number, number, number];
  /** Order of the tensor's three planes. Default 'rgb'. */
  channelOrder?: 'rgb' | 'bgr';
}

/**
 * What a dense motion field holds: each cell's displacement to the frame its block was
 * predicted from ('reference'), or composed back to the frame's keyframe ('accumulated').
 */
export type MotionMode = 'reference' | 'accumulated';

/**
 * Where motion is taken from: 'auto' (the bitstream's vectors when the codec's decoder exports
 * them: H.264, MPEG-4 Part 2, MPEG-1/2, H.263, and HEVC with ar-seg-native's patched libav; else
 * estimated from the pictures), 'bitstream' (vectors only: ERR_NO_MOTION_VECTORS for other
 * codecs) or 'estimate' (always estimated).
 */
export type MotionSourceOption = 'auto' | 'bitstream' | 'estimate';

/** Where a frame's vectors and motion came from. */
export type MotionSource = 'bitstream' | 'estimated';

/**
 * How an accumulated field is composed along the reference chain (docs/motion.md):
 * 'bilinear' (default): fractional vectors, each step samples its reference's field bilinearly;
 * 'official': the official AR-Seg pre-processing (mergeMotion): per pixel, each step rounded to
 * whole pixels, positions clipped to the frame; the fields hold whole pixels.
 */
export type Composition = 'bilinear' | 'official';

/**
 * What the accumulated field does at cells of an inter picture that the bitstream does not link
 * to a past picture: intra cells, and cells predicted only from later pictures (docs/motion.md,
 * "Motion fill"). 'estimate' (default): the motion estimated there against the nearest past
 * picture the frame predicts from. 'none': as the bitstream says (intra cells keep the fallback
 * frame's field, zero motion relative to it, the official pre-processing's rule; future-only
 * cells follow the later picture's field). Applies to the bilinear composition of the
 * bitstream's vectors; costs an estimate per picture that needs one.
 */
export type MotionFill = 'estimate' | 'none';

/** Adaptive keyframes: a new keyframe when one of these trips (on I- and P-frames). */
export interface AdaptiveKeyframes {
  /** Adaptive keyframes. */
  policy: 'adaptive';
  /** At most this many frames between keyframes. Default 12. */
  maxInterval?: number;
  /** A share of intra-coded cells at least this large is a scene cut. Default 0.5. */
  intraShare?: number;
  /** A median accumulated displacement of at least this many pixels. Default 8% of the frame's larger side. */
  maxMotion?: number;
}

/**
 * Which frames are keyframes: 'gop' (every I-frame), every L-th frame (a number), or
 * 'adaptive' (every I-frame plus frames whose motion says the keyframe no longer explains them).
 */
export type KeyframePolicy = 'gop' | 'adaptive' | number | AdaptiveKeyframes;

/**
 * What to produce for each decoded frame (the options shared by `openVideo` and
 * `createPacketReader`); all checked natively, synchronously, when the reader is made.
 */
export interface FrameOptions {
  /** Packed RGB24 pixels at the frame's size (height x width x 3). */
  rgb?: boolean;
  /** Float32 NCHW tensors, one per entry, produced natively in one pass. */
  tensors?: TensorSpec[];
  /** Raw block motion vectors, N x 10 Int32 (see VECTOR_COLUMNS). */
  vectors?: boolean;
  /**
   * Dense motion field: 'reference' gives each cell's displacement to the frame its block was
   * predicted from; 'accumulated' composes it back to the frame's keyframe.
   */
  motion?: MotionMode | 'none' | false;
  /** Composition of the accumulated field. Default 'bilinear'. */
  composition?: Composition;
  /** Cells the bitstream does not link to a past picture, in the accumulated field (see MotionFill). Default 'estimate'. */
  motionFill?: MotionFill;
  /** Cell size of the dense field in pixels (1..256). Default 8. */
  stride?: number;
  /**
   * Where vectors and motion come from (see MotionSourceOption). Default 'auto'. Estimated
   * vectors are one block per cell of `stride` pixels against the previous picture.
   */
  motionSource?: MotionSourceOption;
  /**
   * Keyframe policy: 'gop' (every I-frame, the default), every L-th frame, or 'adaptive' (needs
   * motion: 'accumulated'): every I-frame, plus an I/P-frame whose motion says the keyframe no
   * longer explains it (see AdaptiveKeyframes).
   */
  keyframes?: KeyframePolicy;
  /** Decoder threads; 0 lets libavcodec choose. */
  threads?: number;
  /** End the stream with ERR_DECODE at the first packet the decoder rejects. Default false:
   * decoders conceal damage, the frame is flagged `corrupt` and decoding goes on. */
  strict?: boolean;
  /**
   * The largest picture accepted, in pixels (width x height), like sharp's option of the same
   * name: a stream whose header states a larger size fails with ERR_INPUT_TOO_LARGE before a
   * picture is allocated, and so does a size change part-way (after the frames before it).
   * Default DEFAULT_PIXEL_LIMIT (8192 x 8192); `true` is the default, `0` or `false` no limit
   * (beyond the hard one: 16384 per side, 2^27 pixels). Lower it for untrusted input: the
   * networks need memory in proportion to the pixels.
   */
  limitInputPixels?: number | boolean;
}

/** The default of FrameOptions.limitInputPixels: 8192 x 8192 pixels. */
export const DEFAULT_PIXEL_LIMIT = 8192 * 8192;

/** A float32 NCHW tensor of one frame, as a `TensorSpec` asked for it. */
export interface Tensor {
  /** 3 x height x width values: the R, G, B planes (or B, G, R). */
  data: Float32Array;
  /** [1, 3, height, width] */
  dims: [1, 3, number, number];
}

/** Displacement in pixels per cell: the frame at p matches the reference at p + (dx, dy). */
export interface MotionField {
  /** 2 x height x width: the dx plane, then the dy plane. */
  data: Float32Array;
  /** Cells per row: ceil(frameWidth / stride). */
  width: number;
  /** Cell rows: ceil(frameHeight / stride). */
  height: number;
  /** Cell size in frame pixels. */
  stride: number;
  /** Relative to the reference frames, or accumulated to the keyframe. */
  mode: MotionMode;
}

/** The picture type libavcodec reports: I, P, B, S (MPEG-4 sprite) or ? (unknown). */
export type PictType = 'I' | 'P' | 'B' | 'S' | '?';

/** One decoded frame, with what `FrameOptions` asked for. */
export interface VideoFrame {
  /**
   * The frame's number in the stream, in presentation order from 0. A frame the decoder dropped
   * (damage it could not conceal) leaves its number unused, so numbers stay aligned with the
   * stream (labels, files named after them); the reader's stats() count the dropped frames.
   */
  index: number;
  /** Presentation time in seconds, null when the stream has none. */
  pts: number | null;
  /** Its picture type. */
  pictType: PictType;
  /** A keyframe of the chosen policy (motion is accumulated to it). */
  isKeyframe: boolean;
  /** Index of the keyframe this frame belongs to. */
  keyframeIndex: number;
  /** The decoder reported damage it concealed. */
  corrupt: boolean;
  /** Frame width in pixels. */
  width: number;
  /** Frame height in pixels. */
  height: number;
  /** With `rgb: true`: packed RGB24 pixels, height x width x 3. */
  rgb?: Uint8Array;
  /** With `tensors`: one per `TensorSpec`, in order. */
  tensors?: Tensor[];
  /** With `vectors: true`: the block motion vectors, N rows of the 10 `VECTOR_COLUMNS`. */
  vectors?: Int32Array;
  /**
   * With `vectors`: one entry per row, the exact reference of the vector as a signed
   * display-order distance (3: the frame 3 before this one; -1: the next frame).
   * VECTOR_REF_UNKNOWN (0) where the bitstream names none (H.264 on a libav without
   * ar-seg-native's patch); VECTOR_REF_NONE for a placeholder row (H.264 lists both
   * directions for every 8x8 sub-block of a macroblock that uses one anywhere).
   */
  vectorRefs?: Int32Array;
  /** With `motion`: the dense motion field. */
  motion?: MotionField;
  /** Where `vectors` and `motion` came from; set when either was asked for. */
  motionSource?: MotionSource;
}

/** `VideoFrame.vectorRefs` value: the reference is not known. */
export const VECTOR_REF_UNKNOWN = 0;
/** `VideoFrame.vectorRefs` value: the row is a placeholder, not a prediction. */
export const VECTOR_REF_NONE = -2147483648;

/** Column order of `VideoFrame.vectors` rows (the mv-extractor layout). */
export const VECTOR_COLUMNS = [
  'source',
  'w',
  'h',
  'src_x',
  'src_y',
  'dst_x',
  'dst_y',
  'motion_x',
  'motion_y',
  'motion_scale',
] as const;

/**
 * Builds one frame from the native reader's fields: the readers give it to their native reader
 * (lib/native.ts, NativeFrameMaker), which calls it once per frame on the main thread with the
 * frame's buffers already wrapped (native/addon/frame_js.cc). One call with the fields as
 * arguments, and object literals built by optimised code, cost a fraction of the native side
 * setting each property (a string-table lookup and a walk of V8's transitions per property).
 * Arguments not asked for are undefined; the properties are added in this order.
 */
export function makeFrame(
  index: number,
  pts: number | null,
  pictType: string,
  isKeyframe: boolean,
  keyframeIndex: number,
  corrupt: boolean,
  width: number,
  height: number,
  rgb: Uint8Array | undefined,
  tensors: NativeTensor[] | undefined,
  vectors: Int32Array | undefined,
  vectorRefs: Int32Array | undefined,
  motionSource: MotionSource | undefined,
  motion: Float32Array | undefined,
  motionWidth: number,
  motionHeight: number,
  stride: number,
  mode: MotionMode,
): VideoFrame {
  const frame: VideoFrame = {
    index,
    pts,
    pictType: pictType as PictType,
    isKeyframe,
    keyframeIndex,
    corrupt,
    width,
    height,
  };
  if (rgb) frame.rgb = rgb;
  // tensors carry their own sizes (relative specs resolve per frame)
  if (tensors) frame.tensors = tensors.map((t) => ({ data: t.data, dims: [1, 3, t.height, t.width] }));
  if (vectors) {
    frame.vectors = vectors;
    frame.vectorRefs = vectorRefs;
  }
  if (motionSource) frame.motionSource = motionSource;
  if (motion) frame.motion = { width: motionWidth, height: motionHeight, stride, data: motion, mode };
  return frame;
}

let inexactWarned = false;
let estimatedWarned = false;

/**
 * Says once per process that HEVC motion is estimated because this build's libav exports no HEVC
 * vectors (it lacks ar-seg-native's patch). Called by the readers when they learn it; nothing is
 * said when the caller asked for the estimate.
 */
export function warnEstimatedMotion(codec: string, motionSource: string | null, options: FrameOptions): void {
  if (estimatedWarned || codec !== 'hevc' || motionSource !== 'estimated' || options.motionSource === 'estimate')
    return;
  estimatedWarned = true;
  process.emitWarning(
    "this build's libav exports no HEVC motion vectors (it lacks ar-seg-native's patch: use the prebuild, or build " +
      'from source after scripts/setup.sh): the motion is estimated from the pictures instead.',
    { code: 'ARSEG_MOTION_ESTIMATED' },
  );
}

/**
 * Says once per process that motion on `codec` assumes the nearest anchor: the libav this addon
 * was built with lacks ar-seg-native's patch (exact references), so vectors from several
 * reference frames or B-pyramids compose wrongly. Called by the readers when they learn it.
 */
export function warnInexactMotion(codec: string, options: FrameOptions): void {
  const wantsMotion = options.vectors === true || options.motion === 'reference' || options.motion === 'accumulated';
  if (inexactWarned || !wantsMotion) return;
  inexactWarned = true;
  process.emitWarning(
    `motion of ${codec} assumes each vector refers to the nearest I/P frame: this build's libav lacks ` +
      "ar-seg-native's exact-reference patch (use the prebuild, or build from source after scripts/setup.sh). " +
      "Streams with several reference frames or B-pyramids get wrong motion: encode with one reference frame, or use motionSource 'estimate'.",
    { code: 'ARSEG_MOTION_INEXACT' },
  );
}
