/**
 * `ar-seg segment VIDEO --model DIR --out DIR [--mode ar|hr|lr] [--scale S] [--keyframes gop|L]
 * [--overlay]`: one palette PNG of labels per frame (labels/<i>.png), optional colour overlays
 * (overlays/<i>.png), and summary.json: frames, keyframes, fps, time per stage, GMAC per frame.
 * The writing is lib/segment-to-dir.ts (shared with the queue's segmentation jobs); this loads
 * the model and shows the progress bar.
 */
import { ArSeg, SegmentResult } from '../pipeline';
import type { Bundle } from '../bundle';
import { segmentToDir, SegmentSummary, SegmentToDirOptions } from '../segment-to-dir';
import { prepareOutputDir } from '../output';
import { progressBar } from './progress';

export type { SegmentSummary } from '../segment-to-dir';

export interface SegmentCliOptions extends Omit<SegmentToDirOptions, 'onProgress'> {
  model: string;
  progress: boolean;
  /** Where the networks run. Default 'cpu'. */
  device?: 'cpu' | 'cuda';
}

/** `onResult` sees each frame's result after its files are written (ar-seg demo scores them). */
export async function runSegment(
  source: string,
  o: SegmentCliOptions,
  onResult?: (result: SegmentResult, bundle: Bundle) => void | Promise<void>,
): Promise<SegmentSummary> {
  // the output directory first: a wrong --out fails before the model loads
  await prepareOutputDir(o.out, o.overlay ? ['labels', 'overlays'] : ['labels']);
  const seg = await ArSeg.load(o.model, { device: o.device });
  let bar: ReturnType<typeof progressBar> | null = null;
  try {
    return await segmentToDir(
      seg,
      source,
      {
        ...o,
        onProgress: (done, total) => {
          bar ??= progressBar(`segment (${o.mode})`, total, o.progress);
          bar.update(done);
        },
      },
      onResult,
    );
  } finally {
    (bar as ReturnType<typeof progressBar> | null)?.stop();
    await seg.close();
  }
}
