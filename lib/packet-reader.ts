/**
 * Decoding packets a caller already holds (e.g. Annex-B H.264 from a camera driver):
 * `createPacketReader({ codec })`, then `decode(bytes)` as data arrives and `flush()` at the end.
 * Chunks need not be aligned to packets: a libavcodec parser finds the boundaries.
 */
import { addon, NativeFrame, NativePacketReader } from './native';
import { ArSegError, ErrorCodes, invalidArg, toArSegError } from './errors';
import { FrameOptions, toVideoFrame, VideoFrame } from './frame';

export interface PacketReaderOptions extends FrameOptions {
  /** libavcodec codec name: 'h264', 'hevc', 'mpeg4', 'mpeg2video', 'mpeg1video', ... */
  codec: string;
  /**
   * Drop packets until the first one the codec's parser marks as a keyframe (a stream joined
   * mid-GOP then starts cleanly; the count is in stats().skippedBeforeKeyframe). Default false.
   */
  waitForKeyframe?: boolean;
  /**
   * Every decode() call holds exactly one access unit (as a camera driver's, ROS 2's or
   * Foxglove's messages do): each is decoded at once instead of when the next one starts (the
   * parser otherwise waits for the next unit's start to know where this one ends). Default false.
   */
  accessUnits?: boolean;
}

export class PacketReader {
  readonly options: Readonly<PacketReaderOptions>;
  #native: NativePacketReader;
  #queue: Promise<unknown> = Promise.resolve();
  #flushed = false;
  #closed = false;

  constructor(options: PacketReaderOptions) {
    if (options === null || typeof options !== 'object') throw invalidArg('options must be an object with a codec');
    if (typeof options.codec !== 'string' || options.codec.length === 0)
      throw invalidArg("option 'codec' must be a codec name such as 'h264'");
    for (const flag of ['waitForKeyframe', 'accessUnits'] as const)
      if (options[flag] !== undefined && typeof options[flag] !== 'boolean') throw invalidArg(`option '${flag}' must be a boolean`);
    this.options = { ...options };
    const { codec, ...frameOptions } = options;
    try {
      this.#native = new (addon().NativePacketReader)(codec, frameOptions);
    } catch (err) {
      throw toArSegError(err);
    }
  }

  /**
   * Feeds encoded bytes; resolves with the frames that became ready (presentation order).
   * Calls may overlap: they run in the order made. `pts` (seconds) stamps the packet that
   * starts in this chunk. The bytes are copied, so the buffer may be reused at once.
   */
  decode(packet: Uint8Array, pts?: number): Promise<VideoFrame[]> {
    if (!(packet instanceof Uint8Array)) return Promise.reject(invalidArg('packet must be a Uint8Array or Buffer'));
    if (pts !== undefined && (typeof pts !== 'number' || !Number.isFinite(pts)))
      return Promise.reject(invalidArg('pts must be a finite number of seconds'));
    if (this.#flushed) return Promise.reject(new ArSegError(ErrorCodes.CLOSED, 'decode() after flush()'));
    return this.#run(() => this.#native.decode(packet, pts));
  }

  /** Ends the stream: resolves with every frame still buffered. */
  flush(): Promise<VideoFrame[]> {
    this.#flushed = true;
    return this.#run(() => this.#native.flush());
  }

  #run(op: () => Promise<NativeFrame[]>): Promise<VideoFrame[]> {
    if (this.#closed) return Promise.reject(new ArSegError(ErrorCodes.CLOSED, 'the packet reader is closed'));
    const result = this.#queue.then(async () => {
      if (this.#closed) throw new ArSegError(ErrorCodes.CLOSED, 'the packet reader is closed');
      try {
        const frames = await op();
        return frames.map((f) => toVideoFrame(f, this.options));
      } catch (err) {
        throw toArSegError(err);
      }
    });
    this.#queue = result.catch(() => undefined);
    return result;
  }

  stats(): { decodeErrors: number; skippedBeforeKeyframe: number } {
    return this.#native.stats();
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#native.close();
  }
}

export function createPacketReader(options: PacketReaderOptions): PacketReader {
  return new PacketReader(options);
}
