#!/usr/bin/env node
/** The `ar-seg` command line (commander). Exit codes: see exit-codes.ts. */
import { Command, InvalidArgumentError } from 'commander';
import { ArSegError, toArSegError } from '../errors';
import { exitCodeFor, ExitCodes } from './exit-codes';
import { runMvs } from './mvs';

function positiveInt(name: string, max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < 1 || n > max) throw new InvalidArgumentError(`${name} must be an integer from 1 to ${max}`);
    return n;
  };
}

function keyframePolicy(value: string): 'gop' | number {
  if (value === 'gop') return 'gop';
  return positiveInt('--keyframes', 1 << 20)(value);
}

function fail(err: unknown, json: boolean): never {
  const e: ArSegError = toArSegError(err);
  if (json) {
    process.stdout.write(JSON.stringify({ ok: false, error: { code: e.code, message: e.message, framesDecoded: e.framesDecoded ?? null } }) + '\n');
  } else {
    process.stderr.write(`ar-seg: ${e.code}: ${e.message}\n`);
  }
  process.exit(exitCodeFor(e.code));
}

export function buildProgram(): Command {
  const program = new Command();
  program
    .name('ar-seg')
    .description('AR-Seg for compressed video: motion vectors, CReFF and segmentation')
    .exitOverride((err) => {
      process.exit(err.exitCode === 0 ? 0 : ExitCodes.USAGE);
    });

  program
    .command('mvs')
    .description('export motion vectors (mv-extractor layout) and dense accumulated motion fields')
    .argument('<video>', 'a video file or URL')
    .option('--dump <dir>', 'write frame_types.txt, motion_vectors/mvs-<i>.npy (and motion_fields/ with --dense)')
    .option('--dense <stride>', 'also write dense fields accumulated to the keyframe, one cell per STRIDE pixels', positiveInt('--dense', 256))
    .option('--keyframes <policy>', "'gop' (every I-frame) or an interval L", keyframePolicy, 'gop')
    .option('--json', 'print a machine-readable summary on stdout')
    .option('--no-progress', 'no progress bar')
    .action(async (video: string, opts: { dump?: string; dense?: number; keyframes: 'gop' | number; json?: boolean; progress: boolean }) => {
      try {
        const summary = await runMvs(video, {
          dump: opts.dump,
          dense: opts.dense,
          keyframes: opts.keyframes,
          progress: opts.progress && !opts.json,
        });
        if (opts.json) process.stdout.write(JSON.stringify({ ok: true, ...summary }) + '\n');
        else
          process.stdout.write(
            `${summary.frames} frames (${Object.entries(summary.pictTypes).map(([t, n]) => `${n} ${t}`).join(', ')}), ` +
              `${summary.vectors} vectors, ${summary.fps.toFixed(1)} fps` +
              (summary.dump ? `, written to ${summary.dump}` : '') +
              '\n',
          );
      } catch (err) {
        fail(err, Boolean(opts.json));
      }
    });
  return program;
}

if (require.main === module) {
  buildProgram()
    .parseAsync(process.argv)
    .catch((err) => fail(err, process.argv.includes('--json')));
}
