/**
 * `ar-seg queue submit|status|results`: runs of segmentation or evaluation jobs on a BullMQ queue
 * in Redis (lib/queue/, docs/queue.md). `ar-seg worker` (worker.ts) runs the jobs.
 *
 *   ar-seg queue submit VIDEO|DIR|DATASET... --redis URL --out DIR [--eval] [options]
 *       prints the run's id on its last line (or JSON with --json)
 *   ar-seg queue status RUN --redis URL [--json] [--wait]
 *   ar-seg queue results RUN --redis URL [--json] [--out FILE] [--partial] [--wait]
 *       an evaluation run: the table of `ar-seg eval` (and its --json); exit 11 while the run is
 *       unfinished, 12 when jobs failed
 */
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import { formatEvalMarkdown } from '../evaluate';
import type { SegmentMode } from '../pipeline';
import { submit } from '../queue/submit';
import { RunStatus, status, waitForRun } from '../queue/status';
import { results } from '../queue/results';
import { DEFAULT_QUEUE_NAME } from '../queue/connection';
import { resolveDefaultModel } from './demo';

/** The option parsers and error exit of cli/index.ts, which every command shares. */
export interface CliShared {
  fail: (err: unknown, json: boolean) => never;
  positiveInt: (name: string, max: number) => (value: string) => number;
  keyframePolicy: (value: string) => 'gop' | 'adaptive' | number;
  scaleValue: (value: string) => number;
  modeValue: (value: string) => SegmentMode;
  modesValue: (value: string) => SegmentMode[];
  deviceValue: (value: string) => 'cpu' | 'cuda';
}

interface Target {
  redis: string;
  queue: string;
}

function targetOptions(cmd: Command): Command {
  return cmd
    .requiredOption('--redis <url>', "the queue's Redis: redis://[user:password@]host:6379[/db], or rediss:// for TLS")
    .option('--queue <name>', "the queue's name (workers must use the same)", DEFAULT_QUEUE_NAME);
}

function nonNegativeInt(name: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`${name} must be a whole number`);
    return n;
  };
}

/** A text bar of `width` characters for a fraction in [0, 1]. */
export function textBar(fraction: number, width = 30): string {
  const filled = Math.round(Math.max(0, Math.min(1, fraction)) * width);
  return `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${(100 * fraction).toFixed(0).padStart(3)}%`;
}

/** The status as people read it: a bar, the counts, running jobs' progress, failures with reasons. */
export function formatStatus(s: RunStatus): string {
  const c = s.counts;
  const lines = [
    `${s.run} (${s.kind}, ${s.total} job${s.total === 1 ? '' : 's'}, queue ${s.queue})${s.finished ? ': finished' : ''}`,
    `${textBar(s.fraction)}  ${c.completed} completed, ${c.active} running, ${c.waiting} waiting, ${c.delayed} waiting to retry, ${c.failed} failed` +
      (c.missing ? `, ${c.missing} missing (submit again)` : ''),
  ];
  for (const j of s.jobs.filter((x) => x.state === 'active'))
    lines.push(
      `  running  ${j.clip}${j.progress ? `: ${j.progress.done}${j.progress.total ? `/${j.progress.total}` : ''} frames` : ''}`,
    );
  for (const j of s.jobs.filter((x) => x.state === 'delayed'))
    lines.push(
      `  retrying ${j.clip} (after ${j.attempts} attempt${j.attempts === 1 ? '' : 's'}): ${j.failure ? `${j.failure.code ?? ''}${j.failure.code ? ': ' : ''}${j.failure.message}` : ''}`,
    );
  for (const j of s.jobs.filter((x) => x.state === 'failed'))
    lines.push(
      `  failed   ${j.clip}: ${j.failure ? `${j.failure.code ?? ''}${j.failure.code ? ': ' : ''}${j.failure.message}` : 'no reason recorded'}`,
    );
  for (const j of s.jobs.filter((x) => x.state === 'missing'))
    lines.push(`  missing  ${j.clip} (${j.id}: not in Redis and no result on disk)`);
  return lines.join('\n') + '\n';
}

export function addQueueCommands(
  program: Command,
  { fail, positiveInt, keyframePolicy, scaleValue, modeValue, modesValue }: CliShared,
): void {
  const queue = program
    .command('queue')
    .description(
      'runs of segmentation or evaluation jobs on a BullMQ queue in Redis, for many machines (docs/queue.md)',
    );

  targetOptions(
    queue
      .command('submit')
      .description(
        'enqueue one job per clip (segmentation, or evaluation with --eval); prints the run id on its last line',
      )
      .argument(
        '<inputs...>',
        'videos, clip directories (video.mp4), datasets (splits.json) or directories of videos, on storage every worker sees',
      ),
  )
    .requiredOption(
      '--out <dir>',
      'output directory (on storage every worker sees): OUT/<job id>/ per clip, OUT/runs/<run>.json',
    )
    .option('--model <dir>', 'a model bundle directory (default: the bundled default model)')
    .option('--eval', "evaluate against the clips' labels (as ar-seg eval) instead of segmenting")
    .option('--mode <mode>', 'segmentation: ar, hr or lr (default ar)', modeValue)
    .option('--scale <s>', "LR scale per side (default: the bundle's)", scaleValue)
    .option(
      '--keyframes <policy>',
      "segmentation: 'gop', 'adaptive' or an interval L (default: the bundle's interval)",
      keyframePolicy,
    )
    .option('--overlay', 'segmentation: colour overlays too')
    .option('--flops', 'segmentation: count GMAC per frame for summary.json (runs each graph once more per job)')
    .option('--labels <dir>', 'evaluation: the label PNGs of a single video (default: labels/ next to it)')
    .option('--split <name>', 'the split of a dataset directory', 'test')
    .option('--modes <list>', 'evaluation: modes, comma-separated (default hr,lr,ar)', modesValue)
    .option(
      '--interval <L>',
      "evaluation: keyframe interval L (default: the bundle's)",
      positiveInt('--interval', 1024),
    )
    .option(
      '--attempts <n>',
      'attempts per job for transient failures (input errors are not retried)',
      positiveInt('--attempts', 100),
      3,
    )
    .option('--backoff <ms>', 'first retry delay in ms, doubled at each retry', nonNegativeInt('--backoff'), 10000)
    .option('--json', 'print the result as JSON')
    .action(
      async (
        inputs: string[],
        opts: Target & {
          out: string;
          model?: string;
          eval?: boolean;
          mode?: SegmentMode;
          scale?: number;
          keyframes?: 'gop' | 'adaptive' | number;
          overlay?: boolean;
          flops?: boolean;
          labels?: string;
          split: string;
          modes?: SegmentMode[];
          interval?: number;
          attempts: number;
          backoff: number;
          json?: boolean;
        },
      ) => {
        try {
          const r = await submit(inputs, {
            redis: opts.redis,
            queue: opts.queue,
            out: opts.out,
            model: opts.model ?? (await resolveDefaultModel()),
            eval: Boolean(opts.eval),
            mode: opts.mode,
            scale: opts.scale,
            keyframes: opts.keyframes,
            overlay: opts.overlay,
            flops: opts.flops,
            labels: opts.labels,
            split: opts.split,
            modes: opts.modes,
            interval: opts.interval,
            attempts: opts.attempts,
            backoff: opts.backoff,
          });
          if (opts.json) {
            process.stdout.write(JSON.stringify({ ok: true, ...r }) + '\n');
            return;
          }
          process.stdout.write(
            `${r.clips} clip${r.clips === 1 ? '' : 's'}, ${r.jobs} job${r.jobs === 1 ? '' : 's'} (${r.kind}): ${r.added} added, ${r.completed} already done, ` +
              `${r.retried} failed before and retried, ${r.pending} already queued\n${r.run}\n`,
          );
        } catch (err) {
          fail(err, Boolean(opts.json));
        }
      },
    );

  targetOptions(
    queue
      .command('status')
      .description("a run's progress: counts, running jobs, failures with their code and reason")
      .argument('<run>', 'the run id submit printed'),
  )
    .option('--json', 'print the status as JSON')
    .option('--wait', 'wait until no job is waiting or running, then print')
    .action(async (run: string, opts: Target & { json?: boolean; wait?: boolean }) => {
      try {
        const s = opts.wait
          ? await waitForRun(run, opts, {
              onStatus: (x) =>
                !opts.json &&
                process.stderr.isTTY &&
                process.stderr.write(
                  `\r${textBar(x.fraction)} ${x.counts.completed + x.counts.failed}/${x.total} jobs done`,
                ),
            })
          : await status(run, opts);
        if (opts.wait && !opts.json && process.stderr.isTTY) process.stderr.write('\n');
        process.stdout.write(opts.json ? JSON.stringify({ ok: true, ...s }) + '\n' : formatStatus(s));
      } catch (err) {
        fail(err, Boolean(opts.json));
      }
    });

  targetOptions(
    queue
      .command('results')
      .description(
        "a finished run's results: for evaluation the merged table of ar-seg eval; exit 11 while unfinished, 12 when jobs failed",
      )
      .argument('<run>', 'the run id submit printed'),
  )
    .option('--json', 'print the results as JSON (for evaluation, the report of ar-seg eval --json)')
    .option('--out <file>', 'evaluation: write the Markdown table to FILE instead of stdout')
    .option('--partial', 'merge the completed jobs even when some failed (a warning lists the clips left out)')
    .option('--wait', 'wait until no job is waiting or running first')
    .action(async (run: string, opts: Target & { json?: boolean; out?: string; partial?: boolean; wait?: boolean }) => {
      try {
        if (opts.wait) await waitForRun(run, opts);
        const r = await results(run, { redis: opts.redis, queue: opts.queue, partial: opts.partial });
        if (r.kind === 'eval') {
          const report = r.report;
          const md = formatEvalMarkdown(report);
          if (opts.out) {
            await fsp.mkdir(path.dirname(path.resolve(opts.out)), { recursive: true });
            await fsp.writeFile(opts.out, md);
          }
          for (const w of report.warnings) process.stderr.write(`ar-seg: warning: ${w}\n`);
          if (opts.json) process.stdout.write(JSON.stringify({ ok: true, ...report }) + '\n');
          else if (!opts.out) process.stdout.write(md);
          else
            process.stdout.write(
              `${report.clips.length} clip${report.clips.length === 1 ? '' : 's'} merged, table written to ${opts.out}\n`,
            );
          return;
        }
        for (const w of r.warnings) process.stderr.write(`ar-seg: warning: ${w}\n`);
        if (opts.json) {
          process.stdout.write(JSON.stringify({ ok: true, ...r }) + '\n');
          return;
        }
        for (const c of r.clips)
          process.stdout.write(
            `${c.name}: ${c.frames} frames, ${c.width}x${c.height}, ${c.fps.toFixed(2)} fps -> ${c.dir}\n`,
          );
        process.stdout.write(`${r.clips.length} clip${r.clips.length === 1 ? '' : 's'}, ${r.frames} frames\n`);
      } catch (err) {
        fail(err, Boolean(opts.json));
      }
    });
}
