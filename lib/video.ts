/**
 * Reading a video file or URL: `openVideo(source, options)` gives an async iterable of frames.
 * Decoding runs natively on the thread pool, a bounded number of frames ahead of the
 * consumer (`ahead`), so a slow consumer holds back the decoder instead of piling up frames.
 */
import { promises as fs } from 'node:fs';
import { addon, NativeVideoReader } from './native';
import { ArSegError, ErrorCodes, invalidArg, toArSegError } from './errors';
import { FrameOptions, makeFrame, VideoFrame, warnEstimatedMotion, warnInexactMotion } from './frame';
import { integerIn, optionsObject } from './options';

/** Options of `openVideo`: what to produce for each frame, and how to read. */
export interface OpenOptions extends FrameOptions {
  /** Frames decoded ahead of the consumer (1..64). Default 4. */
  ahead?: number;
  /** Options for libavformat's demuxer/protocol, e.g. { rtsp_transport: 'tcp', timeout: '5000000' }. */
  formatOptions?: Record<string, string | number>;
}

/** What `VideoReader.open()` finds out about the input. */
export interface VideoInfo {
  /** The container format, libavformat's name ('mov,mp4,m4a,3gp,3g2,mj2', 'h264', 'mpegts'...). */
  format: string;
  /** The video codec, libavcodec's name ('h264', 'hevc', 'mpeg2video'...). */
  codec: string;
  /** Frame width in pixels. */
  width: number;
  /** Frame height in pixels. */
  height: number;
  /**
   * Frames per second: the stream's average frame rate, else libavformat's guess (r_frame_rate),
   * each only when plausible; null when unknown or over 1000 (a track with no frames gives its
   * time base as a rate: not a frame rate).
   */
  fps: number | null;
  /** Duration in seconds, or null when the container does not say. */
  duration: number | null;
  /** Frames the container declares, or null when it does not say. */
  frameCount: number | null;
  /**
   * Whether libavcodec exports motion vectors for this codec (H.264, MPEG-4 Part 2, MPEG-1/2,
   * H.263; HEVC with ar-seg-native's patched libav).
   */
  motionVectors: boolean;
  /**
   * Where the frames' motion comes from when vectors or motion were asked for: 'bitstream' or
   * 'estimated' (FrameOptions.motionSource); null otherwise.
   */
  motionSource: 'bitstream' | 'estimated' | null;
  /**
   * The container's display rotation: rotate the pictures counter-clockwise by this many degrees
   * (0, 90, 180 or 270; ffprobe's "rotation") to show them upright. Frames, labels and outputs
   * stay in the decoded orientation: the rotation is reported, not applied.
   */
  rotation: 0 | 90 | 180 | 270;
  /**
   * Whether those vectors name their exact reference: MPEG-1/2/4 and H.263 always, H.264 and
   * HEVC with the patched libav (false: motion assumes the nearest I/P frame).
   */
  motionExact: boolean;
}

/** Frames the stream should hold: the container's count, else duration x rate, else null. */
export function expectedFrameCount(info: VideoInfo): number | null {
  return info.frameCount ?? (info.duration && info.fps ? Math.round(info.duration * info.fps) : null);
}

/** Counters of a reader, for monitoring. */
export interface ReaderStats {
  /** Frames handed to the caller so far. */
  framesDelivered: number;
  /** Packets or frames the decoder rejected and skipped (non-strict mode). */
  decodeErrors: number;
  /**
   * Frames of the stream the decoder dropped (damage it could not conceal): their indices are
   * left out, so `frame.index` stays the frame's number in the stream. Known when the packets
   * carry timestamps (containers); 0 for raw elementary streams, whose frames are numbered in
   * the order they come out.
   */
  framesDropped: number;
}

const URL_SCHEME = /^[a-z][a-z0-9+.-]*:/i;
const IMAGE_SEQUENCE = /%0?\d*d/;

/**
 * Reads a video file or URL frame by frame (made by `openVideo`): an async iterable of
 * `VideoFrame`s in presentation order, decoded on the thread pool ahead of the consumer.
 */
export class VideoReader implements AsyncIterable<VideoFrame> {
  /** The file or URL given. */
  readonly source: string;
  /** The options given. */
  readonly options: Readonly<OpenOptions>;
  #native: NativeVideoReader;
  #opened: Promise<VideoInfo> | undefined;
  #ahead: Promise<VideoFrame | null>[] = [];
  #aheadLimit: number;
  #tail: Promise<VideoFrame | null | undefined> = Promise.resolve(undefined);
  #done = false;
  #closed = false;
  #motionExact: boolean | undefined;

  /**
   * Prefer openVideo(). Throws ERR_INVALID_ARG synchronously for bad options: `ahead` here, the
   * source and the frame options in the native reader, which consumes them.
   */
  constructor(source: string, options: OpenOptions = {}) {
    options = optionsObject(options);
    const ahead = integerIn('ahead', options.ahead, 1, 64, 4);
    this.source = source;
    this.options = { ...options };
    this.#aheadLimit = ahead;
    const { ahead: _a, ...nativeOptions } = options;
    try {
      this.#native = new (addon().NativeVideoReader)(source, nativeOptions, makeFrame);
    } catch (err) {
      throw toArSegError(err);
    }
  }

  /** Opens and probes the input (done implicitly by the first read). */
  open(): Promise<VideoInfo> {
    if (this.#closed) return Promise.reject(new ArSegError(ErrorCodes.CLOSED, 'the video reader is closed'));
    this.#opened ??= this.#open();
    return this.#opened;
  }

  async #open(): Promise<VideoInfo> {
    // An image sequence (frame%04d.png, or a glob with formatOptions.pattern_type) names no one
    // file: libavformat's image2 demuxer finds the files (ERR_NOT_FOUND when none matches).
    const sequence = IMAGE_SEQUENCE.test(this.source) || this.options.formatOptions?.pattern_type !== undefined;
    if (!URL_SCHEME.test(this.source) && !sequence) await checkLocalFile(this.source);
    let info: VideoInfo;
    try {
      info = await this.#native.open();
    } catch (err) {
      throw toArSegError(err);
    }
    this.#motionExact = info.motionExact;
    if (info.motionVectors && !info.motionExact) warnInexactMotion(info.codec, this.options);
    warnEstimatedMotion(info.codec, info.motionSource, this.options);
    return info;
  }

  /**
   * Whether the stream's motion follows the exact reference of every vector (undefined until
   * opened). False for H.264 when the addon's libav lacks ar-seg-native's patch: motion then
   * assumes the nearest I/P frame, which is wrong for several reference frames or B-pyramids
   * (a warning says so once). Streams without vectors: false.
   */
  get motionExact(): boolean | undefined {
    return this.#motionExact;
  }

  /** The next frame in presentation order, or null at the end of the stream. */
  async read(): Promise<VideoFrame | null> {
    if (this.#closed) throw new ArSegError(ErrorCodes.CLOSED, 'the video reader is closed');
    if (this.#done) return null;
    await this.open();
    this.#fill();
    const next = this.#ahead.shift()!;
    let frame: VideoFrame | null;
    try {
      frame = await next;
    } catch (err) {
      this.#done = true;
      this.#ahead = [];
      if (this.#closed) throw new ArSegError(ErrorCodes.CLOSED, 'the video reader was closed while reading');
      throw toArSegError(err);
    }
    if (frame === null) {
      this.#done = true;
      this.#ahead = [];
      return null;
    }
    this.#fill();
    return frame;
  }

  /**
   * Keeps up to `ahead` native reads queued. Each starts only when the previous one finished
   * (the native reader takes one operation at a time); after the end, an error or close(),
   * the queued reads settle without touching the native reader.
   */
  #fill(): void {
    while (this.#ahead.length < this.#aheadLimit) {
      const read = this.#tail.then((previous) => {
        if (previous === null || this.#closed) return null;
        return this.#native.read();
      });
      read.catch(() => undefined); // surfaced by read(); never an unhandled rejection
      this.#tail = read;
      this.#ahead.push(read);
    }
  }

  /** Iterates over the frames; ends the reader (close()) when the loop ends or breaks. */
  async *[Symbol.asyncIterator](): AsyncIterator<VideoFrame> {
    try {
      for (;;) {
        const frame = await this.read();
        if (frame === null) return;
        yield frame;
      }
    } finally {
      this.close();
    }
  }

  /** Frames delivered and decode errors skipped so far. */
  stats(): ReaderStats {
    return this.#native.stats();
  }

  /** Frees the native reader (interrupting a blocked read). Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#ahead = [];
    this.#native.close();
  }
}

async function checkLocalFile(file: string): Promise<void> {
  let st;
  try {
    st = await fs.stat(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw new ArSegError(ErrorCodes.NOT_FOUND, `no such file: ${file}`);
    throw new ArSegError(ErrorCodes.OPEN, `cannot open ${file}: ${(err as Error).message}`);
  }
  if (st.isDirectory()) throw invalidArg(`${file} is a directory, not a video`);
  if (st.isFile() && st.size === 0) throw new ArSegError(ErrorCodes.EMPTY_INPUT, `${file} is empty`);
}

/**
 * Opens a video file or any URL libavformat reads (file, pipe, rtsp, http...).
 * Options are checked now (ERR_INVALID_ARG); the input is opened by the first read.
 */
export function openVideo(source: string, options: OpenOptions = {}): VideoReader {
  return new VideoReader(source, options);
}
