#!/usr/bin/env node
'use strict';
/*
 * The motion estimator's cost against the LR encoder's at the same frame size, side by side in
 * one run (rounds interleaved, medians kept): the estimate between two WxH pictures (what the
 * reader does per frame on a codec without motion vectors, plus one extra pyramid) against one
 * run of the LR encoder on that frame's LR input (scale 0.5, sides rounded to a multiple of 8)
 * for the default model (models/default) and for the official PSPNet18 layout:
 *
 *   /usr/bin/python3 python/tools/export_official_layout.py .bench-cache/psp18-official
 *   node bench/estimator.js [--rounds 5] [--sizes 320x240,960x720] [--official DIR] [--variants]
 *
 * The estimator runs on one thread (the reader's decode worker), the encoders on ONNX Runtime's
 * CPU provider with its default threads (the pipeline's setting); a pause after the encoders
 * lets ONNX Runtime's spinning threads go idle before the estimator is timed. --variants also measures the
 * other settings and methods (accuracy on the same pair, known translation, and cost): the
 * method chosen against plain hierarchical block matching, fewer iterations, other finest levels.
 *
 * Pictures: the test fixtures' texture (test/fixtures/render.js), the second translated by
 * (6.3, -2.7) px, cached in .bench-cache/.
 *
 * In the reader ("reader" rows): a 96-frame H.264 clip of that size (bench/clip.js: the texture
 * moving by (3, 1) px per frame) read with motion accumulated at stride 4 from its vectors and
 * with the estimator forced, against decoding alone (one decoder thread each), in ms per frame: the estimator's cost as the
 * pipeline pays it (one pyramid per frame, the luma read in place, the composition).
 */
const fs = require('node:fs');
const path = require('node:path');
const ort = require('onnxruntime-node');
const { Bundle, estimateMotion, openVideo } = require('../dist');
const { addon } = require('../dist/native');
const { texture } = require('../test/fixtures/render');
const { ensureBenchClip, BENCH_CLIP } = require('./clip');

const args = process.argv.slice(2);
const arg = (name, fallback) => (args.includes(name) ? args[args.indexOf(name) + 1] : fallback);
const rounds = Number(arg('--rounds', 5));
const sizes = arg('--sizes', '320x240,960x720')
  .split(',')
  .map((s) => s.split('x').map(Number));
const official = arg('--official', path.join(__dirname, '..', '.bench-cache', 'psp18-official'));
const variants = args.includes('--variants');
const CACHE = path.join(__dirname, '..', '.bench-cache');
const SHIFT = [6.3, -2.7];

function picture(width, height, dx, dy) {
  const file = path.join(CACHE, `estimator-${width}x${height}-${dx}-${dy}.gray`);
  if (fs.existsSync(file)) return new Uint8Array(fs.readFileSync(file));
  const out = new Uint8Array(width * height);
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++) {
      const [r, g, b] = texture(x + dx, y + dy);
      out[y * width + x] = Math.round(0.299 * r + 0.587 * g + 0.114 * b);
    }
  fs.mkdirSync(CACHE, { recursive: true });
  fs.writeFileSync(file, out);
  return out;
}

const median = (v) => [...v].sort((a, b) => a - b)[v.length >> 1];

/** Milliseconds per frame to read `clip` with `options`. */
async function readMs(clip, options) {
  const t0 = process.hrtime.bigint();
  let n = 0;
  for await (const f of openVideo(clip, options)) n += f.index >= 0 ? 1 : 0;
  return Number(process.hrtime.bigint() - t0) / 1e6 / n;
}

const READS = [
  ['decode alone', { threads: 1 }],
  [
    'decode + bitstream vectors, accumulated',
    { threads: 1, motion: 'accumulated', stride: 4, keyframes: 12, motionSource: 'bitstream' },
  ],
  [
    'decode + estimated motion, accumulated',
    { threads: 1, motion: 'accumulated', stride: 4, keyframes: 12, motionSource: 'estimate' },
  ],
];

/** Mean error (px) of a field against the translation, over cells 3 cells inside. */
function error(r) {
  const n = r.width * r.height;
  let sum = 0;
  let count = 0;
  for (let i = 3; i < r.height - 3; i++)
    for (let j = 3; j < r.width - 3; j++) {
      const k = i * r.width + j;
      sum += Math.hypot(r.data[k] - SHIFT[0], r.data[n + k] - SHIFT[1]);
      count++;
    }
  return sum / count;
}

async function encoderMs(bundle, width, height) {
  const multiple = bundle.manifest.input.sizeMultiple ?? 8;
  const fit = (v) => Math.max(multiple, Math.round((v * 0.5) / multiple) * multiple);
  const [w, h] = [fit(width), fit(height)];
  const input = new ort.Tensor('float32', new Float32Array(3 * w * h).fill(0.25), [1, 3, h, w]);
  const t0 = process.hrtime.bigint();
  await bundle.lrEncoder.run({ [bundle.lrEncoder.inputNames[0]]: input });
  return { ms: Number(process.hrtime.bigint() - t0) / 1e6, size: `${w}x${h}` };
}

(async () => {
  const bundles = [['default', await Bundle.load(path.join(__dirname, '..', 'models', 'default'))]];
  if (fs.existsSync(path.join(official, 'arseg.json')))
    bundles.push(['official PSPNet18 layout', await Bundle.load(official)]);
  else
    console.error(
      `no bundle at ${official}: the official layout's row is left out (python/tools/export_official_layout.py makes it)`,
    );
  const configs = [['estimator (default settings)', {}]];
  if (variants)
    configs.push(
      ['hierarchical block matching, +-1 px per level, no refinement', { iterations: 0, fineRadius: 1 }],
      ['block matching +-1 px per level, then 8 steps', { fineRadius: 1 }],
      ['8 steps per level', { iterations: 8 }],
      ['finest level 0 (full resolution)', { finestLevel: 0 }],
      ['finest level 2 (quarter resolution)', { finestLevel: 2 }],
    );
  console.log(`SIMD: ${addon().simdLevel()}; ${rounds} rounds; translation (${SHIFT.join(', ')}) px; stride 4`);
  for (const [width, height] of sizes) {
    const prev = picture(width, height, 0, 0);
    const cur = picture(width, height, SHIFT[0], SHIFT[1]);
    const clip = ensureBenchClip(CACHE, {
      ...BENCH_CLIP,
      name: `bench-${width}x${height}-24f-tx3-ty1.mp4`,
      width,
      height,
      frames: 24,
    });
    const reads = READS.map(() => []);
    const times = configs.map(() => []);
    const errors = configs.map(() => 0);
    const enc = bundles.map(() => []);
    let lrSize = '';
    for (let round = 0; round < rounds + 1; round++) {
      // Round 0 warms up (ONNX Runtime's first run allocates) and is not counted.
      for (let c = 0; c < configs.length; c++) {
        const r = await estimateMotion(prev, cur, width, height, { stride: 4, ...configs[c][1] });
        if (round > 0) times[c].push(r.milliseconds);
        errors[c] = error(r);
      }
      for (let r = 0; r < READS.length; r++) {
        const ms = await readMs(clip, READS[r][1]);
        if (round > 0) reads[r].push(ms);
      }
      for (let b = 0; b < bundles.length; b++) {
        const e = await encoderMs(bundles[b][1], width, height);
        lrSize = e.size;
        if (round > 0) enc[b].push(e.ms);
      }
      // ONNX Runtime's pool threads spin for a while after a run: on 2 cores they would take
      // the CPU from the estimator timed next.
      await new Promise((resolve) => setTimeout(resolve, 300));
    }
    console.log(`\n${width}x${height} (LR input ${lrSize}):\n`);
    console.log(
      `| | ms per frame | mean error (px) | ${bundles.map(([name]) => `vs LR encoder, ${name}`).join(' | ')} |`,
    );
    console.log(`|---|---|---|${bundles.map(() => '---').join('|')}|`);
    for (let b = 0; b < bundles.length; b++)
      console.log(
        `| LR encoder, ${bundles[b][0]} | ${median(enc[b]).toFixed(2)} | | ${bundles.map((_, o) => (o === b ? '1' : '')).join(' | ')} |`,
      );
    for (let c = 0; c < configs.length; c++) {
      const ms = median(times[c]);
      console.log(
        `| ${configs[c][0]} | ${ms.toFixed(2)} | ${errors[c].toFixed(3)} | ${bundles.map((_, b) => `${((100 * ms) / median(enc[b])).toFixed(1)}%`).join(' | ')} |`,
      );
    }
    const decodeAlone = median(reads[0]);
    for (let r = 0; r < READS.length; r++) {
      const ms = median(reads[r]);
      const extra = r === 0 ? '' : ` (+${(ms - decodeAlone).toFixed(2)})`;
      const share = bundles.map((_, b) =>
        r === 0 ? '' : `${((100 * (ms - decodeAlone)) / median(enc[b])).toFixed(1)}% (the extra)`,
      );
      console.log(`| reader: ${READS[r][0]} | ${ms.toFixed(2)}${extra} | | ${share.join(' | ')} |`);
    }
  }
  for (const [, b] of bundles) await b.close();
})().catch((err) => {
  console.error(err);
  process.exit(1);
});
