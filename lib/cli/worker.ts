/**
 * `ar-seg worker --redis URL [--concurrency N] [--device cpu|cuda]`: runs the queue's jobs until
 * stopped (lib/queue/worker.ts). One line per event on stderr (JSON lines with --json).
 * SIGTERM or SIGINT: no new jobs; running ones finish within --grace seconds or are handed back
 * to the queue; a second signal hands them back at once. Exit 0 once every job has ended.
 */
import { Command, InvalidArgumentError } from 'commander';
import { DEFAULT_QUEUE_NAME } from '../queue/connection';
import { Worker, WorkerEvent } from '../queue/worker';
import type { CliShared } from './queue';

function seconds(name: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!(n >= 0 && n <= 86400)) throw new InvalidArgumentError(`${name} must be a number of seconds from 0 to 86400`);
    return n;
  };
}

function milliseconds(name: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < 100)
      throw new InvalidArgumentError(`${name} must be a whole number of milliseconds >= 100`);
    return n;
  };
}

/** An event as one log line. */
export function formatWorkerEvent(e: WorkerEvent): string {
  const t = new Date().toISOString();
  switch (e.type) {
    case 'ready':
      return `${t} worker ${e.worker} ready: queue ${e.queue} on ${e.redis}, concurrency ${e.concurrency}, ${e.device}, ${e.threads} thread${e.threads === 1 ? '' : 's'} per model`;
    case 'start':
      return `${t} start ${e.jobId} ${e.clip} (attempt ${e.attempt})`;
    case 'done':
      return `${t} done ${e.jobId} ${e.clip}: ${e.reused ? 'result already on disk' : `${e.frames} frames in ${e.seconds.toFixed(2)} s`}`;
    case 'failed':
      return `${t} failed ${e.jobId} ${e.clip}: ${e.code ?? ''}${e.code ? ': ' : ''}${e.message}${e.retry ? ' (will be retried)' : ''}`;
    case 'handed-back':
      return `${t} handed back ${e.jobId} ${e.clip}`;
    case 'lock-lost':
      return `${t} lost the lock of ${e.jobId} ${e.clip} (another worker runs it); stopped`;
    case 'error':
      return `${t} error: ${e.message}`;
    case 'closing':
      return `${t} closing: ${e.running} job${e.running === 1 ? '' : 's'} running, handed back after ${(e.grace / 1000).toFixed(0)} s`;
    case 'closed':
      return `${t} closed`;
  }
}

export function addWorkerCommand(program: Command, { fail, positiveInt, deviceValue }: CliShared): void {
  program
    .command('worker')
    .description(
      "run the queue's segmentation and evaluation jobs until stopped (SIGTERM: finish or hand back the current jobs)",
    )
    .requiredOption('--redis <url>', "the queue's Redis: redis://[user:password@]host:6379[/db], or rediss:// for TLS")
    .option('--queue <name>', "the queue's name", DEFAULT_QUEUE_NAME)
    .option('--concurrency <n>', 'jobs at once (each with its own loaded model)', positiveInt('--concurrency', 256), 1)
    .option('--device <device>', 'cpu or cuda', deviceValue, 'cpu')
    .option(
      '--threads <n>',
      'ONNX Runtime threads per model (default: cores / concurrency)',
      positiveInt('--threads', 1024),
    )
    .option(
      '--grace <seconds>',
      'on SIGTERM, how long running jobs may finish before they are handed back',
      seconds('--grace'),
      30,
    )
    .option(
      '--lock-duration <ms>',
      "a job's lock without renewal: a dead worker's job is taken over after this",
      milliseconds('--lock-duration'),
      30000,
    )
    .option(
      '--stalled-interval <ms>',
      'how often to look for jobs of dead workers',
      milliseconds('--stalled-interval'),
      30000,
    )
    .option('--json', 'log JSON lines')
    .action(
      async (opts: {
        redis: string;
        queue: string;
        concurrency: number;
        device: 'cpu' | 'cuda';
        threads?: number;
        grace: number;
        lockDuration: number;
        stalledInterval: number;
        json?: boolean;
      }) => {
        const log = (e: WorkerEvent) =>
          process.stderr.write(
            (opts.json ? JSON.stringify({ time: new Date().toISOString(), ...e }) : formatWorkerEvent(e)) + '\n',
          );
        // The signal handlers are installed before the worker starts: the worker can take a job
        // (and log 'start') before Worker.start resolves, and a SIGTERM in that gap must not kill
        // the process with the job half done.
        let worker: Worker | undefined = undefined;
        let signals = 0;
        let stopped: () => void = () => {};
        const done = new Promise<void>((resolve) => (stopped = resolve));
        // The first signal closes the worker (running jobs finish within the grace period), a
        // later one hands them back at once; signals that come while it starts apply once it has.
        // close() gives up on an unreachable Redis after the grace period and closeTimeout:
        // then the error is printed and the exit code is ERR_QUEUE's.
        const act = (w: Worker, n: number) => {
          if (n === 1) void w.close().then(stopped, (err: unknown) => fail(err, Boolean(opts.json)));
          else w.handBack();
        };
        const stop = () => {
          signals++;
          if (worker) act(worker, signals);
        };
        process.on('SIGTERM', stop);
        process.on('SIGINT', stop);
        worker = await Worker.start({
          redis: opts.redis,
          queue: opts.queue,
          concurrency: opts.concurrency,
          device: opts.device,
          threads: opts.threads,
          grace: Math.round(opts.grace * 1000),
          lockDuration: opts.lockDuration,
          stalledInterval: opts.stalledInterval,
          onEvent: log,
        }).catch((err: unknown) => fail(err, Boolean(opts.json)));
        for (let n = 1; n <= signals; n++) act(worker, n);
        await done;
        process.exit(0);
      },
    );
}
