/**
 * The decoder as a native pointwise head. AR-Seg's decoder is one 1x1 convolution, feature ->
 * classes (docs/method.md, "Networks"); run through ONNX Runtime it costs several times the
 * convolution itself (ONNX Runtime reorders the feature to a blocked layout and back, and
 * onnxruntime-node copies the logits out). So the bundle's decoder.onnx is read here, and when
 * its graph is exactly that convolution its weights are taken out and the convolution runs
 * natively (native/postprocess/pointwise_head.cc), reading the feature where it lies.
 *
 * Recognition is strict: one Conv node (default domain), kernel 1x1, strides 1, pads 0,
 * dilations 1, group 1, no other attribute (auto_pad aside, which is moot for a 1x1 kernel at
 * stride 1), float32 weights [classes, channels, 1, 1] and optional bias [classes] stored in the
 * file as initializers, the feature as the one graph input and the logits as the one output.
 * Anything else, a file that is not ONNX at all included, gives `head: null` with the reason:
 * ONNX Runtime then runs the decoder, as it always could (a corrupt decoder.onnx is reported by
 * ONNX Runtime's own load, as ERR_BUNDLE). Only failing to read the file throws: ERR_NOT_FOUND
 * or ERR_OPEN. Bundle.load also checks the native head against ONNX Runtime before using it.
 *
 * The ONNX schema below is the subset this needs, written from onnx.proto (field numbers as
 * there; protobuf skips every field a schema does not name, so the subset reads any model).
 */
import { promises as fs } from 'node:fs';
import * as protobuf from 'protobufjs';
import type { FeatureTensor } from './creff';
import { ArSegError, ErrorCodes, invalidArg, toArSegError } from './errors';
import { integerIn, optionsObject } from './options';
import { addon } from './native';

const ONNX_SUBSET = `
syntax = "proto2";
package onnx;

message ModelProto {
  optional int64 ir_version = 1;
  optional GraphProto graph = 7;
  repeated OperatorSetIdProto opset_import = 8;
}

message OperatorSetIdProto {
  optional string domain = 1;
  optional int64 version = 2;
}

message GraphProto {
  repeated NodeProto node = 1;
  optional string name = 2;
  repeated TensorProto initializer = 5;
  repeated ValueInfoProto input = 11;
  repeated ValueInfoProto output = 12;
}

message NodeProto {
  repeated string input = 1;
  repeated string output = 2;
  optional string name = 3;
  optional string op_type = 4;
  repeated AttributeProto attribute = 5;
  optional string domain = 7;
}

message AttributeProto {
  optional string name = 1;
  optional float f = 2;
  optional int64 i = 3;
  optional bytes s = 4;
  optional TensorProto t = 5;
  repeated float floats = 7;
  repeated int64 ints = 8;
  optional int32 type = 20; // AttributeType: FLOAT 1, INT 2, STRING 3, TENSOR 4, FLOATS 6, INTS 7
}

message TensorProto {
  repeated int64 dims = 1;
  optional int32 data_type = 2; // DataType: FLOAT 1
  repeated float float_data = 4 [packed = true];
  optional string name = 8;
  optional bytes raw_data = 9;
  repeated double double_data = 10 [packed = true];
  optional int32 data_location = 14; // DEFAULT 0, EXTERNAL 1
}

message ValueInfoProto {
  optional string name = 1;
  optional TypeProto type = 2;
}

message TypeProto {
  message Tensor {
    optional int32 elem_type = 1;
    optional TensorShapeProto shape = 2;
  }
  optional Tensor tensor_type = 1;
}

message TensorShapeProto {
  message Dimension {
    optional int64 dim_value = 1;
    optional string dim_param = 2;
  }
  repeated Dimension dim = 1;
}
`;

const FLOAT = 1; // TensorProto.DataType
const EXTERNAL = 1; // TensorProto.DataLocation
const ATTRIBUTE_TYPE = { INT: 2, STRING: 3, INTS: 7 } as const;

let root: protobuf.Root | undefined;

/** @internal The ONNX message types of the subset above (also used by the tests to write models). */
export function onnxTypes(): { ModelProto: protobuf.Type } {
  root ??= protobuf.parse(ONNX_SUBSET, { keepCase: true }).root;
  return { ModelProto: root.lookupType('onnx.ModelProto') };
}

/** The weights of a 1x1 convolution: weight[k * channels + c], bias[k]. */
export interface PointwiseWeights {
  /** Input channels C. */
  channels: number;
  /** Output channels: the classes. */
  classes: number;
  /** classes x channels */
  weight: Float32Array;
  /** classes (zeros when the graph has no bias) */
  bias: Float32Array;
}

/** What reading a decoder found: its weights, or null and why not. */
export type HeadDetection =
  | {
      /** The decoder's weights. */
      head: PointwiseWeights;
      /** Absent: a head was found. */
      reason?: undefined;
    }
  | {
      /** Not a single 1x1 convolution. */
      head: null;
      /** What the graph holds instead. */
      reason: string;
    };

// The decoded messages, as toObject gives them (int64 as numbers, repeated fields as arrays).
interface Tensor {
  dims: number[];
  data_type?: number;
  float_data: number[];
  name?: string;
  raw_data?: Uint8Array;
  data_location?: number;
}
interface Attribute {
  name?: string;
  i?: number;
  s?: Uint8Array;
  ints: number[];
  type?: number;
}
interface Node {
  input: string[];
  output: string[];
  op_type?: string;
  domain?: string;
  attribute: Attribute[];
}
interface ValueInfo {
  name?: string;
  type?: { tensor_type?: { elem_type?: number; shape?: { dim: { dim_value?: number; dim_param?: string }[] } } };
}
interface Graph {
  node: Node[];
  initializer: Tensor[];
  input: ValueInfo[];
  output: ValueInfo[];
}

class NotPointwise extends Error {}

function refuse(reason: string): never {
  throw new NotPointwise(reason);
}

/** The float32 values of an initializer: raw_data (little-endian) or float_data. */
function floats(t: Tensor, count: number): Float32Array {
  if (t.data_type !== FLOAT) refuse(`initializer '${t.name}' is not float32 (data_type ${t.data_type})`);
  if (t.data_location === EXTERNAL) refuse(`initializer '${t.name}' is stored outside the file (external data)`);
  const raw = t.raw_data;
  if (raw && raw.length > 0) {
    if (raw.length !== 4 * count)
      refuse(`initializer '${t.name}' holds ${raw.length} bytes, its dims need ${4 * count}`);
    const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    const out = new Float32Array(count);
    for (let i = 0; i < count; i++) out[i] = view.getFloat32(4 * i, true);
    return out;
  }
  if (t.float_data.length !== count)
    refuse(`initializer '${t.name}' holds ${t.float_data.length} values, its dims need ${count}`);
  return Float32Array.from(t.float_data);
}

function intsAttribute(a: Attribute, expected: number[]): void {
  if (a.type !== undefined && a.type !== ATTRIBUTE_TYPE.INTS) refuse(`attribute ${a.name} is not a list of integers`);
  const at = a.ints.length === 0 ? expected : a.ints; // an empty list: the default
  if (a.name === 'kernel_shape' && at.length !== 2) refuse(`kernel_shape [${at}] is not 2-D`);
  if (!at.every((v) => v === expected[0])) refuse(`${a.name} [${at}], not all ${expected[0]}`);
}

function checkAttributes(node: Node): void {
  for (const a of node.attribute) {
    switch (a.name) {
      case 'kernel_shape':
      case 'strides':
      case 'dilations':
        intsAttribute(a, [1, 1]);
        break;
      case 'pads':
        intsAttribute(a, [0, 0, 0, 0]);
        break;
      case 'group':
        if ((a.type !== undefined && a.type !== ATTRIBUTE_TYPE.INT) || (a.i ?? 1) !== 1) refuse(`group ${a.i}, not 1`);
        break;
      case 'auto_pad': {
        const mode = Buffer.from(a.s ?? new Uint8Array()).toString('utf8') || 'NOTSET';
        if (
          (a.type !== undefined && a.type !== ATTRIBUTE_TYPE.STRING) ||
          !['NOTSET', 'VALID', 'SAME_UPPER', 'SAME_LOWER'].includes(mode)
        )
          refuse(`auto_pad '${mode}'`);
        break;
      }
      default:
        refuse(`the Conv has an attribute '${a.name}' this reader does not know`);
    }
  }
}

function extract(graph: Graph): PointwiseWeights {
  if (graph.node.length !== 1) refuse(`the graph has ${graph.node.length} nodes, not one Conv`);
  const node = graph.node[0];
  if (node.op_type !== 'Conv' || (node.domain && node.domain !== 'ai.onnx'))
    refuse(`the graph's node is ${node.domain ? node.domain + '.' : ''}${node.op_type}, not Conv`);
  checkAttributes(node);
  const [x, w, b = ''] = node.input;
  if (node.input.length < 2 || node.input.length > 3 || !x || !w) refuse(`the Conv has inputs [${node.input}]`);
  if (node.output.length !== 1) refuse(`the Conv has ${node.output.length} outputs`);
  const initializers = new Map(graph.initializer.map((t) => [t.name ?? '', t]));
  if (initializers.has(x)) refuse(`the Conv's input '${x}' is a constant`);
  const weight = initializers.get(w) ?? refuse(`the Conv's weight '${w}' is not an initializer`);
  const bias = b === '' ? null : (initializers.get(b) ?? refuse(`the Conv's bias '${b}' is not an initializer`));
  // Graph inputs may list initializers too (IR < 4); the others must be just the feature.
  const inputs = graph.input.filter((v) => !initializers.has(v.name ?? ''));
  if (inputs.length !== 1 || inputs[0].name !== x)
    refuse(`the graph's inputs [${inputs.map((v) => v.name)}] are not just the Conv's input '${x}'`);
  if (graph.output.length !== 1 || graph.output[0].name !== node.output[0])
    refuse(
      `the graph's outputs [${graph.output.map((v) => v.name)}] are not just the Conv's output '${node.output[0]}'`,
    );
  const wd = weight.dims;
  if (wd.length !== 4 || wd[2] !== 1 || wd[3] !== 1 || !(wd[0] >= 1) || !(wd[1] >= 1))
    refuse(`the weight's dims [${wd}] are not [classes, channels, 1, 1]`);
  const [classes, channels] = wd;
  const type = inputs[0].type?.tensor_type;
  if (type?.elem_type !== undefined && type.elem_type !== FLOAT)
    refuse(`the input '${x}' is not float32 (elem_type ${type.elem_type})`);
  const dim = type?.shape?.dim;
  if (dim && (dim.length !== 4 || (dim[1].dim_value !== undefined && dim[1].dim_value !== channels)))
    refuse(`the input '${x}' is not [N, ${channels}, H, W]`);
  if (bias && (bias.dims.length !== 1 || bias.dims[0] !== classes))
    refuse(`the bias's dims [${bias.dims}] are not [${classes}]`);
  return {
    channels,
    classes,
    weight: floats(weight, classes * channels),
    bias: bias ? floats(bias, classes) : new Float32Array(classes),
  };
}

/** The pointwise head an ONNX model holds, from its bytes; never throws. */
export function pointwiseHeadFromOnnx(bytes: Uint8Array): HeadDetection {
  let graph: Graph | undefined;
  try {
    const { ModelProto } = onnxTypes();
    const model = ModelProto.toObject(ModelProto.decode(bytes), { longs: Number, arrays: true }) as { graph?: Graph };
    graph = model.graph;
  } catch (err) {
    return { head: null, reason: `not an ONNX model: ${(err as Error).message}` };
  }
  if (!graph) return { head: null, reason: 'the model has no graph' };
  try {
    return { head: extract(graph) };
  } catch (err) {
    if (err instanceof NotPointwise) return { head: null, reason: err.message };
    return { head: null, reason: `unreadable graph: ${(err as Error).message}` };
  }
}

/**
 * Reads an ONNX file and returns the pointwise head it holds, or null and the reason. Throws
 * (ERR_NOT_FOUND, ERR_OPEN) only when the file cannot be read.
 */
export async function readPointwiseHead(file: string): Promise<HeadDetection> {
  let bytes: Buffer;
  try {
    bytes = await fs.readFile(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code === 'ENOENT' ? ErrorCodes.NOT_FOUND : ErrorCodes.OPEN;
    throw new ArSegError(code, `${file}: ${(err as Error).message}`, { cause: err });
  }
  return pointwiseHeadFromOnnx(bytes);
}

/** Logits, classes x height x width. */
export interface Logits {
  /** classes x height x width values. */
  data: Float32Array;
  /** [1, classes, height, width] */
  dims: [1, number, number, number];
}

/** A 1x1 convolution run natively on several threads. */
export class PointwiseHead {
  /** Input channels C. */
  readonly channels: number;
  /** Output channels: the classes. */
  readonly classes: number;
  /** classes x channels weights. */
  readonly weight: Float32Array;
  /** classes biases. */
  readonly bias: Float32Array;

  constructor(weights: PointwiseWeights) {
    const { weight, bias } = optionsObject(weights, 'the head weights');
    const channels = integerIn('channels', weights.channels, 1, Infinity);
    const classes = integerIn('classes', weights.classes, 1, Infinity);
    if (!(weight instanceof Float32Array) || !(bias instanceof Float32Array))
      throw invalidArg('weight and bias must be Float32Arrays');
    if (weight.length !== classes * channels || bias.length !== classes)
      throw new ArSegError(
        ErrorCodes.SHAPE,
        `weight must hold classes x channels = ${classes * channels} values and bias ${classes}, got ${weight.length} and ${bias.length}`,
      );
    this.channels = channels;
    this.classes = classes;
    this.weight = weight;
    this.bias = bias;
  }

  /**
   * The logits of a feature ([1, C, H, W] or [C, H, W]). options.output, a Float32Array of
   * classes x H x W, is written and returned instead of a new array (reuse it from frame to
   * frame when the logits are not kept). The arrays are read in place on a worker thread: leave
   * them alone until the promise settles.
   */
  async run(feature: FeatureTensor, options: { output?: Float32Array; threads?: number } = {}): Promise<Logits> {
    if (!feature || typeof feature !== 'object' || !(feature.data instanceof Float32Array))
      throw invalidArg('feature must be { data: Float32Array, dims }');
    const dims = Array.from(feature.dims ?? []);
    if (dims.length === 4 && dims[0] === 1) dims.shift();
    if (dims.length !== 3 || dims[0] !== this.channels)
      throw new ArSegError(
        ErrorCodes.SHAPE,
        `feature.dims must be [1, ${this.channels}, H, W], got [${Array.from(feature.dims ?? [])}]`,
      );
    const [, h, w] = dims;
    try {
      const data = await addon().pointwiseHead(
        feature.data,
        this.channels,
        h,
        w,
        this.weight,
        this.bias,
        this.classes,
        options,
      );
      return { data, dims: [1, this.classes, h, w] };
    } catch (err) {
      throw toArSegError(err);
    }
  }
}
