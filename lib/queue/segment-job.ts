/**
 * A segmentation job: what `ar-seg segment` writes (lib/segment-to-dir.ts: labels/, overlays/,
 * summary.json), into the execution's temporary directory, with the worker's loaded model.
 */
import * as path from 'node:path';
import type { ArSeg } from '../pipeline';
import { writeFileAtomic } from '../atomic-write';
import { segmentToDir, SegmentSummary } from '../segment-to-dir';
import type { SegmentJobData } from './jobs';
import { checkStop, JobContext } from './job-context';

/** A segmentation job's result (in its manifest): summary.json's content. */
export type SegmentJobResult = SegmentSummary;

/**
 * Segments the job's clip into `dir`; `finalDir` is where the directory will be published
 * (summary.json's `out` names it).
 */
export async function runSegmentJob(
  seg: ArSeg,
  data: SegmentJobData,
  dir: string,
  finalDir: string,
  ctx: JobContext,
): Promise<SegmentJobResult> {
  const o = data.options;
  const summary = await segmentToDir(
    seg,
    data.clip.video,
    {
      out: dir,
      mode: o.mode,
      scale: o.scale,
      keyframes: o.keyframes,
      overlay: o.overlay,
      flops: o.flops,
      onProgress: ctx.onProgress,
    },
    () => checkStop(ctx),
  );
  summary.out = finalDir;
  await writeFileAtomic(path.join(dir, 'summary.json'), JSON.stringify(summary, null, 2) + '\n');
  return summary;
}
