/** A progress bar on stderr when it is a terminal (cli-progress); silent otherwise. */
import { SingleBar, Presets } from 'cli-progress';

export interface Progress {
  update(done: number): void;
  stop(): void;
}

export function progressBar(label: string, total: number | null, enabled: boolean): Progress {
  if (!enabled || !process.stderr.isTTY) return { update() {}, stop() {} };
  const bar = new SingleBar(
    {
      stream: process.stderr,
      format: total
        ? `${label} [{bar}] {percentage}% | {value}/{total} frames | {fps} fps | eta {eta_formatted}`
        : `${label} {value} frames | {fps} fps`,
      hideCursor: true,
      clearOnComplete: false,
    },
    Presets.shades_classic,
  );
  const start = Date.now();
  bar.start(total ?? 0, 0, { fps: '0' });
  return {
    update(done) {
      const secs = (Date.now() - start) / 1000;
      bar.update(done, { fps: secs > 0 ? (done / secs).toFixed(1) : '0' });
    },
    stop() {
      bar.stop();
    },
  };
}
