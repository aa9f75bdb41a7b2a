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
import { addon } from './native';
import { decodeNpy } from './npy';

export interface BundleClass {
  name: string;
  color: [number, number, number];
}

export interface BundleManifest {
  format: 'ar-seg-bundle';
  formatVersion: 1;
  name: string;
  description?: string;
  classes: BundleClass[];
  /** Label value that evaluation ignores: a class index (CamVid's void) or 255 (no class, Cityscapes). */
  ignoreIndex?: number | null;
  input: { mean: [number, number, number]; std: [number, number, number]; channelOrder: 'rgb' | 'bgr'; sizeMultiple?: number };
  networks: { hrEncoder: string; lrEncoder: string; decoder: string };
  feature: { channels: number; stride: number };
  creff: {
    window: number;
    sampling?: 'exact' | 'official';
    q: { weight: string; bias: string };
    k: { weight: string; bias: string };
    v: { weight: string; bias: string };
  };
  /**
   * How the decoder's logits are resized to the frame before the arg-max: 'align-corners'
   * (default; PSPNet18's decoder) or 'half-pixel' (align_corners=False; BiSeNet18's x8 head).
   */
  logitsUpsampling?: 'align-corners' | 'half-pixel';
  lrScale: number;
  keyframeInterval: number;
}

export type ExecutionDevice = 'cpu' | 'cuda';

/**
 * Who runs the decoder: 'auto' (the native pointwise head when the decoder is one 1x1
 * convolution and the device is 'cpu', ONNX Runtime otherwise) or 'onnx' (always ONNX Runtime).
 */
export type DecoderChoice = 'auto' | 'onnx';

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

export class Bundle {
  readonly dir: string;
  readonly manifest: BundleManifest;
  readonly hrEncoder: ort.InferenceSession;
  readonly lrEncoder: ort.InferenceSession;
  readonly decoder: ort.InferenceSession;
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

  get classes(): BundleClass[] {
    return this.manifest.classes;
  }

  static async load(dir: string, options: BundleOptions = {}): Promise<Bundle> {
    if (typeof dir !== 'string' || dir.length === 0) throw new ArSegError(ErrorCodes.INVALID_ARG, 'the bundle directory must be a path');
    const root = path.resolve(dir);
    const manifest = await readManifest(root);
    const file = (rel: string, field: string) => {
      const full = path.resolve(root, rel);
      if (!full.startsWith(root + path.sep)) throw bundleError(root, MANIFEST, `${field} points outside the bundle: ${rel}`);
      return full;
    };
    const creff = await loadCReFF(root, manifest, file);
    const sessionOptions = await executionOptions(options);
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

async function executionOptions(options: BundleOptions): Promise<ort.InferenceSession.SessionOptions> {
  const device = options.device ?? 'cpu';
  if (device !== 'cpu' && device !== 'cuda') throw new ArSegError(ErrorCodes.INVALID_ARG, "device must be 'cpu' or 'cuda'");
  if (options.decoder !== undefined && options.decoder !== 'auto' && options.decoder !== 'onnx')
    throw new ArSegError(ErrorCodes.INVALID_ARG, "decoder must be 'auto' or 'onnx'");
  if (options.threads !== undefined && (!Number.isInteger(options.threads) || options.threads < 1))
    throw new ArSegError(ErrorCodes.INVALID_ARG, 'threads must be a positive integer');
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
