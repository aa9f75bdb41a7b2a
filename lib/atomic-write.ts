/**
 * Writing outputs so that a reader never sees half a file: each file is written under a
 * temporary name in the same directory, flushed to disk, and renamed into place (rename is atomic
 * within a file system). A crash, a full disk or a killed process leaves the previous file or no
 * file, never a truncated one; the temporary file is removed on failure.
 *
 * Used by every command that writes results (segment, eval --out, mvs --dump, the queue's
 * workers), so that at-least-once execution and interrupted runs leave only complete outputs.
 */
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';

/** The temporary name of `file` while it is written: hidden, in the same directory, unique. */
export function temporaryName(file: string): string {
  return path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
}

/**
 * A test hook, never set in use: ARSEG_TEST_DISK_BYTES=N makes this process's atomic writes behave
 * as on a disk with N bytes free. The write that does not fit puts what fits into its temporary
 * file and fails with ENOSPC, as write(2) does on a full disk; so the tests can check, on any
 * machine and without mounting a small file system, that a full disk leaves no partial output.
 */
let diskBytesLeft: number | null = null;
{
  const budget = process.env.ARSEG_TEST_DISK_BYTES;
  if (budget !== undefined && budget !== '' && Number.isSafeInteger(Number(budget)) && Number(budget) >= 0)
    diskBytesLeft = Number(budget);
}

async function writeAll(handle: fs.FileHandle, data: string | Uint8Array, file: string): Promise<void> {
  if (diskBytesLeft === null) {
    await handle.writeFile(data);
    return;
  }
  const bytes = typeof data === 'string' ? Buffer.from(data) : data;
  if (bytes.length > diskBytesLeft) {
    await handle.writeFile(bytes.subarray(0, diskBytesLeft));
    diskBytesLeft = 0;
    throw Object.assign(new Error(`ENOSPC: no space left on device, write '${file}'`), {
      code: 'ENOSPC',
      errno: -28,
      syscall: 'write',
      path: file,
    });
  }
  diskBytesLeft -= bytes.length;
  await handle.writeFile(bytes);
}

/** Writes `data` to `file` atomically (temporary name, fsync, rename). */
export async function writeFileAtomic(file: string, data: string | Uint8Array): Promise<void> {
  const tmp = temporaryName(file);
  let handle: fs.FileHandle | null = null;
  try {
    handle = await fs.open(tmp, 'wx', 0o644);
    await writeAll(handle, data, tmp);
    await handle.sync();
    await handle.close();
    handle = null;
    await fs.rename(tmp, file);
  } catch (err) {
    if (handle) await handle.close().catch(() => undefined);
    await fs.rm(tmp, { force: true }).catch(() => undefined);
    throw err;
  }
}
