/**
 * Errors with stable codes. Every failure the package reports, native or not, is an
 * `ArSegError` whose `code` is one of `ErrorCode`; scripts branch on `code`, never on messages.
 */

export const ErrorCodes = {
  /** An argument or option has the wrong type or is out of range. */
  INVALID_ARG: 'ERR_INVALID_ARG',
  /** The input file does not exist. */
  NOT_FOUND: 'ERR_NOT_FOUND',
  /** The input file is empty, or its video stream holds no frames. */
  EMPTY_INPUT: 'ERR_EMPTY_INPUT',
  /** The input is not a media file libavformat recognises, or is damaged beyond reading. */
  INVALID_DATA: 'ERR_INVALID_DATA',
  /** The input could not be opened for another reason (permissions, network...). */
  OPEN: 'ERR_OPEN',
  /** No libavformat protocol handles the URL's scheme. */
  UNSUPPORTED_PROTOCOL: 'ERR_UNSUPPORTED_PROTOCOL',
  /** The input has no video stream (e.g. audio only). */
  NO_VIDEO_STREAM: 'ERR_NO_VIDEO_STREAM',
  /** No decoder for the codec, or the decoder cannot be opened. */
  UNSUPPORTED_CODEC: 'ERR_UNSUPPORTED_CODEC',
  /** The decoded pixel format cannot be converted to RGB. */
  UNSUPPORTED_FORMAT: 'ERR_UNSUPPORTED_FORMAT',
  /** Motion was asked for on a codec whose libavcodec decoder exports none (HEVC, VP9, AV1...). */
  NO_MOTION_VECTORS: 'ERR_NO_MOTION_VECTORS',
  /** Strict mode: the decoder rejected a packet. `framesDecoded` says how far it got. */
  DECODE: 'ERR_DECODE',
  /** The stream ends before the frames its container declares. `framesDecoded` is set. */
  TRUNCATED: 'ERR_TRUNCATED',
  /** Reading the input failed part-way. `framesDecoded` is set. */
  READ: 'ERR_READ',
  /**
   * The input's pictures are larger than the pixel limit (option limitInputPixels), stated by
   * its header or met part-way (then `framesDecoded` is set).
   */
  INPUT_TOO_LARGE: 'ERR_INPUT_TOO_LARGE',
  /** A model bundle is missing a file, has an invalid manifest, or its graphs disagree. */
  BUNDLE: 'ERR_BUNDLE',
  /** Evaluation labels are missing, unreadable, of the wrong size, hold a value that is neither a class nor ignored, or disagree with the video's frame count. */
  LABELS: 'ERR_LABELS',
  /** Tensor shapes or sizes disagree (features, motion, weights). */
  SHAPE: 'ERR_SHAPE',
  /** CUDA was asked for but this build has no CUDA kernels or the machine no usable GPU. */
  CUDA_UNAVAILABLE: 'ERR_CUDA_UNAVAILABLE',
  /** A CUDA call failed. */
  CUDA: 'ERR_CUDA',
  /** A valid request this implementation does not support (e.g. a CUDA window over 11). */
  UNSUPPORTED: 'ERR_UNSUPPORTED',
  /** The reader or decoder was closed. */
  CLOSED: 'ERR_CLOSED',
  /** An operation was interrupted by close(). */
  ABORTED: 'ERR_ABORTED',
  /** A second native operation was started while one was in flight (internal misuse). */
  BUSY: 'ERR_BUSY',
  /** read() before open() on the native object (internal misuse). */
  NOT_OPEN: 'ERR_NOT_OPEN',
  /** The native addon could not be loaded. */
  ADDON_LOAD: 'ERR_ADDON_LOAD',
  /** An allocation failed (native, ONNX Runtime or JavaScript): the input or the model needs more memory than there is. */
  OUT_OF_MEMORY: 'ERR_OUT_OF_MEMORY',
  /**
   * An output file or directory cannot be written (EACCES, ENOTDIR, EEXIST, EPERM, EISDIR, ENOSPC,
   * EROFS...): `path` names it and `systemCode` gives the operating system's code.
   */
  OUTPUT: 'ERR_OUTPUT',
  /** An unexpected native failure: a bug, please report it. */
  NATIVE: 'ERR_NATIVE',
  /** The job queue's Redis cannot be reached or refused a command (ar-seg queue, worker). */
  QUEUE: 'ERR_QUEUE',
  /** No run with this id in the queue's Redis. */
  RUN_NOT_FOUND: 'ERR_RUN_NOT_FOUND',
  /** A queued run still has jobs waiting or running: its results are not complete yet. */
  RUN_UNFINISHED: 'ERR_RUN_UNFINISHED',
  /** A queued run has failed jobs (each with its own code): its results would be incomplete. */
  RUN_FAILED: 'ERR_RUN_FAILED',
} as const;

/** One of the stable error codes of `ErrorCodes`. */
export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

/** What an `ArSegError` carries besides its code and message. */
export interface ArSegErrorOptions {
  /** For errors part-way through a stream: frames delivered before it. */
  framesDecoded?: number;
  /** ERR_OUTPUT: the file or directory that could not be written. */
  path?: string;
  /** ERR_OUTPUT: the operating system's error code (EACCES, ENOSPC...). */
  systemCode?: string;
  /** The error this one reports (a native or system error). */
  cause?: unknown;
}

/**
 * The one error type of the package: every failure it reports, native or not, is an
 * `ArSegError` with a stable `code` (the CLI maps codes to exit codes).
 */
export class ArSegError extends Error {
  /** What went wrong, as one of `ErrorCodes`: branch on this, never on the message. */
  readonly code: ErrorCode;
  /** For errors part-way through a stream: frames delivered before it. */
  readonly framesDecoded?: number;
  /** ERR_OUTPUT: the file or directory that could not be written. */
  readonly path?: string;
  /** ERR_OUTPUT: the operating system's error code (EACCES, ENOSPC...). */
  readonly systemCode?: string;

  constructor(code: ErrorCode, message: string, options: ArSegErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'ArSegError';
    this.code = code;
    if (options.framesDecoded !== undefined) this.framesDecoded = options.framesDecoded;
    if (options.path !== undefined) this.path = options.path;
    if (options.systemCode !== undefined) this.systemCode = options.systemCode;
  }
}

/**
 * Allocation failures as JavaScript and ONNX Runtime report them: V8's RangeErrors for buffers
 * it cannot allocate, ONNX Runtime's allocator messages, std::bad_alloc text.
 */
const OUT_OF_MEMORY_MESSAGE =
  /Array buffer allocation failed|Failed to allocate memory|bad_alloc|out of memory|Cannot allocate memory/i;

const KNOWN = new Set<string>(Object.values(ErrorCodes));

/** Turns whatever was thrown (native errors carry `code`) into an ArSegError. */
export function toArSegError(err: unknown): ArSegError {
  if (err instanceof ArSegError) return err;
  if (err instanceof Error) {
    const raw = (err as { code?: unknown }).code;
    let code: ErrorCode = typeof raw === 'string' && KNOWN.has(raw) ? (raw as ErrorCode) : ErrorCodes.NATIVE;
    if (code === ErrorCodes.NATIVE && (raw === 'ENOMEM' || OUT_OF_MEMORY_MESSAGE.test(err.message)))
      code = ErrorCodes.OUT_OF_MEMORY;
    const frames = (err as { framesDecoded?: unknown }).framesDecoded;
    return new ArSegError(code, err.message, {
      framesDecoded: typeof frames === 'number' ? frames : undefined,
      cause: err,
    });
  }
  return new ArSegError(ErrorCodes.NATIVE, String(err));
}

export function invalidArg(message: string): ArSegError {
  return new ArSegError(ErrorCodes.INVALID_ARG, message);
}
