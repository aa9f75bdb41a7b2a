/**
 * A job's outputs on disk: OUT/<jobId>/, holding what the job wrote and manifest.json, which
 * says the directory is complete.
 *
 * An execution writes into a temporary directory OUT/.<jobId>.<token>.tmp, flushes every file,
 * writes the manifest last (writeFileAtomic) and renames the directory into place: a rename is
 * atomic within a file system, so a reader sees no result or a whole one, whatever is killed
 * when. A directory without a valid manifest is treated as absent (and replaced). At-least-once
 * delivery may run a job twice: the execution that finishes second finds the first one's result
 * in place, keeps it and discards its own, so one complete result remains. A new execution
 * removes the temporary directories of earlier ones of its job (their workers died or lost the
 * job's lock: BullMQ hands a job to one worker at a time).
 */
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { writeFileAtomic } from '../atomic-write';
import type { JobKind } from './jobs';

export const JOB_MANIFEST = 'manifest.json';
export const MANIFEST_FORMAT = 1;

/** The manifest of a finished job (OUT/<jobId>/manifest.json). */
export interface JobManifest<R = unknown> {
  format: typeof MANIFEST_FORMAT;
  jobId: string;
  kind: JobKind;
  clip: { name: string; video: string; hash: string };
  labels?: { dir: string; hash: string; files: number };
  model: { dir: string; hash: string; name: string };
  options: unknown;
  /** The job's result: a segmentation's summary, or an evaluation's confusion matrices. */
  result: R;
  /** The execution that wrote this result. */
  execution: { worker: string; attempt: number; startedAt: string; finishedAt: string; seconds: number };
}

/** The directory of a job's result. */
export function jobDir(out: string, jobId: string): string {
  return path.join(out, jobId);
}

function isManifest(m: unknown, jobId: string): m is JobManifest {
  const j = m as JobManifest;
  return (
    j !== null &&
    typeof j === 'object' &&
    j.format === MANIFEST_FORMAT &&
    j.jobId === jobId &&
    (j.kind === 'segment' || j.kind === 'eval') &&
    j.result !== null &&
    typeof j.result === 'object' &&
    typeof j.execution === 'object'
  );
}

/** The job's manifest when OUT/<jobId> holds a complete result; null otherwise. */
export async function readJobManifest(out: string, jobId: string): Promise<JobManifest | null> {
  let text: string;
  try {
    text = await fs.readFile(path.join(jobDir(out, jobId), JOB_MANIFEST), 'utf8');
  } catch {
    return null;
  }
  try {
    const m: unknown = JSON.parse(text);
    return isManifest(m, jobId) ? m : null;
  } catch {
    return null;
  }
}

const tempPattern = (jobId: string) => new RegExp(`^\\.${jobId}\\.[0-9a-f]+\\.(tmp|stale)$`);

/**
 * Flushes every file and directory under `dir` (then a rename publishes data that is on disk).
 * Several at a time: the file system commits concurrent flushes together.
 */
async function syncTree(dir: string): Promise<void> {
  const files: string[] = [];
  const dirs: string[] = [];
  const walk = async (d: string) => {
    for (const entry of await fs.readdir(d, { withFileTypes: true })) {
      const p = path.join(d, entry.name);
      if (entry.isDirectory()) await walk(p);
      else if (entry.isFile()) files.push(p);
    }
    dirs.push(d);
  };
  await walk(dir);
  let next = 0;
  const flushFiles = async () => {
    while (next < files.length) await syncPath(files[next++]);
  };
  await Promise.all(Array.from({ length: Math.min(16, files.length) }, flushFiles));
  for (const d of dirs) await syncPath(d);
}

async function syncPath(p: string): Promise<void> {
  const h = await fs.open(p, 'r');
  try {
    await h.sync();
  } finally {
    await h.close();
  }
}

/** One execution's temporary output directory, published into place at the end. */
export class JobOutput {
  readonly out: string;
  readonly jobId: string;
  /** The temporary directory the execution writes into. */
  readonly dir: string;
  #done = false;

  private constructor(out: string, jobId: string, dir: string) {
    this.out = out;
    this.jobId = jobId;
    this.dir = dir;
  }

  /**
   * Removes earlier executions' temporary directories of this job and makes a fresh one. The
   * output directory must exist (submit made it): one missing here means this machine does not
   * see the shared storage, and writing a local directory would lose the result (ENOENT, retried
   * on another worker).
   */
  static async begin(out: string, jobId: string): Promise<JobOutput> {
    const st = await fs.stat(out).catch(() => null);
    if (!st?.isDirectory())
      throw Object.assign(
        new Error(`${out}: the output directory is not on this machine (is the shared storage mounted?)`),
        { code: 'ENOENT' },
      );
    const stale = (await fs.readdir(out)).filter((name) => tempPattern(jobId).test(name));
    for (const name of stale) await fs.rm(path.join(out, name), { recursive: true, force: true });
    const dir = path.join(out, `.${jobId}.${randomBytes(6).toString('hex')}.tmp`);
    await fs.mkdir(dir);
    return new JobOutput(out, jobId, dir);
  }

  /**
   * Writes the manifest and renames the directory into place. When another execution published
   * first, its result is kept and returned (`reused`), and this one's is removed.
   */
  async publish<R>(manifest: JobManifest<R>): Promise<{ manifest: JobManifest; reused: boolean }> {
    const final = jobDir(this.out, this.jobId);
    await writeFileAtomic(path.join(this.dir, JOB_MANIFEST), JSON.stringify(manifest, null, 1) + '\n');
    await syncTree(this.dir);
    for (let tries = 0; ; tries++) {
      try {
        await fs.rename(this.dir, final);
        this.#done = true;
        await syncPath(this.out);
        return { manifest, reused: false };
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if ((code !== 'ENOTEMPTY' && code !== 'EEXIST') || tries >= 3) throw err;
      }
      const existing = await readJobManifest(this.out, this.jobId);
      if (existing) {
        await this.discard();
        return { manifest: existing, reused: true };
      }
      // A directory without a valid manifest: not a result. Moved aside (one rename), then removed.
      const aside = path.join(this.out, `.${this.jobId}.${randomBytes(6).toString('hex')}.stale`);
      await fs.rename(final, aside).catch(() => undefined);
      await fs.rm(aside, { recursive: true, force: true });
    }
  }

  /** Removes the temporary directory (a failed or handed-back execution). */
  async discard(): Promise<void> {
    if (this.#done) return;
    this.#done = true;
    await fs.rm(this.dir, { recursive: true, force: true });
  }
}
