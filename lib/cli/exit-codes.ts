/** Process exit codes of the `ar-seg` CLI; scripts may rely on them. */
import type { ErrorCode } from '../errors';

export const ExitCodes = {
  OK: 0,
  /** An unexpected failure (a bug). */
  INTERNAL: 1,
  /** Wrong command-line usage or option values. */
  USAGE: 2,
  /** The input cannot be opened or read at all. */
  INPUT: 3,
  /** The stream is damaged part-way; what came before the damage was written. */
  DAMAGED: 4,
  /** The input is valid but unsupported for this command (e.g. no motion vectors in HEVC). */
  UNSUPPORTED: 5,
  /** The model bundle is missing or broken. */
  MODEL: 6,
  /** Evaluation labels are missing or invalid (ar-seg eval, ar-seg demo). */
  LABELS: 7,
  /** An output cannot be written (--out, --dump): a file in the way, no permission, a full or read-only disk. */
  OUTPUT: 8,
  /** Out of memory (a large input or model; see --limit-input-pixels). */
  OUT_OF_MEMORY: 9,
  /** The job queue: Redis unreachable, or no such run (ar-seg queue, worker). */
  QUEUE: 10,
  /** ar-seg queue results: the run has jobs waiting or running; try again later. */
  RUN_UNFINISHED: 11,
  /** ar-seg queue results: the run has failed jobs (ar-seg queue status lists them). */
  RUN_FAILED: 12,
} as const;

export function exitCodeFor(code: ErrorCode): number {
  switch (code) {
    case 'ERR_INVALID_ARG':
      return ExitCodes.USAGE;
    case 'ERR_BUNDLE':
      return ExitCodes.MODEL;
    case 'ERR_LABELS':
      return ExitCodes.LABELS;
    case 'ERR_OUTPUT':
      return ExitCodes.OUTPUT;
    case 'ERR_OUT_OF_MEMORY':
      return ExitCodes.OUT_OF_MEMORY;
    case 'ERR_QUEUE':
    case 'ERR_RUN_NOT_FOUND':
      return ExitCodes.QUEUE;
    case 'ERR_RUN_UNFINISHED':
      return ExitCodes.RUN_UNFINISHED;
    case 'ERR_RUN_FAILED':
      return ExitCodes.RUN_FAILED;
    case 'ERR_NOT_FOUND':
    case 'ERR_EMPTY_INPUT':
    case 'ERR_INVALID_DATA':
    case 'ERR_OPEN':
    case 'ERR_NO_VIDEO_STREAM':
    case 'ERR_UNSUPPORTED_PROTOCOL':
    case 'ERR_INPUT_TOO_LARGE':
      return ExitCodes.INPUT;
    case 'ERR_TRUNCATED':
    case 'ERR_READ':
    case 'ERR_DECODE':
      return ExitCodes.DAMAGED;
    case 'ERR_NO_MOTION_VECTORS':
    case 'ERR_UNSUPPORTED_CODEC':
    case 'ERR_UNSUPPORTED_FORMAT':
    case 'ERR_CUDA_UNAVAILABLE':
    case 'ERR_UNSUPPORTED':
      return ExitCodes.UNSUPPORTED;
    default:
      return ExitCodes.INTERNAL;
  }
}
