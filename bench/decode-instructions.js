#!/usr/bin/env node
'use strict';
/*
 * The cost of motion counted in instructions: the configurations of bench/decode.js (decoding
 * alone; + vectors; + vectors + the accumulated field at stride 8, motionFill 'none': issue
 * 13's 10% target), each decoding the bench clips once in its own process under
 * `valgrind --tool=callgrind`, which counts the instructions executed (Ir): a count that the
 * load on a shared machine does not move as it moves CPU time, so it resolves changes of a
 * fraction of a point that timing cannot. A process that only loads the addon is counted too
 * and subtracted from each. Two counts: all instructions, and those outside V8 (the addon with
 * its libav, libc): V8's garbage collector marks concurrently and does as much as its timing
 * lets it, which moves the total by about a point between runs on a loaded machine; the count
 * outside V8 repeats to about 0.1%.
 *
 *   node bench/decode-instructions.js [--codec h264|hevc|both] [--threads 1|0] [--keep DIR]
 *
 * --threads 0: libavcodec's default (frame threads; valgrind runs them one at a time).
 * --keep DIR: keeps the callgrind.out files there, for `callgrind_annotate FILE` (where the
 * instructions go, per function) or a side-by-side diff of two configurations.
 *
 * Caveats: an instruction is not a cycle. valgrind counts each iteration of a `rep stos`/`rep
 * movs` as one instruction, so large memset/memcpy calls weigh about one instruction per byte
 * (they run at tens of bytes per cycle); and valgrind has no AVX-512, so the AVX2 kernels run
 * (common/simd.h picks the level from what the CPU reports). Needs valgrind, and ffmpeg with
 * libx264 and libx265 for the clips (bench/clip.js); takes a few minutes (about 50x slower
 * than a plain run).
 */
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const args = process.argv.slice(2);

if (args[0] === '--pass') {
  // The child: one reading of the clip with these options (none at all: only the load).
  const { openVideo } = require('../dist');
  const [, file, json] = args;
  (async () => {
    let frames = 0;
    if (file) for await (const _frame of openVideo(file, JSON.parse(json))) frames++;
    console.log(JSON.stringify({ frames }));
  })().catch((err) => {
    console.error(err);
    process.exit(1);
  });
} else {
  main();
}

// Counts one child process: all its instructions, and those outside the node binary's own
// code (V8), from callgrind_annotate's function list, which names each function's object.
function countInstructions(label, passArgs, keep) {
  const dir = keep || fs.mkdtempSync(path.join(os.tmpdir(), 'arseg-callgrind-'));
  fs.mkdirSync(dir, { recursive: true });
  const out = path.join(dir, `callgrind.out.${label}`);
  const stdout = execFileSync(
    'valgrind',
    ['--tool=callgrind', `--callgrind-out-file=${out}`, process.execPath, __filename, '--pass', ...passArgs],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 1 << 26 },
  );
  const summary = fs.readFileSync(out, 'utf8').match(/^summary:\s*(\d+)/m);
  if (!summary) throw new Error(`no summary line in ${out}`);
  const listing = execFileSync('callgrind_annotate', ['--threshold=100', out], {
    encoding: 'utf8',
    maxBuffer: 1 << 28,
  });
  let v8 = 0;
  for (const line of listing.split('\n')) {
    const m = line.match(/^\s*([\d,]+) \(\s*[\d.]+%\)\s+.*\[([^\]]*)\]\s*$/);
    if (m && path.basename(m[2]) === path.basename(process.execPath)) v8 += Number(m[1].replace(/,/g, ''));
  }
  if (!keep) fs.rmSync(dir, { recursive: true, force: true });
  const instructions = Number(summary[1]);
  return { instructions, native: instructions - v8, frames: JSON.parse(stdout.trim().split('\n').pop()).frames };
}

function main() {
  const { libavVersions } = require('../dist');
  const { ensureBenchClip, BENCH_CLIP, BENCH_CLIP_HEVC } = require('./clip');
  const option = (name, fallback) => (args.includes(name) ? args[args.indexOf(name) + 1] : fallback);
  const codecArg = option('--codec', 'both');
  const threads = Number(option('--threads', '1'));
  const keep = option('--keep', null);

  const threading = threads > 0 ? { threads } : {};
  const configs = [
    { name: 'decode alone', options: { ...threading } },
    { name: '+ vectors', options: { ...threading, vectors: true } },
    {
      name: '+ vectors + field (stride 8)',
      options: { ...threading, vectors: true, motion: 'accumulated', stride: 8, motionFill: 'none' },
    },
  ];
  const clips = [];
  if (codecArg !== 'hevc') clips.push(BENCH_CLIP);
  if (codecArg !== 'h264') {
    if (libavVersions().exactReferences) clips.push(BENCH_CLIP_HEVC);
    else console.error('HEVC skipped: this build links a libav without patches/ffmpeg/ (no HEVC vectors)');
  }
  const startup = countInstructions('startup', [], keep);
  console.log(
    `process without a reading: ${(startup.instructions / 1e6).toFixed(1)} M instructions, ` +
      `${(startup.native / 1e6).toFixed(1)} M outside V8 (subtracted below)`,
  );
  console.log(`threads: ${threads > 0 ? threads : "libavcodec's default"}`);
  for (const clip of clips) {
    const file = ensureBenchClip(path.join(__dirname, '..', '.bench-cache'), clip);
    const rows = configs.map((c, i) => {
      const r = countInstructions(`${path.basename(file, '.mp4')}.${i}`, [file, JSON.stringify(c.options)], keep);
      return {
        config: c.name,
        frames: r.frames,
        instructions: r.instructions - startup.instructions,
        native: r.native - startup.native,
      };
    });
    console.log(`\nclip: ${path.basename(file)}`);
    console.log(
      '| configuration | M instructions per frame | vs decoding alone | outside V8: M per frame | vs decoding alone |',
    );
    console.log('|---|---|---|---|---|');
    for (const r of rows)
      console.log(
        `| ${r.config} | ${(r.instructions / r.frames / 1e6).toFixed(3)} | ` +
          `${(r.instructions / rows[0].instructions).toFixed(4)}x | ${(r.native / r.frames / 1e6).toFixed(3)} | ` +
          `${(r.native / rows[0].native).toFixed(4)}x |`,
      );
  }
}
