/**
 * The intake of a segmentation run: decodes the source ahead of inference and hands frames to
 * the scheduler, keeping or dropping them by the drop policy.
 *
 * A pump reads the source on its own: decoding happens on the thread pool, so it runs while the
 * networks run on their threads. With drop 'none' it stops `capacity` frames ahead (the
 * source's own buffering holds the rest: compressed packets, not decoded frames). With drop
 * 'latest' it never stops, so decoding never falls behind a live source: every frame is
 * decoded and observed (its motion is needed to reach older keyframes), and only the newest
 * waits for inference, with the count of frames skipped before it. A frame `keep` marks (a
 * keyframe of the synchronous schedule, whose HR feature the frames after it need) is dropped
 * only when a newer such frame arrives (none of the frames still to come needs the older one).
 *
 * When the source fails, the frames decoded before the failure are still handed out, then the
 * error.
 */
import { ArSegError, ErrorCodes, invalidArg, toArSegError } from './errors';
import type { VideoFrame } from './frame';
import type { Packet, PacketSource } from './packet-source';
import type { PacketReader } from './packet-reader';
import type { VideoReader } from './video';

/** What happens to frames when inference falls behind: 'none' segments all, 'latest' only the newest. */
export type DropPolicy = 'none' | 'latest';

/** A decoded frame with what the pipeline carries to its result. */
export interface IntakeFrame {
  frame: VideoFrame;
  /** performance.now() milliseconds when its data arrived (packet sources) or was decoded. */
  receivedAt: number;
  /** The timestamp its packet came with (packet sources), else the stream's. */
  pts: number | null;
  meta?: unknown;
}

export interface IntakeItem extends IntakeFrame {
  /** Frames dropped since the previous item (and, for the first, skipped before the first keyframe). */
  skipped: number;
  /** performance.now() milliseconds when the intake took the decoded frame. */
  decodedAt: number;
}

/** Where decoded frames come from. */
export interface FrameSource {
  /** The frames decoded from the next piece of input (possibly none); null at the end. */
  read(): Promise<IntakeFrame[] | null>;
  /** Frames skipped before the first keyframe, so far. */
  skippedBeforeKeyframe(): number;
  decodeErrors(): number;
  /** Frames the video decoder dropped (damage it could not conceal; ReaderStats.framesDropped). */
  framesDropped(): number;
  close(): void;
}

/** A file or URL (VideoReader). */
export class ReaderSource implements FrameSource {
  readonly #reader: VideoReader;
  constructor(reader: VideoReader) {
    this.#reader = reader;
  }
  async read(): Promise<IntakeFrame[] | null> {
    const frame = await this.#reader.read();
    return frame ? [{ frame, receivedAt: performance.now(), pts: frame.pts }] : null;
  }
  skippedBeforeKeyframe(): number {
    return 0;
  }
  decodeErrors(): number {
    try {
      return this.#reader.stats().decodeErrors;
    } catch {
      return 0;
    }
  }
  framesDropped(): number {
    try {
      return this.#reader.stats().framesDropped;
    } catch {
      return 0;
    }
  }
  close(): void {
    this.#reader.close();
  }
}

interface PacketRecord {
  micros: number | null;
  pts: number | null;
  meta: unknown;
  receivedAt: number;
}

/** Packets in decode order remembered until their frame comes out (B-frames reorder them). */
const MAX_RECORDS = 64;

/**
 * A packet source (one access unit per packet) through a PacketReader that waits for the first
 * keyframe. Each frame takes back its packet's timestamp, metadata and arrival time: by
 * timestamp when the packets have one, else in order.
 */
export class PacketFrameSource implements FrameSource {
  readonly #reader: PacketReader;
  readonly #iterator: AsyncIterator<Packet> | Iterator<Packet>;
  #records: PacketRecord[] = [];
  #failure: ArSegError | null = null;
  #ended = false;
  #packets = 0;
  #frames = 0;

  constructor(source: PacketSource, reader: PacketReader) {
    this.#reader = reader;
    const asyncIt = (source as AsyncIterable<Packet>)[Symbol.asyncIterator];
    this.#iterator =
      typeof asyncIt === 'function' ? asyncIt.call(source) : (source as Iterable<Packet>)[Symbol.iterator]();
  }

  async read(): Promise<IntakeFrame[] | null> {
    if (this.#failure) throw this.#failure;
    if (this.#ended) return null;
    let next: IteratorResult<Packet>;
    try {
      next = await this.#iterator.next();
    } catch (err) {
      // The transport broke: hand out what the decoder still holds, then the error.
      this.#failure =
        err instanceof ArSegError
          ? err
          : new ArSegError(
              ErrorCodes.READ,
              `the packet source failed after ${this.#packets} packets: ${err instanceof Error ? err.message : String(err)}`,
              {
                cause: err,
                framesDecoded: this.#frames,
              },
            );
      return this.#flush();
    }
    if (next.done) {
      this.#ended = true;
      return this.#flush();
    }
    const packet = next.value;
    const at = this.#packets++;
    if (!packet || typeof packet !== 'object' || !(packet.data instanceof Uint8Array))
      throw invalidArg(`packet ${at} must be { data: Uint8Array, pts?: number }`);
    if (
      packet.pts !== undefined &&
      packet.pts !== null &&
      (typeof packet.pts !== 'number' || !Number.isFinite(packet.pts))
    )
      throw invalidArg(`packet ${at}: pts must be a finite number of seconds`);
    const pts = typeof packet.pts === 'number' ? packet.pts : null;
    this.#records.push({
      micros: pts === null ? null : Math.round(pts * 1e6),
      pts,
      meta: packet.meta,
      receivedAt: typeof packet.receivedAt === 'number' ? packet.receivedAt : performance.now(),
    });
    if (this.#records.length > MAX_RECORDS) this.#records.shift();
    const skippedBefore = this.#reader.stats().skippedBeforeKeyframe;
    const frames = await this.#reader.decode(packet.data, pts ?? undefined);
    // A packet dropped while waiting for the first keyframe gives no frame: forget it.
    if (this.#reader.stats().skippedBeforeKeyframe > skippedBefore) this.#records.pop();
    return this.#match(frames);
  }

  async #flush(): Promise<IntakeFrame[]> {
    const frames = await this.#reader.flush();
    return this.#match(frames);
  }

  #match(frames: VideoFrame[]): IntakeFrame[] {
    this.#frames += frames.length;
    return frames.map((frame) => {
      let i = -1;
      if (frame.pts !== null) {
        const micros = Math.round(frame.pts * 1e6);
        i = this.#records.findIndex((r) => r.micros === micros);
      }
      if (i < 0 && this.#records.length) i = 0;
      const record = i >= 0 ? this.#records.splice(i, 1)[0] : null;
      return {
        frame,
        receivedAt: record?.receivedAt ?? performance.now(),
        pts: record ? record.pts : frame.pts,
        meta: record?.meta,
      };
    });
  }

  framesDropped(): number {
    // Packets carry no container timestamps to count gaps by: the decoder's drops are unknown.
    return 0;
  }
  skippedBeforeKeyframe(): number {
    try {
      return this.#reader.stats().skippedBeforeKeyframe;
    } catch {
      return 0;
    }
  }

  decodeErrors(): number {
    try {
      return this.#reader.stats().decodeErrors;
    } catch {
      return 0;
    }
  }

  close(): void {
    this.#reader.close();
    // Not awaited: a source blocked in next() may never answer; return() asks it to stop.
    try {
      const done = this.#iterator.return?.();
      if (done && typeof (done as Promise<unknown>).then === 'function')
        (done as Promise<unknown>).then(undefined, () => undefined);
    } catch {
      // a source that fails to stop is already abandoned
    }
  }
}

export interface IntakeOptions {
  drop: DropPolicy;
  /** With drop 'none': frames decoded ahead of inference at most. */
  capacity: number;
  /** Frames kept until a newer frame it marks arrives. */
  keep: (frame: VideoFrame) => boolean;
  /** Sees every frame as it is decoded, in order, dropped or not. */
  observe: (frame: VideoFrame) => void;
}

export interface IntakeStats {
  /** Frames decoded. */
  framesDecoded: number;
  /** Frames handed to inference. */
  framesDelivered: number;
  /** Frames decoded but not segmented (drop 'latest'): the sum of the results' `skipped`, less skippedBeforeKeyframe. */
  framesSkipped: number;
  /** Frames the video decoder dropped (damage it could not conceal; see ReaderStats.framesDropped): 0 for packet sources. */
  framesDropped: number;
  /** Packets skipped before the first keyframe (packet sources). */
  skippedBeforeKeyframe: number;
  /** Packets or frames the video decoder rejected and skipped. */
  decodeErrors: number;
}

export class FrameIntake {
  readonly #source: FrameSource;
  readonly #o: IntakeOptions;
  #queue: IntakeItem[] = [];
  #pendingSkips = 0;
  #reportedLeading = 0;
  #ended = false;
  #failure: ArSegError | null = null;
  #closed = false;
  #wakeConsumer: (() => void) | null = null;
  #wakePump: (() => void) | null = null;
  #started = false;
  #decoded = 0;
  #delivered = 0;
  #dropped = 0;

  constructor(source: FrameSource, options: IntakeOptions) {
    this.#source = source;
    this.#o = options;
  }

  /** The next frame to segment, or null at the end; rejects with the source's error after its frames. */
  async next(): Promise<IntakeItem | null> {
    if (!this.#started) {
      this.#started = true;
      void this.#pump();
    }
    for (;;) {
      if (this.#closed) throw new ArSegError(ErrorCodes.CLOSED, 'the segmentation was closed');
      const item = this.#queue.shift();
      if (item) {
        this.#delivered++;
        this.#wake('pump');
        return item;
      }
      if (this.#failure) throw this.#failure;
      if (this.#ended) return null;
      await new Promise<void>((resolve) => (this.#wakeConsumer = resolve));
    }
  }

  #wake(who: 'pump' | 'consumer'): void {
    const wake = who === 'pump' ? this.#wakePump : this.#wakeConsumer;
    if (who === 'pump') this.#wakePump = null;
    else this.#wakeConsumer = null;
    wake?.();
  }

  async #pump(): Promise<void> {
    try {
      for (;;) {
        while (this.#o.drop === 'none' && this.#queue.length >= this.#o.capacity && !this.#closed)
          await new Promise<void>((resolve) => (this.#wakePump = resolve));
        if (this.#closed) return;
        const frames = await this.#source.read();
        if (this.#closed) return;
        if (frames === null) break;
        for (const f of frames) this.#take(f);
        this.#wake('consumer');
      }
      this.#ended = true;
    } catch (err) {
      this.#failure = toArSegError(err);
    }
    this.#wake('consumer');
  }

  #take(f: IntakeFrame): void {
    this.#decoded++;
    this.#o.observe(f.frame);
    const leading = this.#source.skippedBeforeKeyframe();
    this.#pendingSkips += leading - this.#reportedLeading;
    this.#reportedLeading = leading;
    if (this.#o.drop === 'latest') {
      // A frame `keep` marks stays until a newer one arrives: no frame after that needs it.
      const superseding = this.#o.keep(f.frame);
      const kept: IntakeItem[] = [];
      for (const item of this.#queue) {
        if (!superseding && this.#o.keep(item.frame)) kept.push(item);
        else {
          this.#pendingSkips += item.skipped + 1;
          this.#dropped++;
        }
      }
      this.#queue = kept;
    }
    this.#queue.push({ ...f, skipped: this.#pendingSkips, decodedAt: performance.now() });
    this.#pendingSkips = 0;
  }

  stats(): IntakeStats {
    return {
      framesDecoded: this.#decoded,
      framesDelivered: this.#delivered,
      framesSkipped: this.#dropped,
      framesDropped: this.#source.framesDropped(),
      skippedBeforeKeyframe: this.#source.skippedBeforeKeyframe(),
      decodeErrors: this.#source.decodeErrors(),
    };
  }

  /** Stops the pump and the source; a waiting next() rejects with ERR_CLOSED. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#queue = [];
    this.#source.close();
    this.#wake('pump');
    this.#wake('consumer');
  }
}
