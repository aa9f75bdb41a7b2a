#!/usr/bin/env node
'use strict';
/*
 * What the official pipeline (a converted checkpoint's bundle, docs/conversion.md) costs over this
 * project's, stage by stage, at CamVid size (960x720, LR scale 0.5), side by side in one run.
 * The networks and CReFF are the same in both and left out:
 *   - the reader: HR + LR tensors from the frame by swscale (project) vs the HR tensor and the LR
 *     one resized from it natively (official), with the motion accumulated at stride 4 (project)
 *     vs 1 (official: mergeMotion is per pixel);
 *   - the motion at the feature size: cell-centres vs align-corners, to BiSeNet18's stride-8
 *     feature (120x90) and to PSPNet18's stride-1 feature (960x720);
 *   - the labels, 12 classes: BiSeNet18's logits (120x90) in one half-pixel resize vs x8 then
 *     align-corners; PSPNet18's LR logits (480x360) in one resize vs via the LR input.
 *
 *   node bench/official-pipeline.js [--rounds 5] [--frames 24]
 *
 * The clip is bench/clip.js's 960x720 H.264 (needs ffmpeg with libx264).
 */
const path = require('node:path');
const { openVideo, resizeMotion } = require('../dist');
const { addon } = require('../dist/native');
const { ensureBenchClip, CAMVID_CLIP } = require('./clip');
const { randoms } = require('../test/helpers/random');

const args = process.argv.slice(2);
const arg = (name, fallback) => (args.includes(name) ? Number(args[args.indexOf(name) + 1]) : fallback);
const rounds = arg('--rounds', 5);
const frames = arg('--frames', 24);
const CAMVID_STATS = { mean: [0.39068785, 0.40521392, 0.41434407], std: [0.29652068, 0.30514979, 0.30080369] };

function median(values) {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

async function readerMs(clip, options) {
  const t0 = process.hrtime.bigint();
  let n = 0;
  for await (const f of openVideo(clip, { ...options, threads: 1 })) {
    if (!f) break;
    if (++n >= frames) break;
  }
  return Number(process.hrtime.bigint() - t0) / 1e6 / n;
}

async function timeMs(fn, repeats) {
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < repeats; i++) await fn();
  return Number(process.hrtime.bigint() - t0) / 1e6 / repeats;
}

(async () => {
  const clip = ensureBenchClip(path.join(__dirname, '..', '.bench-cache'), CAMVID_CLIP);
  const [W, H] = [960, 720];
  const project = {
    tensors: [
      { scale: 1, multiple: 16, ...CAMVID_STATS },
      { scale: 0.5, multiple: 16, ...CAMVID_STATS },
    ],
    motion: 'accumulated',
    stride: 4,
  };
  const official = {
    tensors: [
      { scale: 1, multiple: 1, ...CAMVID_STATS },
      { from: 0, scale: 0.5 },
    ],
    motion: 'accumulated',
    stride: 1,
  };
  const cases = [
    ['reader: tensors + motion, project (swscale x2, stride 4)', () => readerMs(clip, project)],
    ['reader: tensors + motion, official (HR + LR from it, stride 1)', () => readerMs(clip, official)],
    ['reader: tensors only, project (swscale x2)', () => readerMs(clip, { tensors: project.tensors })],
    ['reader: tensors only, official (HR + LR from it)', () => readerMs(clip, { tensors: official.tensors })],
  ];
  // motion fields as the reader gives them, at strides 4 and 1
  const fieldAt = async (stride) => {
    const reader = openVideo(clip, { motion: 'accumulated', stride });
    let f;
    for (let i = 0; i < 6; i++) f = await reader.read();
    reader.close();
    return f.motion;
  };
  const f4 = await fieldAt(4);
  const f1 = await fieldAt(1);
  for (const [fw, fh, what] of [
    [120, 90, 'BiSeNet18 feature 120x90'],
    [960, 720, 'PSPNet18 feature 960x720'],
  ]) {
    cases.push([
      `motion to the ${what}: cell-centres (stride 4)`,
      () => timeMs(() => resizeMotion(f4, W, H, fw, fh, 'cell-centres'), 20),
    ]);
    cases.push([
      `motion to the ${what}: align-corners (stride 1)`,
      () => timeMs(() => resizeMotion(f1, W, H, fw, fh, 'align-corners'), 20),
    ]);
  }
  const bise = randoms(12 * 90 * 120, 1, 4);
  const psp = randoms(12 * 360 * 480, 2, 4);
  cases.push([
    'labels, BiSeNet18 120x90 logits: one half-pixel resize',
    () => timeMs(() => addon().labelsFromLogits(bise, 12, 90, 120, H, W, 'half-pixel'), 5),
  ]);
  cases.push([
    'labels, BiSeNet18 120x90 logits: x8 half-pixel, then align-corners',
    () =>
      timeMs(
        () =>
          addon().labelsFromLogits(bise, 12, 90, 120, H, W, 'align-corners', {
            height: 720,
            width: 960,
            upsampling: 'half-pixel',
          }),
        5,
      ),
  ]);
  cases.push([
    'labels, PSPNet18 LR 480x360 logits: one align-corners resize',
    () => timeMs(() => addon().labelsFromLogits(psp, 12, 360, 480, H, W, 'align-corners'), 5),
  ]);
  cases.push([
    'labels, PSPNet18 LR 480x360 logits: via the LR input (479x359 here), then the frame',
    () =>
      timeMs(() => addon().labelsFromLogits(psp, 12, 360, 480, H, W, 'align-corners', { height: 359, width: 479 }), 5),
  ]);

  const results = cases.map(() => []);
  for (let r = 0; r < rounds; r++) for (let i = 0; i < cases.length; i++) results[i].push(await cases[i][1]());
  console.log(`clip ${path.basename(clip)}, ${frames} frames per reader run, median of ${rounds} rounds (interleaved)`);
  console.log('| stage | ms per frame (call) |');
  console.log('|---|---|');
  for (let i = 0; i < cases.length; i++) console.log(`| ${cases[i][0]} | ${median(results[i]).toFixed(2)} |`);
})().catch((err) => {
  console.error(err);
  process.exit(1);
});
