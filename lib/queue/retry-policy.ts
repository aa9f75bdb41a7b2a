/**
 * Which failures a job retries. A coded input error (the clip, its labels or the model bundle is
 * missing, damaged or unsupported) fails the same way on every machine: it is not retried and
 * ends the job in BullMQ's failed state with its code and message. Anything else (Redis or the
 * file system failing, a GPU missing on this machine, out of memory, an unexpected error) is
 * retried with exponential backoff, on whichever worker takes it next.
 */
import { ArSegError, ErrorCode, toArSegError } from '../errors';

export const INPUT_ERROR_CODES: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'ERR_INVALID_ARG',
  'ERR_NOT_FOUND',
  'ERR_EMPTY_INPUT',
  'ERR_INVALID_DATA',
  'ERR_UNSUPPORTED_PROTOCOL',
  'ERR_NO_VIDEO_STREAM',
  'ERR_UNSUPPORTED_CODEC',
  'ERR_UNSUPPORTED_FORMAT',
  'ERR_NO_MOTION_VECTORS',
  'ERR_DECODE',
  'ERR_TRUNCATED',
  'ERR_INPUT_TOO_LARGE',
  // Noise that a weak format probe takes for a stream fails on reading: a property of the bytes.
  'ERR_READ',
  'ERR_BUNDLE',
  'ERR_LABELS',
  'ERR_SHAPE',
  'ERR_UNSUPPORTED',
]);

/** True when retrying cannot help (see INPUT_ERROR_CODES). */
export function isInputError(err: unknown): boolean {
  return err instanceof ArSegError && INPUT_ERROR_CODES.has(err.code);
}

/**
 * A failure as BullMQ stores it (the job's failedReason): 'CODE: message'. Errors without a
 * code of ours (file system, Redis) keep their Node code when they have one.
 */
export function encodeFailure(err: unknown): string {
  if (err instanceof ArSegError) return `${err.code}: ${err.message}`;
  const nodeCode = (err as { code?: unknown })?.code;
  if (typeof nodeCode === 'string' && /^E[A-Z0-9_]+$/.test(nodeCode)) return `${nodeCode}: ${(err as Error).message}`;
  const e = toArSegError(err);
  return `${e.code}: ${e.message}`;
}

/**
 * The code and message of a stored failure ('ERR_X: message'). The code is null for BullMQ's own
 * reasons (e.g. 'job stalled more than allowable limit': workers died on it repeatedly).
 */
export function decodeFailure(reason: string | undefined | null): { code: string | null; message: string } {
  const text = reason ?? '';
  const m = /^(E[A-Z0-9_]+): ([\s\S]*)$/.exec(text);
  return m ? { code: m[1], message: m[2] } : { code: null, message: text || 'no reason recorded' };
}
