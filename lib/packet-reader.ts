/**
 * Decoding packets a caller already holds (e.g. Annex-B H.264 from a camera driver):
 * `createPacketReader({ codec })`, then `decode(bytes)` as data arrives and `flush()` at the end.
 * Chunks need not be aligned to packets: a libavcodec parser finds the boundaries.
 */
import { addon, NativePacketReader } from './native';
import { ArSegError, ErrorCodes, toArSegError } from './errors';
import { FrameOptions, makeFrame, VideoFrame, warnEstimatedMotion, warnInexactMotion } from './frame';
import { optionsObject } from './options';

/** Options of `createPacketReader`: the codec, and what to produce for each frame. */
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

/** Decodes encoded packets a caller feeds it (made by `createPacketReader`). */
export class PacketReader {
  /** The options given. */
  readonly options: Readonly<PacketReaderOptions>;
  #native: NativePacketReader;
  #queue: Promise<unknown> = Promise.resolve();
  #flushed = false;
  #closed = false;

  /**
   * Prefer createPacketReader(). Throws ERR_INVALID_ARG synchronously for bad options, checked by
   * the native reader, which consumes them (the codec among them).
   */
  constructor(options: PacketReaderOptions) {
    options = optionsObject(options, 'options (an object with a codec)');
    this.options = { ...options };
    const { codec, ...frameOptions } = options;
    try {
      this.#native = new (addon().NativePacketReader)(codec, frameOptions, makeFrame);
    } catch (err) {
      throw toArSegError(err);
    }
    if (!this.#native.motionExact) warnInexactMotion(codec, frameOptions);
    warnEstimatedMotion(codec, this.#native.motionSource, frameOptions);
  }

  /**
   * Whether motion follows the exact reference of every vector: false for H.264 when the
   * addon's libav lacks ar-seg-native's patch (motion then assumes the nearest I/P frame; a
   * warning says so once), and for codecs without vectors unless the motion is estimated.
   */
  get motionExact(): boolean {
    return this.#native.motionExact;
  }

  /**
   * Where motion comes from (FrameOptions.motionSource settled for the codec): 'bitstream',
   * 'estimated', or null when neither vectors nor motion were asked for.
   */
  get motionSource(): 'bitstream' | 'estimated' | null {
    return this.#native.motionSource;
  }

  /**
   * Feeds encoded bytes; resolves with the frames that became ready (presentation order).
   * Calls may overlap: they run in the order made. `pts` (seconds) stamps the packet that
   * starts in this chunk. The bytes are copied, so the buffer may be reused at once.
   */
  decode(packet: Uint8Array, pts?: number): Promise<VideoFrame[]> {
    // packet and pts are checked by the native reader (ERR_INVALID_ARG)
    if (this.#flushed) return Promise.reject(new ArSegError(ErrorCodes.CLOSED, 'decode() after flush()'));
    return this.#run(() => this.#native.decode(packet, pts));
  }

  /** Ends the stream: resolves with every frame still buffered. */
  flush(): Promise<VideoFrame[]> {
    this.#flushed = true;
    return this.#run(() => this.#native.flush());
  }

  #run(op: () => Promise<VideoFrame[]>): Promise<VideoFrame[]> {
    if (this.#closed) return Promise.reject(new ArSegError(ErrorCodes.CLOSED, 'the packet reader is closed'));
    const result = this.#queue.then(async () => {
      if (this.#closed) throw new ArSegError(ErrorCodes.CLOSED, 'the packet reader is closed');
      try {
        return await op();
      } catch (err) {
        throw toArSegError(err);
      }
    });
    this.#queue = result.catch(() => undefined);
    return result;
  }

  /** Counters: packets or frames the decoder rejected and skipped (non-strict mode). */
  stats(): {
    /** Packets or frames the decoder rejected and skipped. */
    decodeErrors: number;
    /** Packets dropped while waiting for the first keyframe (waitForKeyframe). */
    skippedBeforeKeyframe: number;
  } {
    return this.#native.stats();
  }

  /** Frees the native decoder; later calls are refused with ERR_CLOSED. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#native.close();
  }
}

/**
 * Creates a packet reader for `options.codec`. Throws ERR_INVALID_ARG synchronously for bad
 * options, ERR_UNSUPPORTED_CODEC for a codec libavcodec cannot decode.
 */
export function createPacketReader(options: PacketReaderOptions): PacketReader {
  return new PacketReader(options);
}
