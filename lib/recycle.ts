/**
 * Handing a frame's motion arrays back to the reader before the garbage collector would.
 *
 * A frame's `vectors`, `vectorRefs` and `motion.data` are typed arrays over native storage (no
 * copy). That storage goes back to the reader for later frames (native/common/recycled_storage.h)
 * when V8 collects the arrays, which it does rarely: the JavaScript objects are small, so the
 * young generation fills slowly. Until then every frame's arrays take fresh memory, and the
 * kernel faults its pages in: for a 720p video read once, about 70 page faults a frame, and up
 * to 6 points of decoding's CPU time (BENCHMARKS.md, "releaseMotion, with cost6 merged").
 * `releaseMotion` hands the storage back at once, so a loop over many frames decodes into the
 * same warm pages.
 */
import { addon } from './native';
import { ArSegError, ErrorCodes, invalidArg } from './errors';
import type { VideoFrame } from './frame';

// Buffers a native call is reading on a worker thread (CReFF.run): releasing them would hand
// memory that is being read to the decoder. Counted, since the same array may be in two calls.
const held = new WeakMap<ArrayBufferLike, number>();

/**
 * Marks arrays as read by a pending native call until the returned function is called.
 * `releaseMotion` refuses (ERR_BUSY) to release a frame whose arrays are held.
 */
export function holdArrays(arrays: ArrayBufferView[]): () => void {
  const buffers = arrays.map((a) => a.buffer);
  for (const b of buffers) held.set(b, (held.get(b) ?? 0) + 1);
  let done = false;
  return () => {
    if (done) return;
    done = true;
    for (const b of buffers) {
      const n = held.get(b)! - 1;
      if (n === 0) held.delete(b);
      else held.set(b, n);
    }
  };
}

/** The parts of a frame `releaseMotion` takes. */
export type FrameMotion = Pick<VideoFrame, 'index' | 'vectors' | 'vectorRefs' | 'motion'>;

/**
 * Hands the frame's motion arrays (`vectors`, `vectorRefs`, `motion.data`) back to the reader,
 * for later frames, and removes them from the frame. For a loop that is done with each frame's
 * motion before it reads the next one: the next frames then reuse the same memory instead of
 * taking fresh pages (up to 6 points of decoding's CPU time for a 720p video read once,
 * BENCHMARKS.md).
 *
 * Afterwards the frame has no `vectors`, `vectorRefs` or `motion`, and any other reference to
 * those arrays sees them empty (their buffers are detached: length 0, never stale data). Copy
 * what you keep first (`Int32Array.from`, `slice()`). Frames of `openVideo` and
 * `createPacketReader` are both accepted; a frame without motion, or one already released, is
 * left as it is, and arrays the reader did not make (a caller's own) are never detached.
 *
 * Throws ERR_BUSY, releasing nothing, while one of the arrays is read by a pending
 * `CReFF.run`: release after its promise settles.
 */
export function releaseMotion(frame: FrameMotion): void {
  if (typeof frame !== 'object' || frame === null) throw invalidArg('releaseMotion expects a frame');
  const arrays: ArrayBufferView[] = [];
  if (frame.vectors) arrays.push(frame.vectors);
  if (frame.vectorRefs) arrays.push(frame.vectorRefs);
  if (frame.motion) arrays.push(frame.motion.data);
  if (arrays.length === 0) return;
  if (arrays.some((a) => held.has(a.buffer)))
    throw new ArSegError(
      ErrorCodes.BUSY,
      `frame ${frame.index}: its motion is read by a pending CReFF.run; release it after the run settles`,
    );
  addon().recycleArrays(arrays);
  delete frame.vectors;
  delete frame.vectorRefs;
  delete frame.motion;
}
