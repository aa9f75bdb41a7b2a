/**
 * The keyframes of one segmentation run, and the way from any frame back to an older keyframe:
 * what the asynchronous keyframe schedule needs (docs/live.md).
 *
 * The reader gives every frame its motion to its own keyframe. When that keyframe's HR feature
 * is not ready yet, the frame is fused with an older keyframe, so its field has to be carried
 * across the keyframes in between. For each keyframe K the table keeps a bridge: the field of
 * the frame just before K to the keyframe before K. It stands for K's own field to that
 * keyframe, with one step assumed still: from K to the frame before it. That step has no
 * vectors when K is an I-frame (nothing is predicted across it), and the reader does not give
 * a keyframe's field to the previous keyframe when K is a P-frame; the bridge is the best the
 * stream says in both cases. A frame's field to keyframe K_j is its field to its own keyframe
 * followed by the bridges of every keyframe from its own down to K_{j+1} (composeMotion).
 *
 * Every frame passes through observe() as it is decoded, dropped or not, so no bridge is ever
 * missing. HR features are made by `encode`: in the asynchronous schedule as soon as a
 * keyframe is observed, one keyframe at a time; with `supersede`, a keyframe still waiting
 * when a newer one arrives is skipped (the newer one serves every later frame better).
 */
import type { FeatureTensor, Keyframe } from './creff';
import { ArSegError, ErrorCodes, toArSegError } from './errors';
import type { MotionField, PictType, Tensor, VideoFrame } from './frame';
import { composeMotion } from './motion';

/** How a frame's field crosses a keyframe to reach an older one (see KeyframeTable.choose). */
export type AcrossKeyframes = 'bridge' | 'zero-motion' | 'lr';

export type KeyframeState = 'waiting' | 'encoding' | 'ready' | 'skipped' | 'failed';

/** What encoding a keyframe gives: its HR feature, and the same prepared for CReFF (CPU). */
export interface EncodedKeyframe {
  feature: FeatureTensor;
  prepared: Keyframe | null;
}

export interface KeyframeEntry {
  readonly index: number;
  readonly pictType: PictType;
  readonly width: number;
  readonly height: number;
  /** The field of the frame before this keyframe to `previous`, or null: no way across. */
  readonly bridge: MotionField | null;
  previous: KeyframeEntry | null;
  state: KeyframeState;
  /** The HR feature when ready; dropped once no frame can decode it any more (see forget()). */
  feature: FeatureTensor | null;
  prepared: Keyframe | null;
  /** The HR input, kept until encoding starts. */
  tensor: Tensor | null;
  /** Resolves when the state is final (ready, skipped or failed). */
  settled: Promise<void>;
  settle: () => void;
  /** Monotonic milliseconds when the feature became ready. */
  readyAt: number | null;
}

/** How KeyframeTable.choose picks (see there). */
export interface ChooseOptions {
  delay?: number;
  maxDistance?: number;
  across?: AcrossKeyframes;
}

/** The keyframe a frame is fused with, and the frame's field to it. */
export interface KeyframeChoice {
  entry: KeyframeEntry;
  /** Frames from that keyframe to this frame. */
  distance: number;
  /** The frame's field to the keyframe; the frame's own field when it is its own keyframe's. */
  motion: MotionField;
}

export interface KeyframeTableOptions {
  /** Makes a keyframe's feature (the asynchronous schedule); absent: features are set with setReady(). */
  encode?: (entry: KeyframeEntry, tensor: Tensor) => Promise<EncodedKeyframe>;
  /** Skip a keyframe still waiting to be encoded when a newer one arrives. */
  supersede?: boolean;
}

export class KeyframeTable {
  readonly #entries: KeyframeEntry[] = [];
  readonly #encode: KeyframeTableOptions['encode'];
  readonly #supersede: boolean;
  #encoding = false;
  #failure: ArSegError | null = null;
  /** The last frame observed: its field, to its keyframe, becomes the next keyframe's bridge. */
  #last: VideoFrame | null = null;
  #closed = false;

  constructor(options: KeyframeTableOptions = {}) {
    this.#encode = options.encode;
    this.#supersede = Boolean(options.supersede);
  }

  /** Every decoded frame, in presentation order, whether or not it will be segmented. */
  observe(frame: VideoFrame): void {
    const last = this.#last;
    this.#last = frame;
    if (!frame.isKeyframe) return;
    const previous = this.#entries.length ? this.#entries[this.#entries.length - 1] : null;
    let bridge: MotionField | null = null;
    if (
      previous &&
      last &&
      last.motion &&
      last.keyframeIndex === previous.index &&
      last.width === frame.width &&
      last.height === frame.height
    )
      bridge = last.motion;
    let settle!: () => void;
    const settled = new Promise<void>((resolve) => (settle = resolve));
    const entry: KeyframeEntry = {
      index: frame.index,
      pictType: frame.pictType,
      width: frame.width,
      height: frame.height,
      bridge,
      previous,
      state: 'waiting',
      feature: null,
      prepared: null,
      tensor: this.#encode ? frame.tensors![0] : null,
      settled,
      settle,
      readyAt: null,
    };
    this.#entries.push(entry);
    if (this.#encode) this.#next();
  }

  /** The entry of keyframe `index`, if the table still has it. */
  get(index: number): KeyframeEntry | undefined {
    for (let i = this.#entries.length - 1; i >= 0; i--) if (this.#entries[i].index === index) return this.#entries[i];
    return undefined;
  }

  /** Sets a keyframe's feature (the synchronous schedule encodes in line). */
  setReady(index: number, encoded: EncodedKeyframe): void {
    const entry = this.get(index);
    if (!entry) throw new ArSegError(ErrorCodes.NATIVE, `keyframe ${index} is not in the table`);
    this.#ready(entry, encoded);
  }

  #ready(entry: KeyframeEntry, { feature, prepared }: EncodedKeyframe): void {
    entry.feature = feature;
    entry.prepared = prepared;
    entry.state = 'ready';
    entry.readyAt = performance.now();
    entry.settle();
  }

  /** Starts encoding the next keyframe when none is being encoded. */
  #next(): void {
    if (this.#encoding || this.#closed || this.#failure) return;
    const waiting = this.#entries.filter((e) => e.state === 'waiting');
    if (waiting.length === 0) return;
    const entry = this.#supersede ? waiting[waiting.length - 1] : waiting[0];
    if (this.#supersede)
      for (const e of waiting)
        if (e !== entry) {
          e.state = 'skipped';
          e.tensor = null;
          e.settle();
        }
    const tensor = entry.tensor!;
    entry.tensor = null;
    entry.state = 'encoding';
    this.#encoding = true;
    this.#encode!(entry, tensor).then(
      (encoded) => {
        this.#encoding = false;
        if (this.#closed) return;
        this.#ready(entry, encoded);
        this.#next();
      },
      (err) => {
        this.#encoding = false;
        entry.state = 'failed';
        this.#failure ??= toArSegError(err);
        entry.settle();
        // every keyframe still waiting settles too: nothing will encode it
        for (const e of this.#entries)
          if (e.state === 'waiting') {
            e.state = 'failed';
            e.settle();
          }
      },
    );
  }

  /**
   * The keyframe frame `frame` is fused with, or null (LR alone): its own keyframe or the newest
   * older one that is usable, with the frame's field carried to it. Rejects with the encoder's
   * error when encoding failed, with ERR_CLOSED when the table is closed while it waits.
   *
   * Without `delay`, usable means ready now: the asynchronous schedule does not wait, unless
   * `maxDistance` is set and the newest ready keyframe is further back than that (or there is
   * none yet): the frame then waits for the newest keyframe being encoded that is not later
   * than it. With `delay` d, keyframe K is usable from frame K + d on, and that frame waits for
   * it: the schedule no longer depends on timing (d = 0 is the synchronous schedule's choice).
   *
   * `across` says how a field crosses a keyframe: 'bridge' (default, above), 'zero-motion' (the
   * field to the frame's own keyframe is used as it is, as if nothing moved since the older
   * one), or 'lr' (no fusion across a keyframe: the LR branch alone until the frame's own
   * keyframe is ready). The last two exist to measure the first (bench/staleness.js).
   */
  async choose(frame: VideoFrame, options: ChooseOptions = {}): Promise<KeyframeChoice | null> {
    const { delay, maxDistance, across = 'bridge' } = options;
    this.#check();
    const own = this.get(frame.keyframeIndex) ?? null;
    let entry = own;
    if (delay !== undefined) {
      while (entry && (entry.index + delay > frame.index || entry.state === 'skipped')) entry = entry.previous;
      if (entry) await entry.settled;
      this.#check();
    } else {
      for (;;) {
        entry = own;
        while (entry && entry.state !== 'ready') entry = entry.previous;
        if (maxDistance === undefined || (entry && frame.index - entry.index <= maxDistance)) break;
        let pending = own;
        while (pending && pending.state !== 'waiting' && pending.state !== 'encoding') pending = pending.previous;
        if (!pending || (entry && pending.index < entry.index)) break; // nothing newer will come
        await pending.settled;
        this.#check();
      }
    }
    if (!entry || entry.state !== 'ready') return null;
    let motion = frame.motion;
    if (!motion) return null;
    for (let k = own!; k !== entry; k = k.previous!) {
      if (across === 'lr' || !k.bridge) return null;
      if (across === 'bridge') motion = composeMotion(motion, k.bridge);
    }
    return { entry, distance: frame.index - entry.index, motion };
  }

  #check(): void {
    const failure = this.#failure;
    if (failure) throw failure;
    if (this.#closed) throw new ArSegError(ErrorCodes.CLOSED, 'the segmentation was closed');
  }

  /**
   * Drops what no later frame can use: every keyframe older than `index` (frames come in
   * order, so once a frame has used keyframe `index`, none will use an older one), and the
   * HR feature of keyframes before `frameIndex` (only a keyframe's own frame decodes it).
   */
  forget(index: number, frameIndex: number): void {
    let first = this.#entries.findIndex((e) => e.index >= index);
    if (first < 0) first = this.#entries.length;
    this.#entries.splice(0, first);
    if (this.#entries.length) this.#entries[0].previous = null;
    for (const e of this.#entries) if (e.index < frameIndex && e.prepared) e.feature = null;
  }

  /** Keyframes held now (for tests and stats). */
  get size(): number {
    return this.#entries.length;
  }

  /** Stops encoding; waiting choose() calls reject with ERR_CLOSED. */
  close(): void {
    this.#closed = true;
    for (const e of this.#entries) {
      e.tensor = null;
      e.settle();
    }
    this.#entries.length = 0;
  }
}
