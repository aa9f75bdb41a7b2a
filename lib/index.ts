/**
 * ar-seg-native: AR-Seg (CVPR 2023) for Node.js.
 * This layer: compressed-video reading with motion vectors straight from libavcodec.
 */
export { openVideo, VideoReader } from './video';
export type { OpenOptions, VideoInfo, ReaderStats } from './video';
export { createDecoder, PacketDecoder } from './decoder';
export type { DecoderOptions } from './decoder';
export { VECTOR_COLUMNS } from './frame';
export type { FrameOptions, MotionField, MotionMode, PictType, Tensor, TensorSpec, VideoFrame } from './frame';
export { sampleMotion, resizeMotion } from './motion';
export { encodeNpy, writeNpy } from './npy';
export { ArSegError, ErrorCodes } from './errors';
export type { ErrorCode } from './errors';

import { addon } from './native';
/** Versions of the libav libraries the addon was built against. */
export function libavVersions(): Record<string, string | number> {
  return { ...addon().libav };
}
