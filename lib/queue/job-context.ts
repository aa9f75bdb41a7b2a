/** What a running job gets from its worker: progress reporting and the signal to stop. */
export interface JobContext {
  /** Aborted when the worker hands the job back (SIGTERM past its grace period, or a second signal). */
  signal?: AbortSignal;
  /** Frames done and expected (null when the container does not say). */
  onProgress: (done: number, total: number | null) => void;
}

/** Throws when the job is to stop (checked between frames, so it stops within one frame). */
export function checkStop(ctx: JobContext): void {
  if (ctx.signal?.aborted) throw new Error('handed back');
}
