/**
 * Writes NumPy .npy files (format 1.0), the layout mv-extractor users and the python/ training
 * code read with numpy.load. Only what we emit: little-endian int32 and float32, C order.
 */
import { writeFileAtomic } from './atomic-write';

const DTYPES = new Map<unknown, string>([
  [Int32Array, '<i4'],
  [Float32Array, '<f4'],
  [Uint8Array, '|u1'],
]);

/** The typed arrays .npy files can be written from. */
export type NpyArray = Int32Array | Float32Array | Uint8Array;

/** The .npy header and a view of the data (no copy of the values). */
function npyParts(data: NpyArray, shape: number[]): [Buffer, Buffer] {
  const descr = DTYPES.get(data.constructor);
  if (!descr) throw new TypeError('encodeNpy supports Int32Array, Float32Array and Uint8Array');
  const count = shape.reduce((a, b) => a * b, 1);
  if (count !== data.length)
    throw new RangeError(`shape ${JSON.stringify(shape)} does not match ${data.length} values`);
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shapeText}, }`;
  // magic (6) + version (2) + header length (2) + header, padded so data starts 64-aligned.
  const total = Math.ceil((10 + header.length + 1) / 64) * 64;
  header = header.padEnd(total - 10 - 1, ' ') + '\n';
  const prefix = Buffer.alloc(10);
  prefix.write('\x93NUMPY', 0, 'latin1');
  prefix[6] = 1;
  prefix[7] = 0;
  prefix.writeUInt16LE(header.length, 8);
  const body = Buffer.from(data.buffer, data.byteOffset, data.byteLength); // a view: host is little-endian x64
  return [Buffer.concat([prefix, Buffer.from(header, 'latin1')]), body];
}

/**
 * A .npy file's bytes (format 1.0) holding `data` with `shape` (C order); TypeError for another
 * array type, RangeError when the shape does not match the length.
 */
export function encodeNpy(data: NpyArray, shape: number[]): Buffer {
  return Buffer.concat(npyParts(data, shape));
}

/** Writes a .npy file atomically (a reader never sees part of it: see atomic-write.ts). */
export async function writeNpy(file: string, data: NpyArray, shape: number[]): Promise<void> {
  await writeFileAtomic(file, encodeNpy(data, shape));
}

export interface NpyArray32 {
  data: Float32Array | Int32Array | Uint8Array;
  shape: number[];
}

/** Reads a .npy file written by numpy.save: little-endian float32, int32 or uint8, C order. */
export function decodeNpy(buf: Buffer, name = 'array'): NpyArray32 {
  if (buf.length < 10 || buf.toString('latin1', 0, 6) !== '\x93NUMPY') throw new Error(`${name} is not a .npy file`);
  const major = buf[6];
  const headerLen = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const start = (major === 1 ? 10 : 12) + headerLen;
  const header = buf.toString('latin1', major === 1 ? 10 : 12, start);
  const descr = /'descr':\s*'([^']+)'/.exec(header)?.[1];
  const fortran = /'fortran_order':\s*True/.test(header);
  const shapeText = /'shape':\s*\(([^)]*)\)/.exec(header)?.[1];
  if (!descr || shapeText === undefined) throw new Error(`${name}: malformed .npy header`);
  if (fortran) throw new Error(`${name}: Fortran-ordered arrays are not supported`);
  const shape = shapeText
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map(Number);
  const Type = (
    { '<f4': Float32Array, '<i4': Int32Array, '|u1': Uint8Array } as Record<
      string,
      typeof Float32Array | typeof Int32Array | typeof Uint8Array
    >
  )[descr];
  if (!Type) throw new Error(`${name}: dtype ${descr} is not supported (float32, int32, uint8)`);
  const count = shape.reduce((a, b) => a * b, 1);
  if (buf.length - start !== count * Type.BYTES_PER_ELEMENT)
    throw new Error(`${name}: data size does not match shape (${shape})`);
  const copy = new Uint8Array(buf.subarray(start)); // aligned
  return { data: new Type(copy.buffer), shape };
}
