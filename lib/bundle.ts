/**
 * Model bundles: a directory holding arseg.json (the manifest, schema in bundle-schema.ts), the
 * HR encoder, LR encoder and shared decoder as ONNX graphs, and CReFF's weights as .npy files.
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
import { ArSegError, ErrorCodes } from './errors';
import { integerIn, nonEmptyString, oneOf, optionsObject } from './options';
import { addon } from './native';
import { decodeNpy } from './npy';

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
  };
  /** The three ONNX graphs, relative to the bundle. */
  networks: {
    /** Image to feature, run at full resolution on keyframes. */
    hrEncoder: string;
    /** Image to feature, run on the downscaled frames. */
    lrEncoder: string;
    /** Feature to logits, shared by both branches. */
    decoder: string;
  };
  /** The encoders' output, the feature CReFF fuses. */
  feature: {
    /** Channels C. */
    channels: number;
    /** Input pixels per feature pixel: 1 (PSPNet18) or 8 (BiSeNet18, the Cityscapes PSPNet18). */
    stride: number;
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
  /**
   * How the decoder's logits are resized to the frame before the arg-max: 'align-corners'
   * (default; PSPNet18's decoder) or 'half-pixel' (align_corners=False; BiSeNet18's x8 head).
   */
  logitsUpsampling?: 'align-corners' | 'half-pixel';
  /** The LR branch's scale per side that the model was trained for (0.5 in the paper). */
  lrScale: number;
  /** The default keyframe interval L (12 in the paper). */
  keyframeInterval: number;
}

/** Where the networks run. */
export type ExecutionDevice = 'cpu' | 'cuda';

/**
 * Who runs the decoder: 'auto' (the native pointwise head when the decoder is one 1x1
 * convolution and the device is 'cpu', ONNX Runtime otherwise) or 'onnx' (always ONNX Runtime).
 */
export type DecoderChoice = 'auto' | 'onnx';

/** Options of `Bundle.load` and `ArSeg.load`; checked before the bundle is read (ERR_INVALID_ARG). */
export interface BundleOptions {
  /** Where the networks run: 'cpu' (default) or 'cuda' (ONNX Runtime's CUDA provider). */
  device?: ExecutionDevice;
  /** ONNX Runtime intra-op threads; default: all cores. */
  threads?: number;
  /**
   * 'auto' (default): when decoder.onnx is exactly one 1x1 convolution and the device is 'cpu',
   * run it natively (`Bundle.head`; the same logits within float rounding, several times
   * faster at frame size). 'onnx': always ONNX Runtime (`head` is then null).
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
  /** CReFF with the bundle's weights. */
  readonly creff: CReFF;
  /**
   * The decoder as a native pointwise head (checked against `decoder` at load), or null: the
   * decoder is not one 1x1 convolution, `decoder: 'onnx'` or device 'cuda' was asked for, or the
   * check failed. `headReason` says which.
   */
  get head(): PointwiseHead | null {
    return this.#head;
  }
  /** Why `head` is null (for debugging); null when there is a head. */
  get headReason(): string | null {
    return this.#headReason;
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

  private constructor(dir: string, manifest: BundleManifest, sessions: ort.InferenceSession[], creff: CReFF) {
    this.dir = dir;
    this.manifest = manifest;
    [this.hrEncoder, this.lrEncoder, this.decoder] = sessions;
    this.creff = creff;
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
    const manifest = await readManifest(root);
    const file = (rel: string, field: string) => {
      const full = path.resolve(root, rel);
      if (!full.startsWith(root + path.sep)) throw bundleError(root, MANIFEST, `${field} points outside the bundle: ${rel}`);
      return full;
    };
    const creff = await loadCReFF(root, manifest, file);
    const sessionOptions = executionOptions(options);
    const sessions: ort.InferenceSession[] = [];
    for (const field of ['hrEncoder', 'lrEncoder', 'decoder'] as const) {
      const rel = manifest.networks[field];
      const full = file(rel, `networks.${field}`);
      try {
        await fs.access(full);
      } catch {
        throw bundleError(root, rel, `missing (networks.${field} in ${MANIFEST})`);
      }
      try {
        sessions.push(await ort.InferenceSession.create(full, sessionOptions));
      } catch (err) {
        throw bundleError(root, rel, `ONNX Runtime cannot load it (networks.${field}): ${(err as Error).message}`, err);
      }
    }
    const bundle = new Bundle(root, manifest, sessions, creff);
    bundle.#sessionOptions = sessionOptions;
    await bundle.dryRun();
    await bundle.attachHead(file(manifest.networks.decoder, 'networks.decoder'), options);
    return bundle;
  }

  /** Takes the decoder's weights for the native head when it is one, and checks it. */
  private async attachHead(decoderFile: string, options: BundleOptions): Promise<void> {
    const m = this.manifest;
    const found = await (async (): Promise<PointwiseHead | string> => {
      if ((options.decoder ?? 'auto') === 'onnx') return "decoder: 'onnx' was asked for";
      if ((options.device ?? 'cpu') !== 'cpu') return `device '${options.device}': ONNX Runtime runs the decoder there`;
      if (typeof addon().pointwiseHead !== 'function') return 'the native addon has no pointwise head (a build older than this package)';
      let detection;
      try {
        detection = await readPointwiseHead(decoderFile);
      } catch (err) {
        throw bundleError(this.dir, m.networks.decoder, (err as Error).message, err);
      }
      const { head, reason } = detection;
      if (!head) return `${m.networks.decoder} is not a pointwise head: ${reason}`;
      if (head.channels !== m.feature.channels || head.classes !== m.classes.length)
        return `${m.networks.decoder} is a ${head.channels} -> ${head.classes} convolution, the manifest says ${m.feature.channels} -> ${m.classes.length}`;
      const native = new PointwiseHead(head);
      let mismatch: string | null;
      try {
        mismatch = await this.compareHead(native);
      } catch (err) {
        mismatch = `the native head failed its check: ${(err as Error).message}`;
      }
      return mismatch ?? native;
    })();
    if (typeof found === 'string') this.#headReason = found;
    else this.#head = found;
  }

  /**
   * Runs the native head and ONNX Runtime's decoder on one small seeded random feature; returns
   * why they disagree, or null. No silent wrong answers: a head that does not reproduce the
   * graph is not used.
   */
  private async compareHead(head: PointwiseHead): Promise<string | null> {
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
    const out = await this.decoder.run({ [this.decoder.inputNames[0]]: new ort.Tensor('float32', feature, [1, c, h, w]) });
    const expected = out[this.decoder.outputNames[0]].data as Float32Array;
    const got = (await head.run({ data: feature, dims: [1, c, h, w] })).data;
    if (expected.length !== got.length) return `the native head gives ${got.length} logits, ONNX Runtime ${expected.length}`;
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
      try {
        const out = await session.run({ [session.inputNames[0]]: new ort.Tensor('float32', new Float32Array(3 * size * size), [1, 3, size, size]) });
        dims = out[session.outputNames[0]].dims;
      } catch (err) {
        throw bundleError(this.dir, m.networks[field], `does not run on a 1x3x${size}x${size} image: ${(err as Error).message}`, err);
      }
      if (dims.length !== 4 || dims[1] !== channels)
        throw bundleError(this.dir, m.networks[field], `outputs [${dims}] but feature.channels is ${channels}`);
      const expected = size / m.feature.stride;
      if (dims[2] !== expected || dims[3] !== expected)
        throw bundleError(this.dir, m.networks[field], `outputs ${dims[2]}x${dims[3]} for a ${size}x${size} image, feature.stride ${m.feature.stride} says ${expected}x${expected}`);
    }
    let logits: readonly number[];
    try {
      const out = await this.decoder.run({ [this.decoder.inputNames[0]]: new ort.Tensor('float32', new Float32Array(channels * 16), [1, channels, 4, 4]) });
      logits = out[this.decoder.outputNames[0]].dims;
    } catch (err) {
      throw bundleError(this.dir, m.networks.decoder, `does not take a feature of ${channels} channels: ${(err as Error).message}`, err);
    }
    if (logits.length !== 4 || logits[1] !== m.classes.length)
      throw bundleError(this.dir, m.networks.decoder, `outputs ${logits[1]} classes, the manifest lists ${m.classes.length}`);
    if (logits[2] !== 4 || logits[3] !== 4)
      throw bundleError(this.dir, m.networks.decoder, `must keep the feature's spatial size (4x4 gave ${logits[2]}x${logits[3]})`);
  }

  /** Releases the ONNX Runtime sessions. */
  async close(): Promise<void> {
    await Promise.all([this.hrEncoder.release(), this.lrEncoder.release(), this.decoder.release()]);
  }
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
    const problems = (validateManifest.errors ?? []).map((e) => `${e.instancePath || '(root)'} ${e.message}`).join('; ');
    throw bundleError(root, MANIFEST, `invalid manifest: ${problems}`);
  }
  const manifest = json as BundleManifest;
  if (manifest.creff.window % 2 === 0) throw bundleError(root, MANIFEST, `/creff/window must be odd, got ${manifest.creff.window}`);
  // A class the network outputs but evaluation ignores (CamVid's void), or 255: ignored label
  // pixels that are no class of the network (Cityscapes).
  if (manifest.ignoreIndex != null && manifest.ignoreIndex >= manifest.classes.length && manifest.ignoreIndex !== 255)
    throw bundleError(root, MANIFEST, `/ignoreIndex ${manifest.ignoreIndex} is neither one of the ${manifest.classes.length} classes nor 255`);
  return manifest;
}

async function loadCReFF(root: string, m: BundleManifest, file: (rel: string, field: string) => string): Promise<CReFF> {
  const c = m.feature.channels;
  const read = async (conv: 'q' | 'k' | 'v', part: 'weight' | 'bias') => {
    const rel = m.creff[conv][part];
    let buf: Buffer;
    try {
      buf = await fs.readFile(file(rel, `creff.${conv}.${part}`));
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
      throw bundleError(root, rel, `creff.${conv}.${part} must be float32 [${expected}] (feature.channels ${c}), got ${arr.data.constructor.name} [${arr.shape}]`);
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
    device: oneOf<ExecutionDevice>('device', options.device, ['cpu', 'cuda'], 'cpu'),
    decoder: oneOf<DecoderChoice>('decoder', options.decoder, ['auto', 'onnx'], 'auto'),
    threads: options.threads === undefined ? undefined : integerIn('threads', options.threads, 1, Infinity),
  };
}

/** ONNX Runtime's session options for checked load options; ERR_CUDA_UNAVAILABLE for a missing CUDA. */
function executionOptions(options: BundleOptions): ort.InferenceSession.SessionOptions {
  const device = options.device ?? 'cpu';
  if (device === 'cuda') {
    const backends = ort.listSupportedBackends().map((b) => b.name);
    if (!backends.includes('cuda'))
      throw new ArSegError(
        ErrorCodes.CUDA_UNAVAILABLE,
        `ONNX Runtime's CUDA provider is not installed (onnxruntime-node offers: ${backends.join(', ')}); ` +
          'install it with `npm rebuild onnxruntime-node --onnxruntime-node-install=cuda12` on a machine with CUDA',
      );
    const status = CReFF.cudaStatus();
    if (!status.available) throw new ArSegError(ErrorCodes.CUDA_UNAVAILABLE, status.reason);
  }
  return {
    executionProviders: device === 'cuda' ? ['cuda', 'cpu'] : ['cpu'],
    graphOptimizationLevel: 'all',
    ...(options.threads ? { intraOpNumThreads: options.threads } : {}),
  };
}
