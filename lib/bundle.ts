/**
 * Model bundles: a directory holding arseg.json (the manifest, schema in bundle-schema.ts), the
 * HR encoder, LR encoder and decoder as ONNX graphs (and, optionally, the LR network's own
 * decoder for LR and AR frames), and CReFF's weights as .npy files. The manifest also says how
 * the pipeline around the networks runs (`BundlePipeline`: the LR input, the motion's
 * composition and resize, the warp, the labels), defaulting to this project's own choices.
 * Loading validates the manifest, opens the graphs in ONNX Runtime and dry-runs them, so that
 * every inconsistency is reported at load time, naming the file and the field. When the decoder
 * is a single 1x1 convolution (pointwise-head.ts) its weights are taken out for the native head,
 * which must agree with ONNX Runtime's run of the same graph before it is used.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import Ajv from 'ajv';
import * as ort from 'onnxruntime-node';
import { bundleSchema } from './bundle-schema';
import { CReFF, CReFFWeights } from './creff';
import { PointwiseHead, readPointwiseHead } from './pointwise-head';
import { onnxRuntimeCudaProvider } from './doctor';
import { ArSegError, ErrorCodes } from './errors';
import { integerIn, nonEmptyString, oneOf, optionsObject } from './options';
import { addon } from './native';
import { decodeNpy } from './npy';
import type { MotionResize } from './motion';
import { NonFiniteWeight, nonFiniteWeight } from './onnx-weights';

/** One output class of a bundle's networks. */
export interface BundleClass {
  /** Its name ('road', 'car'...). */
  name: string;
  /** Its colour in label PNGs and overlays, R, G, B from 0 to 255. */
  color: [number, number, number];
}

/** The paths of one depthwise 3x3 convolution's .npy files, relative to the bundle. */
export interface BundleConvFiles {
  /** C x 1 x 3 x 3 float32. */
  weight: string;
  /** C float32. */
  bias: string;
}

/**
 * A model bundle's manifest, `arseg.json` (its JSON Schema: lib/bundle-schema.ts; the format:
 * docs/segmenting.md, "Model bundles").
 */
export interface BundleManifest {
  /** Always 'ar-seg-bundle'. */
  format: 'ar-seg-bundle';
  /** The format's version; 1. */
  formatVersion: 1;
  /** The model's name. */
  name: string;
  /** What the model is and where it comes from. */
  description?: string;
  /** The classes, in the order of the decoder's output channels. */
  classes: BundleClass[];
  /** Label value that evaluation ignores: a class index (CamVid's void) or 255 (no class, Cityscapes). */
  ignoreIndex?: number | null;
  /** How frames become network inputs. */
  input: {
    /** Per channel, R, G, B, of values scaled to [0, 1]. */
    mean: [number, number, number];
    /** Per channel, R, G, B. */
    std: [number, number, number];
    /** The order of the input tensor's planes. */
    channelOrder: 'rgb' | 'bgr';
    /** Input sizes are rounded to a multiple of this (the network's output stride); default 8. */
    sizeMultiple?: number;
    /** How the LR input is made (see LrInput). Default 'frame-swscale'. */
    lrInput?: LrInput;
  };
  /** The ONNX graphs, relative to the bundle. */
  networks: {
    /** Image to feature, run at full resolution on keyframes. */
    hrEncoder: string;
    /** Image to feature, run on the downscaled frames. */
    lrEncoder: string;
    /** Feature to logits: the HR network's classifier, for every frame unless `lrDecoder` is given. */
    decoder: string;
    /**
     * Feature to logits for LR and AR frames: the LR network's own classifier, when it differs
     * from the HR one (an official FST checkpoint whose final_conv was not kept tied).
     */
    lrDecoder?: string;
  };
  /** The encoders' output, the feature CReFF fuses. */
  feature: {
    /** Channels C. */
    channels: number;
    /** Input pixels per feature pixel: 1 (PSPNet18) or 8 (BiSeNet18, the Cityscapes PSPNet18). */
    stride: number;
  };
  /** How motion is composed to the keyframe and resized to the feature size (see BundlePipeline). */
  motion?: {
    /** Default 'bilinear'. */
    composition?: MotionComposition;
    /** Default 'cell-centres'. */
    resize?: MotionResize;
  };
  /** CReFF's configuration and weights (docs/method.md, "CReFF"). */
  creff: {
    /** The attention window K (odd). */
    window: number;
    /** How the keyframe feature is warped: 'exact' (default) or the official code's 'official'. */
    sampling?: 'exact' | 'official';
    /** The query convolution (lr_query_conv). */
    q: BundleConvFiles;
    /** The key convolution (hr_key_conv). */
    k: BundleConvFiles;
    /** The value convolution (hr_value_conv). */
    v: BundleConvFiles;
  };
  /** How the decoder's logits become labels at the frame size (see LogitsUpsampling). Default 'align-corners'. */
  logitsUpsampling?: LogitsUpsampling;
  /** The LR branch's scale per side that the model was trained for (0.5 in the paper). */
  lrScale: number;
  /** The default keyframe interval L (12 in the paper). */
  keyframeInterval: number;
}

/**
 * How the LR network's input is made:
 * - 'frame-swscale' (this project's): the decoded frame resized by swscale (bilinear) to
 *   round(size x scale), rounded to input.sizeMultiple, and normalised; the HR input likewise at
 *   the frame's size rounded to the multiple.
 * - 'hr-tensor-align-corners' (the official evaluation's): the HR tensor (the frame at its own
 *   size, normalised) resized bilinearly with align_corners=True to exactly
 *   floor(H x scale) x floor(W x scale); no rounding to a multiple anywhere (the networks take any
 *   size, as the official ones do).
 */
export type LrInput = 'frame-swscale' | 'hr-tensor-align-corners';

/**
 * How motion vectors are composed back to the keyframe (the video reader's `composition`):
 * 'bilinear' (this project's: sub-pixel displacements, followed bilinearly through the
 * reference's field) or 'official' (the official pre-processing's mergeMotion: per pixel, every
 * step rounded to whole pixels, the chain follows the nearest pixel, intra blocks zero,
 * positions clipped to the frame).
 */
export type MotionComposition = 'bilinear' | 'official';

/**
 * How the decoder's logits (at the feature size) become labels at the frame size, before the
 * arg-max:
 * - 'align-corners': one bilinear resize to the frame, align_corners=True (this project's
 *   PSPNet18 bundles);
 * - 'half-pixel': one resize, align_corners=False;
 * - 'align-corners-via-input': the official PSPNets': first the network's own resize,
 *   align_corners=True to the size of the image the encoder took (HR frames: the HR input; LR
 *   frames: the LR input; AR frames: none, their logits are at the keyframe feature's size, where
 *   the official LR network leaves them), then the evaluation's, align_corners=True to the frame
 *   (on LR frames the two do not compose into one resize). The CamVid PSPNet's log-softmax
 *   between them shifts every class of a pixel alike, which a linear resize keeps: the same arg-max;
 * - 'half-pixel-via-stride': the official BiSeNet18's: align_corners=False to feature.stride x the
 *   logits' size (its x8 head), then align_corners=True to the frame.
 */
export type LogitsUpsampling = 'align-corners' | 'half-pixel' | 'align-corners-via-input' | 'half-pixel-via-stride';

/**
 * What the bundle's LogitsUpsampling makes of one frame's logits (`Bundle.labelsResize`): the
 * resize to the frame, through `via` first (the network's own resize) in the two-step modes. The
 * CPU labels (labelsFromLogits) and the device path take it alike.
 */
export interface LabelsResize {
  /** The resize to the frame. */
  upsampling: 'align-corners' | 'half-pixel';
  /** A first resize, to this size, when the mode has two. */
  via?: LabelsFirstResize;
}

/** The first of two resizes (LabelsResize.via): the network's own. */
export interface LabelsFirstResize {
  /** The height it resizes the logits to. */
  height: number;
  /** The width it resizes the logits to. */
  width: number;
  /** Its coordinate map. */
  upsampling: 'align-corners' | 'half-pixel';
}

/** Every choice of the pipeline around the networks, defaults filled in (`Bundle.pipeline`). */
export interface BundlePipeline {
  /** How the LR input is made (input.lrInput). */
  lrInput: LrInput;
  /** How motion is composed to the keyframe (motion.composition). */
  motionComposition: MotionComposition;
  /** How motion reaches the feature size (motion.resize). */
  motionResize: MotionResize;
  /** CReFF's warp: 'exact' (docs/method.md) or 'official' (the official grid, see CReFFRunOptions). */
  sampling: 'exact' | 'official';
  /** How logits become labels (logitsUpsampling). */
  logitsUpsampling: LogitsUpsampling;
  /** 'own': LR and AR frames use networks.lrDecoder; 'shared': the HR decoder serves every frame. */
  lrDecoder: 'shared' | 'own';
}

/** This project's choices: what a manifest that says nothing gets (every manifest before these fields). */
export const PIPELINE_DEFAULTS: Readonly<BundlePipeline> = Object.freeze({
  lrInput: 'frame-swscale',
  motionComposition: 'bilinear',
  motionResize: 'cell-centres',
  sampling: 'exact',
  logitsUpsampling: 'align-corners',
  lrDecoder: 'shared',
});

/** The pipeline a manifest describes, defaults filled in. */
export function bundlePipeline(m: BundleManifest): BundlePipeline {
  return {
    lrInput: m.input.lrInput ?? PIPELINE_DEFAULTS.lrInput,
    motionComposition: m.motion?.composition ?? PIPELINE_DEFAULTS.motionComposition,
    motionResize: m.motion?.resize ?? PIPELINE_DEFAULTS.motionResize,
    sampling: m.creff.sampling ?? PIPELINE_DEFAULTS.sampling,
    logitsUpsampling: m.logitsUpsampling ?? PIPELINE_DEFAULTS.logitsUpsampling,
    lrDecoder: m.networks.lrDecoder ? 'own' : 'shared',
  };
}

/**
 * Where the networks and the kernels run: 'cpu'; 'cuda' (ONNX Runtime's CUDA provider, and
 * ar-seg-native's device path on the GPU); 'cuda-emulated' (ONNX Runtime on the CPU, and the
 * device path's GPU code run on the CPU through the emulator: slow, for testing the GPU path on
 * machines without one).
 */
export type ExecutionDevice = 'cpu' | 'cuda' | 'cuda-emulated';

/**
 * Who runs the decoder: 'auto' (the native pointwise head when the decoder is one 1x1
 * convolution: on the CPU, or on the GPU in the device path; ONNX Runtime otherwise) or 'onnx'
 * (always ONNX Runtime).
 */
export type DecoderChoice = 'auto' | 'onnx';

/** Options of `Bundle.load` and `ArSeg.load`; checked before the bundle is read (ERR_INVALID_ARG). */
export interface BundleOptions {
  /** 'cpu' (default), 'cuda' or 'cuda-emulated' (see ExecutionDevice). */
  device?: ExecutionDevice;
  /** ONNX Runtime intra-op threads; default: all cores. */
  threads?: number;
  /**
   * 'auto' (default): when decoder.onnx is exactly one 1x1 convolution, run it natively
   * (`Bundle.head`; the same logits within float rounding, several times faster at frame size;
   * on 'cuda' in the device path, next to CReFF). 'onnx': always ONNX Runtime (`head` is then
   * null).
   */
  decoder?: DecoderChoice;
}

/** Relative tolerance of the native head against ONNX Runtime at load (of the logits' scale). */
const HEAD_TOLERANCE = 1e-4;

const MANIFEST = 'arseg.json';
let validateManifest: ReturnType<Ajv['compile']> | undefined;

function bundleError(dir: string, file: string, message: string, cause?: unknown): ArSegError {
  return new ArSegError(ErrorCodes.BUNDLE, `${path.join(dir, file)}: ${message}`, { cause });
}

/**
 * A model bundle, loaded: its manifest, its three networks in ONNX Runtime sessions and its
 * CReFF. `ArSeg.load` loads one; load one directly to run the networks yourself.
 */
export class Bundle {
  /** The bundle's directory, absolute. */
  readonly dir: string;
  /** Its manifest, validated. */
  readonly manifest: BundleManifest;
  /** The HR encoder's ONNX Runtime session. */
  readonly hrEncoder: ort.InferenceSession;
  /** The LR encoder's ONNX Runtime session. */
  readonly lrEncoder: ort.InferenceSession;
  /** The decoder's ONNX Runtime session. */
  readonly decoder: ort.InferenceSession;
  /** The LR network's own decoder for LR and AR frames (networks.lrDecoder), or null: `decoder` serves them. */
  readonly lrDecoder: ort.InferenceSession | null;
  /** CReFF with the bundle's weights. */
  readonly creff: CReFF;
  /** The pipeline around the networks the manifest describes, defaults filled in. */
  readonly pipeline: Readonly<BundlePipeline>;
  /**
   * The decoder as a native pointwise head (checked against `decoder` at load), or null: the
   * decoder is not one 1x1 convolution, `decoder: 'onnx'` was asked for, or the check failed.
   * `headReason` says which.
   */
  get head(): PointwiseHead | null {
    return this.#head;
  }
  /** Why `head` is null (for debugging); null when there is a head. */
  get headReason(): string | null {
    return this.#headReason;
  }
  /** `lrDecoder` as a native pointwise head, as `head` is for `decoder`; null without an lrDecoder. */
  get lrHead(): PointwiseHead | null {
    return this.#lrHead;
  }
  /** Why `lrHead` is null; null when there is one. */
  get lrHeadReason(): string | null {
    return this.#lrHeadReason;
  }
  #head: PointwiseHead | null = null;
  #headReason: string | null = null;
  #sessionOptions: ort.InferenceSession.SessionOptions = {};

  /** The ONNX Runtime options the graphs were opened with (for sessions opened elsewhere: network-thread.ts). */
  get sessionOptions(): ort.InferenceSession.SessionOptions {
    return this.#sessionOptions;
  }

  /** The file of one of the bundle's graphs. */
  graphFile(network: 'hrEncoder' | 'lrEncoder' | 'decoder'): string {
    return path.resolve(this.dir, this.manifest.networks[network]);
  }
  #lrHead: PointwiseHead | null = null;
  #lrHeadReason: string | null = 'the bundle has no networks.lrDecoder';

  private constructor(dir: string, manifest: BundleManifest, sessions: ort.InferenceSession[], creff: CReFF) {
    this.dir = dir;
    this.manifest = manifest;
    [this.hrEncoder, this.lrEncoder, this.decoder] = sessions;
    this.lrDecoder = sessions[3] ?? null;
    this.creff = creff;
    this.pipeline = Object.freeze(bundlePipeline(manifest));
  }

  /** The decoder of a branch's frames: the LR network's own on LR and AR frames when the bundle has one. */
  decoderFor(branch: 'hr' | 'lr' | 'ar'): ort.InferenceSession {
    return branch !== 'hr' && this.lrDecoder ? this.lrDecoder : this.decoder;
  }

  /** The native head of a branch's frames (see decoderFor), or null when that decoder runs in ONNX Runtime. */
  headFor(branch: 'hr' | 'lr' | 'ar'): PointwiseHead | null {
    return branch !== 'hr' && this.lrDecoder ? this.#lrHead : this.#head;
  }

  /**
   * How a branch's logits (logitsHeight x logitsWidth) become labels, as `pipeline.logitsUpsampling`
   * says. input: the size of the image the branch's encoder took (HR frames the HR input, LR
   * frames the LR input), which 'align-corners-via-input' resizes to first; AR logits stay at
   * the keyframe feature's size there (the official LR network leaves them so).
   */
  labelsResize(
    branch: 'hr' | 'lr' | 'ar',
    logitsHeight: number,
    logitsWidth: number,
    input: { height: number; width: number },
  ): LabelsResize {
    const upsampling = this.pipeline.logitsUpsampling;
    if (upsampling === 'align-corners' || upsampling === 'half-pixel') return { upsampling };
    if (upsampling === 'align-corners-via-input') {
      const [height, width] = branch === 'ar' ? [logitsHeight, logitsWidth] : [input.height, input.width];
      return { upsampling: 'align-corners', via: { height, width, upsampling: 'align-corners' } };
    }
    const stride = this.manifest.feature.stride;
    return {
      upsampling: 'align-corners',
      via: { height: logitsHeight * stride, width: logitsWidth * stride, upsampling: 'half-pixel' },
    };
  }

  /** The classes (the manifest's). */
  get classes(): BundleClass[] {
    return this.manifest.classes;
  }

  /**
   * Loads a bundle: validates the manifest, opens the graphs and dry-runs them, so that a
   * missing file, a wrong shape or a class count that disagrees is an ERR_BUNDLE naming the file
   * and the field; ERR_CUDA_UNAVAILABLE for device 'cuda' without CUDA.
   */
  static async load(dir: string, options: BundleOptions = {}): Promise<Bundle> {
    nonEmptyString('the bundle directory', dir, 'a path');
    options = checkBundleOptions(options);
    const root = path.resolve(dir);
    const file = await insideBundle(root);
    await file(MANIFEST, 'the manifest');
    const manifest = await readManifest(root);
    const creff = await loadCReFF(root, manifest, file);
    const sessionOptions = executionOptions(options);
    const sessions: ort.InferenceSession[] = [];
    const graphs = [
      'hrEncoder',
      'lrEncoder',
      'decoder',
      ...(manifest.networks.lrDecoder ? (['lrDecoder'] as const) : []),
    ] as const;
    for (const field of graphs) {
      const rel = manifest.networks[field]!;
      const full = await file(rel, `networks.${field}`);
      let bytes: Buffer;
      try {
        bytes = await fs.readFile(full);
      } catch (err) {
        throw bundleError(root, rel, `missing (networks.${field} in ${MANIFEST})`, err);
      }
      let bad: NonFiniteWeight | null = null;
      try {
        bad = nonFiniteWeight(bytes);
      } catch {
        // not ONNX at all: ONNX Runtime's load below says so
      }
      if (bad)
        throw bundleError(
          root,
          rel,
          `weight '${bad.tensor}' holds ${bad.value} at index ${bad.index} (networks.${field}): a diverged or damaged export`,
        );
      try {
        sessions.push(await ort.InferenceSession.create(bytes, sessionOptions));
      } catch (err) {
        throw bundleError(root, rel, `ONNX Runtime cannot load it (networks.${field}): ${(err as Error).message}`, err);
      }
    }
    const bundle = new Bundle(root, manifest, sessions, creff);
    bundle.#sessionOptions = sessionOptions;
    await bundle.dryRun();
    await bundle.attachHead('decoder', await file(manifest.networks.decoder, 'networks.decoder'), options);
    if (manifest.networks.lrDecoder)
      await bundle.attachHead('lrDecoder', await file(manifest.networks.lrDecoder, 'networks.lrDecoder'), options);
    return bundle;
  }

  /** Takes a decoder's weights for a native head when it is one, and checks it. */
  private async attachHead(field: 'decoder' | 'lrDecoder', decoderFile: string, options: BundleOptions): Promise<void> {
    const m = this.manifest;
    const rel = m.networks[field]!;
    const session = field === 'decoder' ? this.decoder : this.lrDecoder!;
    const found = await (async (): Promise<PointwiseHead | string> => {
      if ((options.decoder ?? 'auto') === 'onnx') return "decoder: 'onnx' was asked for";
      if (typeof addon().pointwiseHead !== 'function')
        return 'the native addon has no pointwise head (a build older than this package)';
      let detection;
      try {
        detection = await readPointwiseHead(decoderFile);
      } catch (err) {
        throw bundleError(this.dir, rel, (err as Error).message, err);
      }
      const { head, reason } = detection;
      if (!head) return `${rel} is not a pointwise head: ${reason}`;
      if (head.channels !== m.feature.channels || head.classes !== m.classes.length)
        return `${rel} is a ${head.channels} -> ${head.classes} convolution, the manifest says ${m.feature.channels} -> ${m.classes.length}`;
      const native = new PointwiseHead(head);
      let mismatch: string | null;
      try {
        mismatch = await this.compareHead(native, session);
      } catch (err) {
        mismatch = `the native head failed its check: ${(err as Error).message}`;
      }
      return mismatch ?? native;
    })();
    const head = typeof found === 'string' ? null : found;
    const reason = typeof found === 'string' ? found : null;
    if (field === 'decoder') [this.#head, this.#headReason] = [head, reason];
    else [this.#lrHead, this.#lrHeadReason] = [head, reason];
  }

  /**
   * Runs the native head and ONNX Runtime's decoder on one small seeded random feature; returns
   * why they disagree, or null. No silent wrong answers: a head that does not reproduce the
   * graph is not used.
   */
  private async compareHead(head: PointwiseHead, session: ort.InferenceSession): Promise<string | null> {
    const [c, h, w] = [head.channels, 5, 7];
    const feature = new Float32Array(c * h * w);
    let x = 0x9e3779b9;
    for (let i = 0; i < feature.length; i++) {
      x ^= x << 13;
      x >>>= 0;
      x ^= x >>> 17;
      x ^= x << 5;
      x >>>= 0;
      feature[i] = (x / 4294967296) * 4 - 2;
    }
    const out = await session.run({ [session.inputNames[0]]: new ort.Tensor('float32', feature, [1, c, h, w]) });
    const expected = out[session.outputNames[0]].data as Float32Array;
    const got = (await head.run({ data: feature, dims: [1, c, h, w] })).data;
    if (expected.length !== got.length)
      return `the native head gives ${got.length} logits, ONNX Runtime ${expected.length}`;
    let scale = 0;
    let diff = 0;
    for (let i = 0; i < expected.length; i++) {
      scale = Math.max(scale, Math.abs(expected[i]));
      diff = Math.max(diff, Math.abs(expected[i] - got[i]));
    }
    if (!(diff <= HEAD_TOLERANCE * scale))
      return `the native head disagrees with ONNX Runtime by ${diff.toExponential(2)} (logits up to ${scale.toExponential(2)})`;
    return null;
  }

  /** Runs each graph once on a small input and checks that the shapes agree with the manifest. */
  private async dryRun(): Promise<void> {
    const m = this.manifest;
    const size = 8 * (m.input.sizeMultiple ?? 8);
    const channels = m.feature.channels;
    for (const field of ['hrEncoder', 'lrEncoder'] as const) {
      const session = this[field];
      let dims: readonly number[];
      let values: Float32Array;
      try {
        const out = await session.run({
          [session.inputNames[0]]: new ort.Tensor('float32', seededInput(3 * size * size), [1, 3, size, size]),
        });
        dims = out[session.outputNames[0]].dims;
        values = out[session.outputNames[0]].data as Float32Array;
      } catch (err) {
        throw bundleError(
          this.dir,
          m.networks[field],
          `does not run on a 1x3x${size}x${size} image: ${(err as Error).message}`,
          err,
        );
      }
      checkFinite(this.dir, m.networks[field], values);
      if (dims.length !== 4 || dims[1] !== channels)
        throw bundleError(this.dir, m.networks[field], `outputs [${dims}] but feature.channels is ${channels}`);
      const expected = size / m.feature.stride;
      if (dims[2] !== expected || dims[3] !== expected)
        throw bundleError(
          this.dir,
          m.networks[field],
          `outputs ${dims[2]}x${dims[3]} for a ${size}x${size} image, feature.stride ${m.feature.stride} says ${expected}x${expected}`,
        );
      if (this.pipeline.lrInput === 'hr-tensor-align-corners') {
        // The official inputs are the frame's own size and floor(size x scale): no multiple.
        const [h, w] = [size + 3, size + 5];
        try {
          await session.run({
            [session.inputNames[0]]: new ort.Tensor('float32', new Float32Array(3 * h * w), [1, 3, h, w]),
          });
        } catch (err) {
          throw bundleError(
            this.dir,
            m.networks[field],
            `does not run on a 1x3x${h}x${w} image, and input.lrInput 'hr-tensor-align-corners' gives it any size: ${(err as Error).message}`,
            err,
          );
        }
      }
    }
    for (const [rel, session] of [
      [m.networks.decoder, this.decoder],
      ...(this.lrDecoder ? [[m.networks.lrDecoder!, this.lrDecoder] as const] : []),
    ] as const) {
      let logits: readonly number[];
      try {
        const out = await session.run({
          [session.inputNames[0]]: new ort.Tensor('float32', seededInput(channels * 16), [1, channels, 4, 4]),
        });
        logits = out[session.outputNames[0]].dims;
        checkFinite(this.dir, rel, out[session.outputNames[0]].data as Float32Array);
      } catch (err) {
        if (err instanceof ArSegError) throw err;
        throw bundleError(
          this.dir,
          rel,
          `does not take a feature of ${channels} channels: ${(err as Error).message}`,
          err,
        );
      }
      if (logits.length !== 4 || logits[1] !== m.classes.length)
        throw bundleError(this.dir, rel, `outputs ${logits[1]} classes, the manifest lists ${m.classes.length}`);
      if (logits[2] !== 4 || logits[3] !== 4)
        throw bundleError(this.dir, rel, `must keep the feature's spatial size (4x4 gave ${logits[2]}x${logits[3]})`);
    }
  }

  /** Releases the ONNX Runtime sessions. */
  async close(): Promise<void> {
    await Promise.all([
      this.hrEncoder.release(),
      this.lrEncoder.release(),
      this.decoder.release(),
      this.lrDecoder?.release(),
    ]);
  }
}

/** Values in [-2, 2) from a fixed seed: a dry-run input that reaches every weight (zeros may not). */
function seededInput(n: number): Float32Array {
  const out = new Float32Array(n);
  let x = 0x2545f491;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = (x / 4294967296) * 4 - 2;
  }
  return out;
}

/** ERR_BUNDLE when a dry run gave a NaN or an infinity (a sign of non-finite weights the file scan could not see). */
function checkFinite(dir: string, rel: string, values: Float32Array): void {
  const i = values.findIndex((v) => !Number.isFinite(v));
  if (i >= 0)
    throw bundleError(dir, rel, `gives ${values[i]} on a dry run (output value ${i}): its weights are not finite`);
}

/**
 * A resolver of bundle-relative paths that refuses any outside the bundle: by name (../x,
 * /abs) and through symbolic links (a link inside the bundle to a file elsewhere). A missing
 * file resolves, for its reader to report.
 */
async function insideBundle(root: string): Promise<(rel: string, field: string) => Promise<string>> {
  let realRoot: string;
  try {
    realRoot = await fs.realpath(root);
  } catch (err) {
    throw bundleError(root, MANIFEST, 'missing: not a model bundle', err);
  }
  const inside = (base: string, p: string) => p.startsWith(base + path.sep);
  return async (rel, field) => {
    const full = path.resolve(root, rel);
    if (!inside(root, full)) throw bundleError(root, MANIFEST, `${field} points outside the bundle: ${rel}`);
    let real: string;
    try {
      real = await fs.realpath(full);
    } catch {
      return full;
    }
    if (!inside(realRoot, real))
      throw bundleError(root, rel, `${field} is a symbolic link to ${real}, outside the bundle: refused`);
    return full;
  };
}

async function readManifest(root: string): Promise<BundleManifest> {
  let text: string;
  try {
    text = await fs.readFile(path.join(root, MANIFEST), 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw bundleError(root, MANIFEST, 'missing: not a model bundle', err);
    throw bundleError(root, MANIFEST, (err as Error).message, err);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw bundleError(root, MANIFEST, `not valid JSON: ${(err as Error).message}`, err);
  }
  validateManifest ??= new Ajv({ allErrors: true }).compile(bundleSchema);
  if (!validateManifest(json)) {
    const problems = (validateManifest.errors ?? [])
      .map((e) => `${e.instancePath || '(root)'} ${e.message}`)
      .join('; ');
    throw bundleError(root, MANIFEST, `invalid manifest: ${problems}`);
  }
  const manifest = json as BundleManifest;
  if (manifest.creff.window % 2 === 0)
    throw bundleError(root, MANIFEST, `/creff/window must be odd, got ${manifest.creff.window}`);
  // A class the network outputs but evaluation ignores (CamVid's void), or 255: ignored label
  // pixels that are no class of the network (Cityscapes).
  if (manifest.ignoreIndex != null && manifest.ignoreIndex >= manifest.classes.length && manifest.ignoreIndex !== 255)
    throw bundleError(
      root,
      MANIFEST,
      `/ignoreIndex ${manifest.ignoreIndex} is neither one of the ${manifest.classes.length} classes nor 255`,
    );
  return manifest;
}

async function loadCReFF(
  root: string,
  m: BundleManifest,
  file: (rel: string, field: string) => Promise<string>,
): Promise<CReFF> {
  const c = m.feature.channels;
  const read = async (conv: 'q' | 'k' | 'v', part: 'weight' | 'bias') => {
    const rel = m.creff[conv][part];
    let buf: Buffer;
    try {
      buf = await fs.readFile(await file(rel, `creff.${conv}.${part}`));
    } catch (err) {
      if (err instanceof ArSegError) throw err;
      throw bundleError(root, rel, `missing (creff.${conv}.${part} in ${MANIFEST})`, err);
    }
    let arr;
    try {
      arr = decodeNpy(buf, rel);
    } catch (err) {
      throw bundleError(root, rel, (err as Error).message, err);
    }
    const expected = part === 'weight' ? [c, 1, 3, 3] : [c];
    if (!(arr.data instanceof Float32Array) || arr.shape.join() !== expected.join())
      throw bundleError(
        root,
        rel,
        `creff.${conv}.${part} must be float32 [${expected}] (feature.channels ${c}), got ${arr.data.constructor.name} [${arr.shape}]`,
      );
    const bad = arr.data.findIndex((v) => !Number.isFinite(v));
    if (bad >= 0)
      throw bundleError(
        root,
        rel,
        `creff.${conv}.${part} holds ${arr.data[bad]} at index ${bad}: a diverged or damaged export`,
      );
    return arr.data;
  };
  const weights: CReFFWeights = {
    channels: c,
    window: m.creff.window,
    q: { weight: await read('q', 'weight'), bias: await read('q', 'bias') },
    k: { weight: await read('k', 'weight'), bias: await read('k', 'bias') },
    v: { weight: await read('v', 'weight'), bias: await read('v', 'bias') },
  };
  return new CReFF(weights);
}

/** The load options, checked before anything is read (ERR_INVALID_ARG), with their defaults. */
function checkBundleOptions(options: BundleOptions): BundleOptions {
  options = optionsObject(options);
  return {
    ...options,
    device: oneOf<ExecutionDevice>('device', options.device, ['cpu', 'cuda', 'cuda-emulated'], 'cpu'),
    decoder: oneOf<DecoderChoice>('decoder', options.decoder, ['auto', 'onnx'], 'auto'),
    threads: options.threads === undefined ? undefined : integerIn('threads', options.threads, 1, Infinity),
  };
}

/** ONNX Runtime's session options for checked load options; ERR_CUDA_UNAVAILABLE for a missing CUDA. */
function executionOptions(options: BundleOptions): ort.InferenceSession.SessionOptions {
  const device = options.device ?? 'cpu';
  if (device === 'cuda') {
    // In the order `ar-seg doctor` checks them: the driver and GPU (through the kernels' own
    // diagnosis), then ONNX Runtime's CUDA provider, which onnxruntime-node downloads separately
    // (listSupportedBackends lists 'cuda' whether or not it is installed).
    const status = CReFF.cudaStatus();
    if (!status.available) throw new ArSegError(ErrorCodes.CUDA_UNAVAILABLE, `${status.reason}; to fix: ${status.fix}`);
    const provider = onnxRuntimeCudaProvider();
    if (!provider.installed)
      throw new ArSegError(
        ErrorCodes.CUDA_UNAVAILABLE,
        `ONNX Runtime's CUDA provider is not installed (no ${provider.file}); to fix: ONNXRUNTIME_NODE_INSTALL=cuda12 npm rebuild onnxruntime-node ` +
          '(see `ar-seg doctor --device cuda`)',
      );
  }
  return {
    executionProviders: device === 'cuda' ? ['cuda', 'cpu'] : ['cpu'],
    graphOptimizationLevel: 'all',
    ...(options.threads ? { intraOpNumThreads: options.threads } : {}),
  };
}
