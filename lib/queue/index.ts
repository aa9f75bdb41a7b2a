/**
 * Many videos on many machines: segmentation and evaluation jobs on a BullMQ queue in Redis.
 * `submit` enqueues one job per clip in a run; `Worker` runs jobs; `status` and `results` read a
 * run. See docs/queue.md.
 */
export { submit } from './submit';
export type { SubmitOptions, SubmitResult } from './submit';
export { Worker } from './worker';
export type {
  WorkerOptions,
  WorkerEvent,
  WorkerReadyEvent,
  JobEventBase,
  JobStartEvent,
  JobDoneEvent,
  JobFailedEvent,
  JobStoppedEvent,
  WorkerErrorEvent,
  WorkerClosingEvent,
  WorkerClosedEvent,
  JobReturn,
} from './worker';
export { status, waitForRun } from './status';
export type { RunStatus, JobStatus, JobStateName, JobProgress, JobFailure } from './status';
export { results } from './results';
export type { ResultsOptions, RunResults, EvalRunResults, SegmentRunResults, SegmentClipResult } from './results';
export { DEFAULT_QUEUE_NAME } from './connection';
export type { QueueTarget } from './connection';
export { jobId } from './jobs';
export type { JobData, JobKind, SegmentJobData, EvalJobData, SegmentJobOptions, EvalJobOptions } from './jobs';
export { readJobManifest, jobDir } from './job-output';
export type { JobManifest } from './job-output';
export type { EvalJobResult } from './eval-job';
export type { SegmentJobResult } from './segment-job';
export type { RunRecord, RunClip } from './run';
