/**
 * Every stored weight of an ONNX model must be a finite number. A NaN or an infinity in a weight
 * (a diverged training run, a damaged export) does not stop ONNX Runtime: it silently turns the
 * logits into NaN, and every pixel into class 0. Bundle.load refuses such a file, naming the
 * tensor. Checked: the graph's initializers and the tensors of its Constant nodes (and their
 * subgraphs' are not: AR-Seg's networks have none), in float32, float64, float16 and bfloat16,
 * stored in raw_data or in float_data/double_data. Weights stored outside the file (external
 * data) are ONNX Runtime's to read and are not checked here.
 */
import { onnxTypes } from './pointwise-head';

/** TensorProto.DataType values of floating-point tensors. */
const DATA_TYPE = { FLOAT: 1, FLOAT16: 10, DOUBLE: 11, BFLOAT16: 16 } as const;

interface StoredTensor {
  name?: string;
  data_type?: number;
  float_data?: number[];
  double_data?: number[];
  raw_data?: Uint8Array;
}

export interface NonFiniteWeight {
  /** The initializer's (or Constant node's) name. */
  tensor: string;
  /** Index of the first non-finite value, in storage order. */
  index: number;
  /** NaN, Infinity or -Infinity. */
  value: number;
}

/** The first non-finite value of a tensor, or null. */
function firstNonFinite(t: StoredTensor): { index: number; value: number } | null {
  const raw = t.raw_data && t.raw_data.length > 0 ? t.raw_data : null;
  const view = raw ? new DataView(raw.buffer, raw.byteOffset, raw.byteLength) : null;
  switch (t.data_type) {
    case DATA_TYPE.FLOAT: {
      if (raw) {
        // little-endian storage read in place on this little-endian host (copied when unaligned)
        const n = raw.length >> 2;
        let aligned = raw;
        if (raw.byteOffset % 4 !== 0) {
          aligned = new Uint8Array(4 * n);
          aligned.set(raw.subarray(0, 4 * n));
        }
        const values = new Float32Array(aligned.buffer, aligned.byteOffset, n);
        for (let i = 0; i < n; i++) {
          const v = values[i];
          if (v - v !== 0) return { index: i, value: v }; // NaN for NaN and the infinities
        }
        return null;
      }
      const i = (t.float_data ?? []).findIndex((v) => !Number.isFinite(v));
      return i < 0 ? null : { index: i, value: t.float_data![i] };
    }
    case DATA_TYPE.DOUBLE: {
      if (view) {
        for (let i = 0; i + 8 <= raw!.length; i += 8) {
          const v = view.getFloat64(i, true);
          if (!Number.isFinite(v)) return { index: i / 8, value: v };
        }
        return null;
      }
      const i = (t.double_data ?? []).findIndex((v) => !Number.isFinite(v));
      return i < 0 ? null : { index: i, value: t.double_data![i] };
    }
    case DATA_TYPE.FLOAT16:
    case DATA_TYPE.BFLOAT16: {
      // all exponent bits set: an infinity (mantissa 0) or a NaN. Without raw_data, ONNX keeps
      // 16-bit floats as their bits in int32_data, which this subset does not read.
      const exponent = t.data_type === DATA_TYPE.FLOAT16 ? 0x7c00 : 0x7f80;
      const mantissa = t.data_type === DATA_TYPE.FLOAT16 ? 0x03ff : 0x007f;
      if (!view) return null;
      for (let i = 0; i + 2 <= raw!.length; i += 2) {
        const bits = view.getUint16(i, true);
        if ((bits & exponent) === exponent) {
          const value = (bits & mantissa) !== 0 ? NaN : bits & 0x8000 ? -Infinity : Infinity;
          return { index: i / 2, value };
        }
      }
      return null;
    }
    default:
      return null;
  }
}

/**
 * The first non-finite stored weight of an ONNX model, or null when every one is finite.
 * Throws when the bytes are not an ONNX model (protobuf cannot decode them).
 */
export function nonFiniteWeight(bytes: Uint8Array): NonFiniteWeight | null {
  const { ModelProto } = onnxTypes();
  // decode() keeps raw_data as views of `bytes`: nothing is copied
  const model = ModelProto.decode(bytes) as unknown as {
    graph?: {
      initializer?: StoredTensor[];
      node?: { op_type?: string; name?: string; attribute?: { t?: StoredTensor }[] }[];
    };
  };
  const tensors: { name: string; tensor: StoredTensor }[] = [];
  for (const t of model.graph?.initializer ?? []) tensors.push({ name: t.name ?? '(unnamed initializer)', tensor: t });
  for (const node of model.graph?.node ?? []) {
    if (node.op_type !== 'Constant') continue;
    for (const a of node.attribute ?? [])
      if (a.t) tensors.push({ name: a.t.name || node.name || '(Constant)', tensor: a.t });
  }
  for (const { name, tensor } of tensors) {
    const bad = firstNonFinite(tensor);
    if (bad) return { tensor: name, ...bad };
  }
  return null;
}
