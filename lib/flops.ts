/**
 * Compute per frame, counted from the ONNX graphs: each graph runs once at the requested size
 * in ONNX Runtime with profiling on and graph optimisations off (so nodes stay as exported), and
 * the multiply-accumulates of every convolution and matrix product are counted from the input
 * and output shapes the profiler records. CReFF's count is analytic (three depthwise 3x3
 * convolutions and the two K x K contractions), as in docs/method.md. Counts are MACs; the paper's
 * "GFLOPs" are these GMACs.
 */
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import type { BundleManifest } from './bundle';
import { ArSegError, ErrorCodes } from './errors';
import { integerIn, numberIn } from './options';

interface ProfileEvent {
  cat: string;
  name: string;
  args?: {
    op_name?: string;
    input_type_shape?: Record<string, number[]>[];
    output_type_shape?: Record<string, number[]>[];
  };
}

const prod = (dims: number[]) => dims.reduce((a, b) => a * b, 1);
const shapeOf = (entry: Record<string, number[]> | undefined) => (entry ? Object.values(entry)[0] : []);

/** MACs of one profiled node, from its shapes; 0 for operators that are not counted. */
function nodeMacs(e: ProfileEvent): number {
  const a = e.args!;
  const inputs = (a.input_type_shape ?? []).map(shapeOf);
  const outputs = (a.output_type_shape ?? []).map(shapeOf);
  switch (a.op_name) {
    case 'Conv': // output N x Cout x H x W, weight Cout x Cin/groups x kh x kw
      return prod(outputs[0]) * prod(inputs[1].slice(1));
    case 'ConvTranspose': // input N x Cin x H x W, weight Cin x Cout/groups x kh x kw
      return prod(inputs[0]) * prod(inputs[1].slice(1));
    case 'MatMul':
    case 'Gemm': {
      const k = inputs[0][inputs[0].length - 1];
      return prod(outputs[0]) * k;
    }
    default:
      return 0;
  }
}

/** MACs of one graph run on an input of the given dims. */
export async function graphMacs(onnxFile: string, inputDims: number[]): Promise<number> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'arseg-flops-'));
  try {
    const session = await ort.InferenceSession.create(onnxFile, {
      enableProfiling: true,
      profileFilePrefix: path.join(dir, 'profile'),
      graphOptimizationLevel: 'disabled',
      executionProviders: ['cpu'],
    });
    try {
      await session.run({
        [session.inputNames[0]]: new ort.Tensor('float32', new Float32Array(prod(inputDims)), inputDims),
      });
      session.endProfiling();
    } finally {
      await session.release();
    }
    const file = (await fs.readdir(dir)).find((f) => f.endsWith('.json'));
    if (!file) throw new ArSegError(ErrorCodes.NATIVE, 'ONNX Runtime wrote no profile');
    const events = JSON.parse(await fs.readFile(path.join(dir, file), 'utf8')) as ProfileEvent[];
    return events
      .filter((e) => e.cat === 'Node' && e.name.endsWith('_kernel_time') && e.args?.op_name)
      .reduce((sum, e) => sum + nodeMacs(e), 0);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}

/** MACs of CReFF on a C x H x W feature with window K: three depthwise 3x3 convs + two contractions. */
export function creffMacs(channels: number, height: number, width: number, window: number): number {
  const px = height * width;
  return 3 * 9 * channels * px + 2 * channels * window * window * px;
}

export interface FlopsReport {
  model: string;
  width: number;
  height: number;
  lrWidth: number;
  lrHeight: number;
  interval: number;
  /** GMAC per frame of each part. */
  parts: { hrEncoder: number; lrEncoder: number; decoderHr: number; decoderLr: number; creff: number };
  /** GMAC per frame of each mode; 'ar' is the mean over a keyframe interval. */
  perFrame: { hr: number; lr: number; ar: number; arKeyframe: number; arOther: number };
  /** 1 - ar / hr */
  saving: number;
}

/** Counts compute per frame for a bundle at a frame size, LR scale and keyframe interval. */
export async function bundleFlops(
  dir: string,
  manifest: BundleManifest,
  options: { width: number; height: number; scale?: number; interval?: number },
): Promise<FlopsReport> {
  const width = integerIn('width', options.width, 1, Infinity);
  const height = integerIn('height', options.height, 1, Infinity);
  const scale = numberIn('scale', options.scale, 0, 1, manifest.lrScale, { lowOpen: true });
  const interval = integerIn('interval', options.interval, 1, Infinity, manifest.keyframeInterval);
  const multiple = manifest.input.sizeMultiple ?? 8;
  const fit = (n: number, s: number) => Math.max(multiple, Math.round((n * s) / multiple) * multiple);
  const [W, H, w, h] = [fit(width, 1), fit(height, 1), fit(width, scale), fit(height, scale)];
  const { stride, channels } = manifest.feature;
  const file = (rel: string) => path.resolve(dir, rel);
  const G = 1e9;
  const hrEncoder = (await graphMacs(file(manifest.networks.hrEncoder), [1, 3, H, W])) / G;
  const lrEncoder = (await graphMacs(file(manifest.networks.lrEncoder), [1, 3, h, w])) / G;
  const [fH, fW, fh, fw] = [H / stride, W / stride, h / stride, w / stride].map(Math.round);
  const decoderHr = (await graphMacs(file(manifest.networks.decoder), [1, channels, fH, fW])) / G;
  const decoderLr = (await graphMacs(file(manifest.networks.decoder), [1, channels, fh, fw])) / G;
  const creff = creffMacs(channels, fH, fW, manifest.creff.window) / G;
  const hr = hrEncoder + decoderHr;
  const arOther = lrEncoder + creff + decoderHr;
  const ar = (hr + (interval - 1) * arOther) / interval;
  return {
    model: manifest.name,
    width: W,
    height: H,
    lrWidth: w,
    lrHeight: h,
    interval,
    parts: { hrEncoder, lrEncoder, decoderHr, decoderLr, creff },
    perFrame: { hr, lr: lrEncoder + decoderLr, ar, arKeyframe: hr, arOther },
    saving: 1 - ar / hr,
  };
}
