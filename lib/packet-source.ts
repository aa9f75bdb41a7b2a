/**
 * Live packet sources: what `ArSeg.segment()` takes besides a file or URL. One message is one
 * encoded access unit (Annex-B H.264 from a camera, ROS 2 ffmpeg_image_transport's
 * FFMPEGPacket, Foxglove's CompressedVideo) with its timestamp. A source is any (async)
 * iterable of packets; PacketQueue turns a callback-style subscription into one.
 */
import { ArSegError, ErrorCodes, invalidArg } from './errors';
import { show } from './options';

/** One encoded access unit of a live source, with what the pipeline carries to its frame's result. */
export interface Packet {
  /** One access unit (Annex-B for H.264/HEVC). The bytes are copied when read. */
  data: Uint8Array;
  /** Presentation time in seconds, carried to the frame's result (microsecond precision inside). */
  pts?: number;
  /** Anything to carry to the frame's result as `meta` (a ROS header, a frame id...). Needs `pts`. */
  meta?: unknown;
  /**
   * When the packet arrived, in performance.now() milliseconds: the start of the frame's
   * latency (result.receivedAt). Default: when the pipeline takes it from the source.
   */
  receivedAt?: number;
}

/** A live source for `ArSeg.segment()`: packets in decode order, as they arrive. */
export type PacketSource = AsyncIterable<Packet> | Iterable<Packet>;

/** Whether `source` is iterable (a packet source rather than a path or URL). */
export function isPacketSource(source: unknown): source is PacketSource {
  return (
    source !== null &&
    typeof source === 'object' &&
    (typeof (source as AsyncIterable<Packet>)[Symbol.asyncIterator] === 'function' ||
      typeof (source as Iterable<Packet>)[Symbol.iterator] === 'function')
  );
}

/**
 * A push-style packet source: push() packets as a subscription delivers them, end() at the end,
 * fail() when the transport breaks (the segmentation then ends with that error, after the
 * frames it had). push() stamps `receivedAt`, never blocks and never throws for a stream
 * that has ended (it returns false); `length` says how many packets
 * wait, for callers that want to bound it. One consumer.
 */
export class PacketQueue implements AsyncIterable<Packet> {
  #queue: Packet[] = [];
  #ended = false;
  #failure: Error | undefined = undefined;
  #wake: (() => void) | null = null;
  #iterating = false;

  /**
   * Queues a packet; false when the stream has ended (end(), fail(), or its consumer stopped):
   * the packet is then dropped, so a subscription callback need not know the run ended.
   */
  push(packet: Packet): boolean {
    if (!packet || !(packet.data instanceof Uint8Array))
      throw invalidArg('a packet must be { data: Uint8Array, pts?: number }');
    if (this.#ended) return false;
    this.#queue.push(packet.receivedAt === undefined ? { ...packet, receivedAt: performance.now() } : packet);
    this.#notify();
    return true;
  }

  /** The stream ends after the packets already pushed. */
  end(): void {
    this.#ended = true;
    this.#notify();
  }

  /** The stream ends with `error` after the packets already pushed. */
  fail(error: unknown): void {
    if (this.#ended) return;
    this.#failure =
      error instanceof Error
        ? error
        : new Error(error === undefined ? 'the packet source failed' : `the packet source failed: ${show(error)}`);
    this.#ended = true;
    this.#notify();
  }

  /** Packets pushed and not yet taken by the consumer. */
  get length(): number {
    return this.#queue.length;
  }

  #notify(): void {
    const wake = this.#wake;
    this.#wake = null;
    wake?.();
  }

  /**
   * The consumer's side. Its return() (a consumer that stops: the segmentation ended or was
   * closed) ends the stream at once, even while next() waits for a packet, so later pushes
   * are refused.
   */
  [Symbol.asyncIterator](): AsyncIterator<Packet> {
    if (this.#iterating) throw new ArSegError(ErrorCodes.BUSY, 'a PacketQueue has one consumer');
    this.#iterating = true;
    return {
      next: () => this.#next(),
      return: () => {
        this.#stop();
        return Promise.resolve({ done: true, value: undefined });
      },
    };
  }

  async #next(): Promise<IteratorResult<Packet>> {
    for (;;) {
      const packet = this.#queue.shift();
      if (packet) return { done: false, value: packet };
      if (this.#ended) {
        if (this.#failure !== undefined) {
          const failure = this.#failure;
          this.#failure = undefined;
          throw failure;
        }
        return { done: true, value: undefined };
      }
      await new Promise<void>((resolve) => (this.#wake = resolve));
    }
  }

  #stop(): void {
    this.#ended = true;
    this.#failure = undefined;
    this.#queue = [];
    this.#notify();
  }
}
