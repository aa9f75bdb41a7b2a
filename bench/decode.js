#!/usr/bin/env node
'use strict';
/*
 * Decode throughput with and without motion, side by side in one run (rounds interleaved, the
 * median of each kept), on 1280x720 clips of the same content (bench/clip.js; needs ffmpeg with
 * libx264 and libx265): H.264 (x264 veryfast, 1 reference, no B-frames) and HEVC (x265
 * veryfast defaults: B-pyramid, open GOP, 3 references).
 *
 *   node bench/decode.js [--rounds 5] [--codec h264|hevc|both] [--fresh] [--json]
 *
 * "vectors" exports the motion vectors with their references; "field" adds the dense field
 * accumulated to the keyframe as the bitstream gives it (motionFill 'none': issue 13's 10%
 * target); "+ fill" is the reader's default, which also estimates the motion of the cells the
 * bitstream does not link to a past picture (FrameOptions.motionFill). "releaseMotion" hands
 * each frame's motion arrays back as soon as the loop has the frame (lib/recycle.ts), as a loop
 * that does not keep them should; without it their storage comes back only when V8 collects
 * them. Each is compared with decoding alone at the same threading:
 * libavcodec's default threads (frame threads; the patched libav exports vectors safely under
 * them), and one thread. HEVC motion needs the patched libav (libav.exactReferences).
 *
 * --fresh runs every pass in a new process, as a tool that reads one video does (`ar-seg mvs`):
 * without it, all passes share one process, whose earlier passes have filled the reader's pool
 * of recycled storage, so the page faults of fresh arrays mostly do not show.
 *
 * Three measures: wall-clock fps, the CPU time the process spent (user + system, all its
 * threads) per frame, and minor page faults per frame. On a shared machine the CPU time is the
 * steadier measure of cost: a configuration waiting for cores others hold loses wall time, not
 * CPU time. It still moves by several points between runs there; bench/decode-instructions.js
 * counts the same configurations' instructions under callgrind, which the load does not move.
 */
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { openVideo, libavVersions, releaseMotion } = require('../dist');
const { ensureBenchClip, BENCH_CLIP, BENCH_CLIP_HEVC } = require('./clip');

const args = process.argv.slice(2);
const rounds = Number(args[args.indexOf('--rounds') + 1]) || 5;
const asJson = args.includes('--json');
const codecArg = args.includes('--codec') ? args[args.indexOf('--codec') + 1] : 'both';
const fresh = args.includes('--fresh');

const CONFIGS = [
  { name: 'decode, default threads (baseline)', base: 0, options: {} },
  { name: 'decode + vectors, default threads', base: 0, options: { vectors: true } },
  {
    name: 'decode + vectors + field (stride 8), default threads',
    base: 0,
    options: { vectors: true, motion: 'accumulated', stride: 8, motionFill: 'none' },
  },
  { name: 'decode, 1 thread (baseline)', base: 3, options: { threads: 1 } },
  { name: 'decode + vectors, 1 thread', base: 3, options: { threads: 1, vectors: true } },
  {
    name: 'decode + vectors + field (stride 8), 1 thread',
    base: 3,
    options: { threads: 1, vectors: true, motion: 'accumulated', stride: 8, motionFill: 'none' },
  },
  {
    name: 'decode + vectors + field (stride 4), 1 thread',
    base: 3,
    options: { threads: 1, vectors: true, motion: 'accumulated', stride: 4, motionFill: 'none' },
  },
  {
    name: 'decode + vectors + field (stride 8), releaseMotion, default threads',
    base: 0,
    release: true,
    options: { vectors: true, motion: 'accumulated', stride: 8, motionFill: 'none' },
  },
  {
    name: 'decode + vectors + field (stride 8), releaseMotion, 1 thread',
    base: 3,
    release: true,
    options: { threads: 1, vectors: true, motion: 'accumulated', stride: 8, motionFill: 'none' },
  },
  {
    name: 'decode + vectors + field (stride 8) + fill (default), default threads',
    base: 0,
    options: { vectors: true, motion: 'accumulated', stride: 8 },
  },
  {
    name: 'decode + vectors + field (stride 8) + fill (default), 1 thread',
    base: 3,
    options: { threads: 1, vectors: true, motion: 'accumulated', stride: 8 },
  },
];

async function timeRun(file, options, release = false) {
  const started = process.hrtime.bigint();
  const cpu = process.cpuUsage();
  const faults = process.resourceUsage().minorPageFault;
  let frames = 0;
  for await (const frame of openVideo(file, options)) {
    frames++;
    if (release) releaseMotion(frame);
  }
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const used = process.cpuUsage(cpu);
  return {
    frames,
    fps: frames / seconds,
    cpuMs: (used.user + used.system) / 1000 / frames,
    faults: (process.resourceUsage().minorPageFault - faults) / frames,
  };
}

// One pass in a new process (--fresh): the child times its pass alone, not its start-up.
function freshRun(file, options, release = false) {
  const child = spawnSync(process.execPath, [__filename, '--child', file, JSON.stringify(options), String(release)], {
    encoding: 'utf8',
  });
  if (child.status !== 0) throw new Error(`child pass failed: ${child.stderr}`);
  return JSON.parse(child.stdout);
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1];
}

async function benchClip(clip) {
  const file = ensureBenchClip(path.join(__dirname, '..', '.bench-cache'), clip);
  const samples = CONFIGS.map(() => []);
  const cpuSamples = CONFIGS.map(() => []);
  const faultSamples = CONFIGS.map(() => []);
  await timeRun(file, {}); // warm-up: page cache, lazy libav initialisation
  for (let r = 0; r < rounds; r++) {
    for (let c = 0; c < CONFIGS.length; c++) {
      const { options, release } = CONFIGS[c];
      const run = fresh ? freshRun(file, options, release) : await timeRun(file, options, release);
      samples[c].push(run.fps);
      cpuSamples[c].push(run.cpuMs);
      faultSamples[c].push(run.faults);
    }
  }
  const fps = samples.map(median);
  const cpu = cpuSamples.map(median);
  const faults = faultSamples.map(median);
  return {
    clip: path.basename(file),
    rows: CONFIGS.map((c, i) => ({
      config: c.name,
      fps: fps[i],
      timeVsBaseline: fps[c.base] / fps[i],
      cpuMsPerFrame: cpu[i],
      cpuVsBaseline: cpu[i] / cpu[c.base],
      faultsPerFrame: faults[i],
    })),
  };
}

async function child() {
  const [file, options, release] = args.slice(args.indexOf('--child') + 1);
  console.log(JSON.stringify(await timeRun(file, JSON.parse(options), release === 'true')));
}

async function main() {
  const clips = [];
  if (codecArg !== 'hevc') clips.push(BENCH_CLIP);
  if (codecArg !== 'h264') {
    if (libavVersions().exactReferences) clips.push(BENCH_CLIP_HEVC);
    else console.error('HEVC skipped: this build links a libav without patches/ffmpeg/ (no HEVC vectors)');
  }
  const results = [];
  for (const clip of clips) results.push(await benchClip(clip));
  if (asJson) {
    console.log(JSON.stringify({ rounds, fresh, results }, null, 2));
    return;
  }
  for (const r of results) {
    const how = fresh ? 'each pass in a new process' : 'all passes in one process';
    console.log(`\nclip: ${r.clip} (240 frames), ${rounds} interleaved rounds (${how}), medians`);
    console.log(
      '| configuration | fps | time vs decoding alone | CPU ms per frame | CPU vs decoding alone | page faults per frame |',
    );
    console.log('|---|---|---|---|---|---|');
    for (const row of r.rows)
      console.log(
        `| ${row.config} | ${row.fps.toFixed(1)} | ${row.timeVsBaseline.toFixed(3)}x | ${row.cpuMsPerFrame.toFixed(2)} | ${row.cpuVsBaseline.toFixed(3)}x | ${row.faultsPerFrame.toFixed(1)} |`,
      );
  }
}

(args.includes('--child') ? child() : main()).catch((err) => {
  console.error(err);
  process.exit(1);
});
