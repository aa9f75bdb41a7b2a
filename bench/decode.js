#!/usr/bin/env node
'use strict';
/*
 * Decode throughput with and without motion, side by side in one run (rounds interleaved, the
 * median of each kept), on a 1280x720 H.264 clip (bench/clip.js; needs ffmpeg with libx264).
 *
 *   node bench/decode.js [--rounds 5] [--json]
 *
 * Motion export forces slice threading (frame threading exports wrong vectors under load), and
 * x264's single-slice streams then decode on one thread, so the like-for-like baseline is
 * decoding with threads: 1. Decoding with libavcodec's default threading is shown too.
 */
const path = require('node:path');
const { openVideo } = require('../dist');
const { ensureBenchClip } = require('./clip');

const args = process.argv.slice(2);
const rounds = Number(args[args.indexOf('--rounds') + 1]) || 5;
const asJson = args.includes('--json');

const CONFIGS = [
  { name: 'decode, default threads', options: {} },
  { name: 'decode, 1 thread (baseline)', options: { threads: 1 } },
  { name: 'decode + vectors', options: { threads: 1, vectors: true } },
  { name: 'decode + vectors + accumulated field (stride 8)', options: { threads: 1, vectors: true, motion: 'accumulated', stride: 8 } },
  { name: 'decode + vectors + accumulated field (stride 4)', options: { threads: 1, vectors: true, motion: 'accumulated', stride: 4 } },
];

async function timeRun(file, options) {
  const started = process.hrtime.bigint();
  let frames = 0;
  for await (const _frame of openVideo(file, options)) frames++;
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  return { frames, fps: frames / seconds };
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1];
}

(async () => {
  const file = ensureBenchClip(path.join(__dirname, '..', '.bench-cache'));
  const samples = CONFIGS.map(() => []);
  await timeRun(file, {}); // warm-up: page cache, lazy libav initialisation
  for (let r = 0; r < rounds; r++) {
    for (let c = 0; c < CONFIGS.length; c++) samples[c].push((await timeRun(file, CONFIGS[c].options)).fps);
  }
  const base = median(samples[1]);
  const rows = CONFIGS.map((c, i) => ({ config: c.name, fps: median(samples[i]), vsBaseline: median(samples[i]) / base }));
  if (asJson) {
    console.log(JSON.stringify({ clip: path.basename(file), rounds, rows }, null, 2));
    return;
  }
  console.log(`clip: ${path.basename(file)} (240 frames), ${rounds} interleaved rounds, median fps`);
  console.log('| configuration | fps | time vs baseline |');
  console.log('|---|---|---|');
  for (const r of rows) console.log(`| ${r.config} | ${r.fps.toFixed(1)} | ${(base / r.fps).toFixed(3)}x |`);
})().catch((err) => {
  console.error(err);
  process.exit(1);
});
