/**
 * A worker's loaded models, kept from job to job (loading a bundle opens and dry-runs its ONNX
 * graphs: seconds for a full-size model). One ArSeg serves one job at a time, so a worker with
 * concurrency N holds up to N per bundle. A bundle is identified by its content hash: when the
 * directory's content no longer matches the hash a job was submitted with, the job fails with
 * ERR_BUNDLE rather than run another model under the same id.
 */
import { ArSeg } from '../pipeline';
import type { ExecutionDevice } from '../bundle';
import { ArSegError, ErrorCodes } from '../errors';
import { hashBundle } from './content-hash';

interface Entry {
  hash: string;
  seg: ArSeg;
  busy: boolean;
}

export class ModelPool {
  readonly device: ExecutionDevice;
  /** ONNX Runtime intra-op threads per loaded model (undefined: all cores). */
  readonly threads: number | undefined;
  /** At most this many idle models are kept. */
  readonly capacity: number;
  #entries: Entry[] = [];
  #closed = false;

  constructor(o: { device: ExecutionDevice; threads?: number; capacity: number }) {
    this.device = o.device;
    this.threads = o.threads;
    this.capacity = Math.max(1, o.capacity);
  }

  /** A free ArSeg of the bundle at `dir` whose content hash is `hash`; loaded when none is free. */
  async acquire(dir: string, hash: string): Promise<ArSeg> {
    if (this.#closed) throw new ArSegError(ErrorCodes.CLOSED, 'the worker is closing');
    const free = this.#entries.find((e) => !e.busy && e.hash === hash);
    if (free) {
      free.busy = true;
      return free.seg;
    }
    const actual = (await hashBundle(dir)).hash;
    if (actual !== hash)
      throw new ArSegError(
        ErrorCodes.BUNDLE,
        `${dir}: the model bundle changed since the job was submitted (its content hash differs): submit again`,
      );
    // Make room: idle models of other bundles go first.
    const idle = this.#entries.filter((e) => !e.busy);
    if (this.#entries.length >= this.capacity && idle.length > 0) await this.#drop(idle[0]);
    const seg = await ArSeg.load(dir, { device: this.device, threads: this.threads });
    this.#entries.push({ hash, seg, busy: true });
    return seg;
  }

  /** Gives a model back for the next job. */
  release(seg: ArSeg): void {
    const e = this.#entries.find((x) => x.seg === seg);
    if (e) e.busy = false;
  }

  async #drop(e: Entry): Promise<void> {
    this.#entries = this.#entries.filter((x) => x !== e);
    await e.seg.close();
  }

  /** Closes every model (after the last job). */
  async close(): Promise<void> {
    this.#closed = true;
    const all = this.#entries;
    this.#entries = [];
    for (const e of all) await e.seg.close();
  }
}
