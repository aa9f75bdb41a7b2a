/**
 * A queued job: one clip, segmented or evaluated, with everything a worker on another machine
 * needs (absolute paths on storage every machine sees, and the content hashes it checks them
 * against), and its id, derived from what it computes.
 */
import type { SegmentMode } from '../pipeline';
import { hashJson } from './content-hash';

/** Bumped when a job's outputs change meaning: jobs of another format are other jobs. */
export const JOB_FORMAT = 1;

export type JobKind = 'segment' | 'eval';

/** What a segmentation job writes (as `ar-seg segment`). Defaults are resolved at submit. */
export interface SegmentJobOptions {
  mode: SegmentMode;
  /** LR scale per side. */
  scale?: number;
  /** 'gop', 'adaptive' or an interval L. */
  keyframes: 'gop' | 'adaptive' | number;
  /** Colour overlays next to the label PNGs. */
  overlay: boolean;
  /** GMAC per frame in summary.json. */
  flops: boolean;
}

/** The protocol of an evaluation job (as `ar-seg eval`). */
export interface EvalJobOptions {
  /** In the order hr, lr, ar. */
  modes: SegmentMode[];
  /** Keyframe interval L. */
  interval?: number;
  /** LR scale per side. */
  scale?: number;
}

interface JobDataBase {
  format: typeof JOB_FORMAT;
  /** The directory under which the job's own directory (named by its id) is written. */
  out: string;
  model: { dir: string; hash: string };
  /** The clip as the submitter named it (as `ar-seg eval` names it), its video and the video's hash. */
  clip: { name: string; video: string; hash: string };
}

export interface SegmentJobData extends JobDataBase {
  kind: 'segment';
  options: SegmentJobOptions;
}

export interface EvalJobData extends JobDataBase {
  kind: 'eval';
  options: EvalJobOptions;
  /** The clip's label directory, the hash of its label files (names and bytes) and their count. */
  labels: { dir: string; hash: string; files: number };
}

export type JobData = SegmentJobData | EvalJobData;

/**
 * The job's id: its kind and a hash of the clip's content, the labels' content, the model's
 * content and the options. Paths and the output directory do not count: the same clip under
 * another name, submitted again, is the same job and is not computed again.
 */
export function jobId(
  d:
    | Pick<SegmentJobData, 'kind' | 'model' | 'clip' | 'options'>
    | Pick<EvalJobData, 'kind' | 'model' | 'clip' | 'options' | 'labels'>,
): string {
  const identity = {
    format: JOB_FORMAT,
    kind: d.kind,
    clip: d.clip.hash,
    labels: d.kind === 'eval' ? d.labels.hash : undefined,
    model: d.model.hash,
    options: d.options,
  };
  return `${d.kind}-${hashJson(identity).slice(0, 32)}`;
}

/** True for an id jobId() makes (checked before it names a directory). */
export function isJobId(id: unknown): id is string {
  return typeof id === 'string' && /^(segment|eval)-[0-9a-f]{32}$/.test(id);
}
