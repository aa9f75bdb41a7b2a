/**
 * `ar-seg eval <video-or-dataset...> [--model DIR] [--labels DIR] [--split test] [--modes hr,lr,ar]
 * [--interval L] [--scale S] [--keyframe-delay N]`: lib/evaluate.ts with a progress bar.
 */
import type { ExecutionDevice } from '../bundle';
import { evaluate, EvalReport } from '../evaluate';
import type { SegmentMode } from '../pipeline';
import type { MotionFill, MotionSourceOption } from '../frame';
import { progressBar } from './progress';

export interface EvalCliOptions {
  /** The model bundle directory. */
  model: string;
  labels?: string;
  split?: string;
  modes?: SegmentMode[];
  interval?: number;
  scale?: number;
  device?: ExecutionDevice;
  keyframeDelay?: number;
  motionSource?: MotionSourceOption;
  motionFill?: MotionFill;
  progress: boolean;
}

export async function runEval(inputs: string[], o: EvalCliOptions): Promise<EvalReport> {
  let bar: ReturnType<typeof progressBar> | null = null;
  try {
    return await evaluate(inputs, {
      ...o,
      onProgress: (done, total) => {
        bar ??= progressBar(`eval (${(o.modes ?? ['hr', 'lr', 'ar']).join(', ')})`, total, o.progress);
        bar.update(done);
      },
    });
  } finally {
    (bar as ReturnType<typeof progressBar> | null)?.stop();
  }
}
