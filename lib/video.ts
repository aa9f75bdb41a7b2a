/**
 * Reading a video file or URL: `openVideo(source, options)` gives an async iterable of frames.
 * Decoding runs natively on the thread pool, a bounded number of frames ahead of the
 * consumer (`ahead`), so a slow consumer holds back the decoder instead of piling up frames.
 */
import { promises as fs } from 'node:fs';
import { addon, NativeFrame, NativeStreamInfo, NativeVideoReader } from './native';
import { ArSegError, ErrorCodes, invalidArg, toArSegError } from './errors';
import { FrameOptions, pixelLimit, toVideoFrame, VideoFrame } from './frame';

export interface OpenOptions extends FrameOptions {
  /** Frames decoded ahead of the consumer (1..64). Default 4. */
  ahead?: number;
  /** Options for libavformat's demuxer/protocol, e.g. { rtsp_transport: 'tcp', timeout: '5000000' }. */
  formatOptions?: Record<string, string | number>;
}

export type VideoInfo = NativeStreamInfo;

/** Frames the stream should hold: the container's count, else duration x rate, else null. */
export function expectedFrameCount(info: VideoInfo): number | null {
  return info.frameCount ?? (info.duration && info.fps ? Math.round(info.duration * info.fps) : null);
}

export interface ReaderStats {
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

export class VideoReader implements AsyncIterable<VideoFrame> {
  readonly source: string;
  readonly options: Readonly<OpenOptions>;
  #native: NativeVideoReader;
  #opened: Promise<VideoInfo> | undefined;
  #ahead: Promise<NativeFrame | null>[] = [];
  #aheadLimit: number;
  #tail: Promise<NativeFrame | null | undefined> = Promise.resolve(undefined);
  #done = false;
  #closed = false;

  /** Prefer openVideo(). Throws ERR_INVALID_ARG synchronously for bad options. */
  constructor(source: string, options: OpenOptions = {}) {
    if (typeof source !== 'string' || source.length === 0)
      throw invalidArg('source must be a non-empty string (a path or a URL)');
    if (options === null || typeof options !== 'object' || Array.isArray(options))
      throw invalidArg('options must be an object');
    const ahead = options.ahead ?? 4;
    if (!Number.isInteger(ahead) || ahead < 1 || ahead > 64)
      throw invalidArg(`option 'ahead' must be an integer from 1 to 64, got ${String(options.ahead)}`);
    this.source = source;
    this.options = { ...options };
    this.#aheadLimit = ahead;
    const { ahead: _a, ...rest } = options;
    const nativeOptions = { ...rest, limitInputPixels: pixelLimit(options.limitInputPixels) };
    try {
      this.#native = new (addon().NativeVideoReader)(source, nativeOptions);
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
    if (!URL_SCHEME.test(this.source)) await checkLocalFile(this.source);
    try {
      return await this.#native.open();
    } catch (err) {
      throw toArSegError(err);
    }
  }

  /** The next frame in presentation order, or null at the end of the stream. */
  async read(): Promise<VideoFrame | null> {
    if (this.#closed) throw new ArSegError(ErrorCodes.CLOSED, 'the video reader is closed');
    if (this.#done) return null;
    await this.open();
    this.#fill();
    const next = this.#ahead.shift()!;
    let raw: NativeFrame | null;
    try {
      raw = await next;
    } catch (err) {
      this.#done = true;
      this.#ahead = [];
      if (this.#closed) throw new ArSegError(ErrorCodes.CLOSED, 'the video reader was closed while reading');
      throw toArSegError(err);
    }
    if (raw === null) {
      this.#done = true;
      this.#ahead = [];
      return null;
    }
    this.#fill();
    return toVideoFrame(raw, this.options);
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
