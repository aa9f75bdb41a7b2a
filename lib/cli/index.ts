#!/usr/bin/env node
/** The `ar-seg` command line (commander). Exit codes: see exit-codes.ts. */
import * as path from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import { ArSegError, ErrorCodes, toArSegError } from '../errors';
import { exitCodeFor, ExitCodes } from './exit-codes';
import { runMvs } from './mvs';
import { runSegment } from './segment';
import { EVAL_MODES, formatEvalMarkdown } from '../evaluate';
import { runEval } from './eval';
import { resolveDefaultModel, runDemo } from './demo';
import type { SegmentMode } from '../pipeline';
import type { MotionFill, MotionSourceOption } from '../frame';
import { bundleFlops } from '../flops';
import { Bundle } from '../bundle';
import { doctor, formatDoctor } from '../doctor';
import { addQueueCommands } from './queue';
import { addWorkerCommand } from './worker';
import { prepareOutputDir, writeOutput } from '../output';

function composition(value: string): 'bilinear' | 'official' {
  if (value !== 'bilinear' && value !== 'official') throw new InvalidArgumentError("must be 'bilinear' or 'official'");
  return value;
}

function positiveInt(name: string, max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < 1 || n > max)
      throw new InvalidArgumentError(`${name} must be an integer from 1 to ${max}`);
    return n;
  };
}

function nonNegativeInt(name: string, max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (value.trim() === '' || !Number.isInteger(n) || n < 0 || n > max)
      throw new InvalidArgumentError(`${name} must be an integer from 0 to ${max}`);
    return n;
  };
}

function keyframePolicy(value: string): 'gop' | 'adaptive' | number {
  if (value === 'gop' || value === 'adaptive') return value;
  return positiveInt('--keyframes', 1 << 20)(value);
}

function size(value: string): { width: number; height: number } {
  const m = /^(\d+)x(\d+)$/.exec(value);
  if (!m || Number(m[1]) < 1 || Number(m[2]) < 1)
    throw new InvalidArgumentError('--size must be WIDTHxHEIGHT, e.g. 960x720');
  return { width: Number(m[1]), height: Number(m[2]) };
}

function scaleValue(value: string): number {
  const n = Number(value);
  if (!(n > 0 && n <= 1)) throw new InvalidArgumentError('--scale must be a number in (0, 1]');
  return n;
}

function modeValue(value: string): 'ar' | 'hr' | 'lr' {
  if (value !== 'ar' && value !== 'hr' && value !== 'lr') throw new InvalidArgumentError('--mode must be ar, hr or lr');
  return value;
}

function modesValue(value: string): SegmentMode[] {
  const modes = value
    .split(',')
    .map((m) => m.trim())
    .filter(Boolean);
  if (modes.length === 0 || modes.some((m) => !(EVAL_MODES as readonly string[]).includes(m)))
    throw new InvalidArgumentError('--modes must be a comma-separated list of hr, lr, ar');
  return [...new Set(modes)] as SegmentMode[];
}

function pixelLimitValue(value: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 0)
    throw new InvalidArgumentError('--limit-input-pixels must be a non-negative integer (0: no limit)');
  return n;
}

const PIXEL_LIMIT_HELP = 'refuse pictures of more pixels than N (width x height; 0: no limit; default 8192x8192)';

function motionSourceValue(value: string): MotionSourceOption {
  if (value !== 'auto' && value !== 'bitstream' && value !== 'estimate')
    throw new InvalidArgumentError('--motion-source must be auto, bitstream or estimate');
  return value;
}

function motionFillValue(value: string): MotionFill {
  if (value !== 'estimate' && value !== 'none')
    throw new InvalidArgumentError('--motion-fill must be estimate or none');
  return value;
}

const MOTION_FILL_HELP =
  'cells the bitstream does not link to a past picture (intra, future-only): estimate (default) or none (as the bitstream says)';

const MOTION_SOURCE_HELP =
  "where motion comes from: auto (the bitstream's vectors when the codec has them, else estimated from the pictures), bitstream or estimate";

function deviceValue(value: string): 'cpu' | 'cuda' {
  if (value !== 'cpu' && value !== 'cuda') throw new InvalidArgumentError('--device must be cpu or cuda');
  return value;
}

/** The JSON error object `--json` prints on stdout (also for usage errors). */
export function jsonError(e: ArSegError): { ok: false; error: Record<string, unknown> } {
  const error: Record<string, unknown> = { code: e.code, message: e.message, framesDecoded: e.framesDecoded ?? null };
  if (e.path !== undefined) error.path = e.path;
  if (e.systemCode !== undefined) error.systemCode = e.systemCode;
  return { ok: false, error };
}

function fail(err: unknown, json: boolean): never {
  const e: ArSegError = toArSegError(err);
  if (json) {
    process.stdout.write(JSON.stringify(jsonError(e)) + '\n');
  } else {
    process.stderr.write(`ar-seg: ${e.code}: ${e.message}\n`);
  }
  process.exit(exitCodeFor(e.code));
}

export function buildProgram(): Command {
  const program = new Command();
  const json = process.argv.includes('--json');
  program
    .name('ar-seg')
    .description('AR-Seg for compressed video: motion vectors, CReFF and segmentation')
    // Usage errors (unknown options, extra or missing arguments, bad values) are exit 2, and with
    // --json also an error object on stdout; commander's text goes to stderr as usual.
    .exitOverride((err) => {
      if (err.exitCode === 0) process.exit(0); // --help, --version
      if (json) {
        const message = err.message.replace(/^error: /, '');
        process.stdout.write(JSON.stringify(jsonError(new ArSegError(ErrorCodes.INVALID_ARG, message))) + '\n');
      }
      process.exit(ExitCodes.USAGE);
    })
    .allowExcessArguments(false);

  program
    .command('mvs')
    .allowExcessArguments(false)
    .description('export motion vectors (mv-extractor layout) and dense accumulated motion fields')
    .argument('<video>', 'a video file or URL')
    .option(
      '--dump <dir>',
      'write frame_types.txt, motion_vectors/mvs-<i>.npy and refs-<i>.npy (and motion_fields/ with --dense)',
    )
    .option(
      '--dense <stride>',
      'also write dense fields accumulated to the keyframe, one cell per STRIDE pixels',
      positiveInt('--dense', 256),
    )
    .option('--keyframes <policy>', "'gop' (every I-frame) or an interval L", keyframePolicy, 'gop')
    .option('--motion-source <source>', MOTION_SOURCE_HELP, motionSourceValue, 'auto')
    .option('--motion-fill <how>', MOTION_FILL_HELP, motionFillValue, 'estimate')
    .option('--limit-input-pixels <n>', PIXEL_LIMIT_HELP, pixelLimitValue)
    .option(
      '--composition <how>',
      "with --dense: 'bilinear' (default) or 'official' (AR-Seg's mergeMotion: whole pixels)",
      composition,
      'bilinear',
    )
    .option('--json', 'print a machine-readable summary on stdout')
    .option('--no-progress', 'no progress bar')
    .action(
      async (
        video: string,
        opts: {
          dump?: string;
          dense?: number;
          keyframes: 'gop' | number;
          motionSource: MotionSourceOption;
          motionFill: MotionFill;
          limitInputPixels?: number;
          composition: 'bilinear' | 'official';
          json?: boolean;
          progress: boolean;
        },
      ) => {
        try {
          const summary = await runMvs(video, {
            dump: opts.dump,
            dense: opts.dense,
            keyframes: opts.keyframes,
            motionSource: opts.motionSource,
            motionFill: opts.motionFill,
            limitInputPixels: opts.limitInputPixels,
            composition: opts.composition,
            progress: opts.progress && !opts.json,
          });
          if (opts.json) process.stdout.write(JSON.stringify({ ok: true, ...summary }) + '\n');
          else
            process.stdout.write(
              `${summary.frames} frames (${Object.entries(summary.pictTypes)
                .map(([t, n]) => `${n} ${t}`)
                .join(', ')}), ` +
                `${summary.vectors} vectors (${summary.motionSource}), ${summary.fps.toFixed(1)} fps` +
                (summary.dump ? `, written to ${summary.dump}` : '') +
                '\n',
            );
        } catch (err) {
          fail(err, Boolean(opts.json));
        }
      },
    );
  program
    .command('segment')
    .allowExcessArguments(false)
    .description('segment a video: label PNGs per frame, optional overlays, summary.json')
    .argument('<video>', 'a video file or URL')
    .option('--model <dir>', 'a model bundle directory (default: the bundled default model, models/default)')
    .requiredOption('--out <dir>', 'output directory')
    .option('--mode <mode>', 'ar (keyframes HR, others LR + CReFF), hr or lr', modeValue, 'ar')
    .option('--scale <s>', "LR scale per side (default: the bundle's)", scaleValue)
    .option(
      '--keyframes <policy>',
      "'gop', 'adaptive' or an interval L (default: the bundle's interval)",
      keyframePolicy,
    )
    .option('--motion-source <source>', MOTION_SOURCE_HELP, motionSourceValue, 'auto')
    .option('--motion-fill <how>', MOTION_FILL_HELP, motionFillValue, 'estimate')
    .option('--overlay', 'also write colour overlays of the labels on the frames')
    .option('--no-flops', 'do not count GMAC per frame for the summary')
    .option('--limit-input-pixels <n>', PIXEL_LIMIT_HELP, pixelLimitValue)
    .option('--json', 'print the summary on stdout')
    .option('--no-progress', 'no progress bar')
    .action(
      async (
        video: string,
        opts: {
          model?: string;
          out: string;
          mode: 'ar' | 'hr' | 'lr';
          scale?: number;
          keyframes?: 'gop' | 'adaptive' | number;
          motionSource: MotionSourceOption;
          motionFill: MotionFill;
          overlay?: boolean;
          flops: boolean;
          limitInputPixels?: number;
          json?: boolean;
          progress: boolean;
        },
      ) => {
        try {
          const s = await runSegment(video, {
            model: opts.model ?? (await resolveDefaultModel()),
            out: opts.out,
            mode: opts.mode,
            scale: opts.scale,
            keyframes: opts.keyframes,
            motionSource: opts.motionSource,
            motionFill: opts.motionFill,
            overlay: Boolean(opts.overlay),
            progress: opts.progress && !opts.json,
            flops: opts.flops,
            limitInputPixels: opts.limitInputPixels,
          });
          if (opts.json) process.stdout.write(JSON.stringify({ ok: true, ...s }) + '\n');
          else
            process.stdout.write(
              `${s.frames} frames (${s.keyframes} keyframes) in ${s.seconds.toFixed(2)} s, ${s.fps.toFixed(2)} fps` +
                (s.gmacPerFrame ? `, ${s.gmacPerFrame.mean.toFixed(2)} GMAC per frame` : '') +
                `, written to ${s.out}\n`,
            );
        } catch (err) {
          fail(err, Boolean(opts.json));
        }
      },
    );

  program
    .command('flops')
    .allowExcessArguments(false)
    .description('GMAC per frame of HR, LR and AR inference, counted from the ONNX graphs plus CReFF')
    .requiredOption('--model <dir>', 'a model bundle directory')
    .requiredOption('--size <WxH>', 'frame size, e.g. 960x720', size)
    .option('--interval <L>', "keyframe interval (default: the bundle's)", positiveInt('--interval', 1 << 20))
    .option('--scale <s>', "LR scale per side (default: the bundle's)", scaleValue)
    .option('--json', 'print the report as JSON')
    .action(
      async (opts: {
        model: string;
        size: { width: number; height: number };
        interval?: number;
        scale?: number;
        json?: boolean;
      }) => {
        try {
          const bundle = await Bundle.load(opts.model);
          await bundle.close();
          const r = await bundleFlops(bundle.dir, bundle.manifest, {
            ...opts.size,
            interval: opts.interval,
            scale: opts.scale,
          });
          if (opts.json) {
            process.stdout.write(JSON.stringify({ ok: true, ...r }) + '\n');
            return;
          }
          const g = (n: number) => n.toFixed(2).padStart(9);
          process.stdout.write(
            `${r.model} at ${r.width}x${r.height} (LR ${r.lrWidth}x${r.lrHeight}), keyframe every ${r.interval} frames, GMAC per frame:\n` +
              `  HR (every frame at HR)   ${g(r.perFrame.hr)}   (encoder ${r.parts.hrEncoder.toFixed(2)}, decoder ${r.parts.decoderHr.toFixed(2)})\n` +
              `  LR (every frame at LR)   ${g(r.perFrame.lr)}\n` +
              `  AR (mean over ${r.interval})       ${g(r.perFrame.ar)}   (keyframe ${r.perFrame.arKeyframe.toFixed(2)}; others: LR encoder ${r.parts.lrEncoder.toFixed(2)} + CReFF ${r.parts.creff.toFixed(2)} + decoder ${r.parts.decoderHr.toFixed(2)})\n` +
              `  saving of AR over HR     ${(100 * r.saving).toFixed(1).padStart(8)}%\n`,
          );
        } catch (err) {
          fail(err, Boolean(opts.json));
        }
      },
    );

  program
    .command('eval')
    .allowExcessArguments(false)
    .description("mIoU per reference distance d (the paper's protocol) of hr, lr and ar against label PNGs")
    .argument('<inputs...>', 'videos (labels in labels/ next to each) or dataset directories (holding splits.json)')
    .option('--model <dir>', 'a model bundle directory (default: the bundled default model, models/default)')
    .option('--labels <dir>', 'the label PNGs of a single video (default: labels/ next to it)')
    .option('--split <name>', 'the split of a dataset directory', 'test')
    .option('--modes <list>', 'modes to evaluate, comma-separated (default: hr,lr,ar)', modesValue)
    .option(
      '--interval <L>',
      "keyframe interval L: keyframes every L frames from frame 0, d = 0..L-1 (default: the bundle's)",
      positiveInt('--interval', 1024),
    )
    .option('--scale <s>', "LR scale per side (default: the bundle's)", scaleValue)
    .option(
      '--keyframe-delay <n>',
      'ar with asynchronous keyframes, each ready N frames after its frame (the cost of staleness)',
      nonNegativeInt('--keyframe-delay', 1024),
    )
    .option('--device <device>', 'cpu or cuda', deviceValue, 'cpu')
    .option('--motion-source <source>', MOTION_SOURCE_HELP, motionSourceValue, 'auto')
    .option('--motion-fill <how>', MOTION_FILL_HELP, motionFillValue, 'estimate')
    .option('--out <file>', 'write the Markdown table to FILE instead of stdout')
    .option('--json', 'print the report as JSON on stdout')
    .option('--no-progress', 'no progress bar')
    .action(
      async (
        inputs: string[],
        opts: {
          model?: string;
          labels?: string;
          split: string;
          modes?: SegmentMode[];
          interval?: number;
          scale?: number;
          keyframeDelay?: number;
          device: 'cpu' | 'cuda';
          motionSource: MotionSourceOption;
          motionFill: MotionFill;
          out?: string;
          json?: boolean;
          progress: boolean;
        },
      ) => {
        try {
          // the table's directory first: a wrong --out fails before the model loads
          if (opts.out) await prepareOutputDir(path.dirname(path.resolve(opts.out)));
          const report = await runEval(inputs, {
            motionSource: opts.motionSource,
            motionFill: opts.motionFill,
            model: opts.model ?? (await resolveDefaultModel()),
            labels: opts.labels,
            split: opts.split,
            modes: opts.modes,
            interval: opts.interval,
            scale: opts.scale,
            keyframeDelay: opts.keyframeDelay,
            device: opts.device,
            progress: opts.progress && !opts.json,
          });
          const md = formatEvalMarkdown(report);
          if (opts.out) await writeOutput(path.resolve(opts.out), md);
          for (const w of report.warnings) process.stderr.write(`ar-seg: warning: ${w}\n`);
          if (opts.json) process.stdout.write(JSON.stringify({ ok: true, ...report }) + '\n');
          else if (!opts.out) process.stdout.write(md);
          else
            process.stdout.write(
              `${report.clips.length} clip${report.clips.length === 1 ? '' : 's'} evaluated, table written to ${opts.out}\n`,
            );
        } catch (err) {
          fail(err, Boolean(opts.json));
        }
      },
    );

  program
    .command('demo')
    .allowExcessArguments(false)
    .description(
      'segment the bundled demo clip with the bundled default model: labels, overlays, summary.json (and mIoU against its labels)',
    )
    .option('--out <dir>', 'output directory', 'ar-seg-demo')
    .option('--device <device>', 'cpu or cuda', deviceValue, 'cpu')
    .option('--model <dir>', 'a model bundle directory instead of the default model (or ARSEG_DEFAULT_MODEL)')
    .option(
      '--clip <dir>',
      'a clip directory (video.mp4, optional labels/) instead of the demo clip (or ARSEG_DEMO_CLIP)',
    )
    .option('--json', 'print the summary on stdout')
    .option('--no-progress', 'no progress bar')
    .action(
      async (opts: {
        out: string;
        device: 'cpu' | 'cuda';
        model?: string;
        clip?: string;
        json?: boolean;
        progress: boolean;
      }) => {
        try {
          const s = await runDemo({
            out: opts.out,
            device: opts.device,
            model: opts.model,
            clip: opts.clip,
            progress: opts.progress && !opts.json,
          });
          if (opts.json) {
            process.stdout.write(JSON.stringify({ ok: true, ...s }) + '\n');
            return;
          }
          process.stdout.write(
            `ar-seg demo: ${s.frames} frames ${s.width}x${s.height} (${s.keyframes} keyframes at HR, the others at LR + CReFF) ` +
              `segmented with ${s.model} on ${opts.device} in ${s.seconds.toFixed(2)} s (${s.fps.toFixed(1)} fps` +
              (s.gmacPerFrame
                ? `, ${s.gmacPerFrame.mean.toFixed(2)} GMAC per frame against ${s.gmacPerFrame.hr.toFixed(2)} at HR`
                : '') +
              `)\n  written to ${s.out}: labels/ (palette PNGs), overlays/, summary.json\n` +
              (s.miou
                ? `  mIoU against the clip's labels (ar, mean over d = 0..${s.miou.interval - 1}): ${s.miou.mean === null ? 'n/a' : (100 * s.miou.mean).toFixed(1) + '%'}\n`
                : ''),
          );
        } catch (err) {
          fail(err, Boolean(opts.json));
        }
      },
    );
  program
    .command('doctor')
    .description(
      "what this installation is and whether 'cpu' and 'cuda' can run here, with the first reason and its fix",
    )
    .option('--device <device>', 'the device the exit code is about: cpu or cuda', deviceValue, 'cpu')
    .option('--json', 'print the report as JSON on stdout')
    .action((opts: { device: 'cpu' | 'cuda'; json?: boolean }) => {
      // Exit 0 when the device asked about can run here, 5 when it cannot (the report says why).
      try {
        const report = doctor();
        const verdict = report.devices[opts.device];
        if (opts.json)
          process.stdout.write(JSON.stringify({ ok: verdict.usable, device: opts.device, ...report }) + '\n');
        else process.stdout.write(formatDoctor(report));
        process.exit(verdict.usable ? ExitCodes.OK : ExitCodes.UNSUPPORTED);
      } catch (err) {
        fail(err, Boolean(opts.json));
      }
    });
  const shared = { fail, positiveInt, keyframePolicy, scaleValue, modeValue, modesValue, deviceValue };
  addQueueCommands(program, shared);
  addWorkerCommand(program, shared);
  return program;
}

if (require.main === module) {
  buildProgram()
    .parseAsync(process.argv)
    .catch((err) => fail(err, process.argv.includes('--json')));
}
