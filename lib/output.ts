/**
 * Writing results: every output file is written atomically (atomic-write.ts), and a file-system
 * failure on the output (a directory that is a file, a file that is a directory, no permission,
 * a read-only or full disk) is an ERR_OUTPUT naming the path and the operating system's reason,
 * not an internal error. Commands check their output directory before the model loads, so that
 * a wrong --out fails in a moment rather than after the model loaded.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { writeFileAtomic, temporaryName } from './atomic-write';
import { ArSegError, ErrorCodes, toArSegError } from './errors';

/** What each operating-system code means for an output, in a user's words. */
const REASONS: Record<string, string> = {
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  ENOTDIR: 'a component of the path is a file, not a directory',
  EISDIR: 'it is a directory',
  EEXIST: 'a file is in the way (a directory was expected)',
  ENOSPC: 'no space left on the device',
  EDQUOT: 'disk quota exceeded',
  EROFS: 'read-only file system',
  ENOENT: 'a directory on the path does not exist',
  ENAMETOOLONG: 'the name is too long',
  EMFILE: 'too many open files',
  ENFILE: 'too many open files in the system',
  EFBIG: 'the file is too large',
  EIO: 'input/output error',
  ELOOP: 'too many symbolic links',
};

/**
 * The coded error for a failure writing `file`: ERR_OUTPUT (with `path` and `systemCode`) for an
 * operating-system error, ERR_OUT_OF_MEMORY for ENOMEM, anything else as toArSegError makes it.
 */
export function outputError(err: unknown, file: string): ArSegError {
  if (err instanceof ArSegError) return err;
  const code = (err as NodeJS.ErrnoException | null)?.code;
  if (code === 'ENOMEM')
    return new ArSegError(ErrorCodes.OUT_OF_MEMORY, `writing ${file}: out of memory`, { cause: err });
  if (typeof code === 'string' && /^E[A-Z0-9]+$/.test(code)) {
    const reason = REASONS[code] ?? (err as Error).message;
    return new ArSegError(ErrorCodes.OUTPUT, `cannot write ${file}: ${reason} (${code})`, {
      path: file,
      systemCode: code,
      cause: err,
    });
  }
  return toArSegError(err);
}

/** Writes `data` to `file` atomically; ERR_OUTPUT on a file-system failure. */
export async function writeOutput(file: string, data: string | Uint8Array): Promise<void> {
  try {
    await writeFileAtomic(file, data);
  } catch (err) {
    throw outputError(err, file);
  }
}

/**
 * Creates `dir` (and `subdirs` inside it) and proves it writable by creating and removing a
 * file in each: ERR_OUTPUT at once when it cannot be. Returns the absolute directory.
 */
export async function prepareOutputDir(dir: string, subdirs: string[] = []): Promise<string> {
  const root = path.resolve(dir);
  for (const d of [root, ...subdirs.map((s) => path.join(root, s))]) {
    try {
      await fs.mkdir(d, { recursive: true });
    } catch (err) {
      throw outputError(err, d);
    }
    const probe = temporaryName(path.join(d, 'write-check'));
    try {
      await (await fs.open(probe, 'wx')).close();
    } catch (err) {
      throw outputError(err, d);
    } finally {
      await fs.rm(probe, { force: true }).catch(() => undefined);
    }
  }
  return root;
}
