#!/usr/bin/env node
'use strict';
/*
 * The two kernels the device path repeats bit for bit (native/postprocess), against another
 * build of the addon, side by side in one run:
 *   - the pointwise head at every SIMD level (ARSEG_SIMD: each level in a child process), the
 *     default model's 16 -> 11 and the official PSPNet18's 64 -> 12 at 960x720, and inside the
 *     fused CReFF kernel (K=7, 64 -> 12 at 480x360: an AR frame's CReFF and decoder);
 *   - labels from logits through one resize (align-corners and half-pixel: the LR logits of
 *     the default layout, 480x360 -> 960x720, 11 classes) and two (BiSeNet18's 120x90, x8
 *     half-pixel then align-corners).
 *
 *   node bench/head-labels.js --other ADDON.node [--rounds 7]
 *
 * ADDON.node: e.g. a copy of main's build/Release/ar_seg_native.node. Medians of interleaved
 * rounds; the head and CReFF on one thread, the labels on the kernel's default (all cores).
 */
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { randoms } = require('../test/helpers/random');

const args = process.argv.slice(2);
const arg = (name, fallback) => (args.includes(name) ? args[args.indexOf(name) + 1] : fallback);
const other = arg('--other', null);
const rounds = Number(arg('--rounds', 7));
if (!other) {
  console.error('usage: node bench/head-labels.js --other ADDON.node [--rounds 7]');
  process.exit(2);
}

function median(values) {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

async function time(fn) {
  const t0 = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

/** Medians in ms of `cases` (name -> async (addon) => void) on both addons, interleaved. */
async function compare(addons, cases) {
  const ms = new Map(cases.map(([name]) => [name, [[], []]]));
  for (let r = 0; r < rounds; r++)
    for (const [name, fn] of cases)
      // each build first every other round: neither always gets the caches the other left
      for (const a of r % 2 ? [1, 0] : [0, 1]) ms.get(name)[a].push(await time(() => fn(addons[a])));
  return cases.map(([name]) => ({ name, mine: median(ms.get(name)[0]), other: median(ms.get(name)[1]) }));
}

async function child() {
  const mine = require('../dist/native').addon();
  const theirs = require(path.resolve(other));
  const heads = [
    [16, 11],
    [64, 12],
  ].map(([C, K]) => {
    const [H, W] = [720, 960];
    const feature = randoms(C * H * W, 1, 2),
      weight = randoms(K * C, 2, 0.5),
      bias = randoms(K, 3, 0.5);
    const output = new Float32Array(K * H * W);
    return [
      `head ${C} -> ${K}, ${W}x${H}`,
      (a) => a.pointwiseHead(feature, C, H, W, weight, bias, K, { output, threads: 1 }),
    ];
  });
  // A fused frame: CReFF with the head applied per tile (the pipeline's AR frames), 64 -> 12.
  const [C, K, H, W, h, w] = [64, 12, 360, 480, 180, 240];
  const conv = (seed) => [randoms(C * 9, seed, 0.3), randoms(C, seed + 1, 0.3)];
  const [[qWeight, qBias], [kWeight, kBias], [vWeight, vBias]] = [conv(10), conv(12), conv(14)];
  const weights = { channels: C, window: 7, qWeight, qBias, kWeight, kBias, vWeight, vBias };
  const key = randoms(C * H * W, 16, 2),
    lr = randoms(C * h * w, 17, 2),
    motion = randoms(2 * H * W, 18, 4);
  const head = { weight: randoms(K * C, 19, 0.5), bias: randoms(K, 20, 0.5) };
  const fused = new Float32Array(K * H * W);
  const prepared = await Promise.all(
    [mine, theirs].map((a) => new a.NativeCReFF(weights).prepareKeyframe(key, H, W, { mode: 'exact', threads: 1 })),
  );
  const creffs = [mine, theirs].map((a) => new a.NativeCReFF(weights));
  heads.push([
    `CReFF K=7 + head ${C} -> ${K}, ${W}x${H} (a fused frame)`,
    (a) => {
      const i = a === mine ? 0 : 1;
      return creffs[i].run(lr, h, w, prepared[i], H, W, motion, { head, output: fused, threads: 1 });
    },
  ]);
  const results = await compare([mine, theirs], heads);
  process.stdout.write(JSON.stringify({ level: mine.simdLevel ? mine.simdLevel() : '?', results }));
}

async function main() {
  const rows = [];
  for (const level of ['', 'avx2', 'baseline']) {
    const r = spawnSync(process.execPath, [__filename, '--child', '--other', other, '--rounds', String(rounds)], {
      env: { ...process.env, ARSEG_SIMD: level },
      encoding: 'utf8',
    });
    if (r.status !== 0) throw new Error(r.stderr);
    const { level: name, results } = JSON.parse(r.stdout);
    for (const x of results) rows.push([`${x.name} (${name})`, x.mine, x.other]);
  }
  const mine = require('../dist/native').addon();
  const theirs = require(path.resolve(other));
  const K = 11;
  const lr = randoms(K * 360 * 480, 4, 3);
  const bise = randoms(12 * 90 * 120, 5, 3);
  const labels = [
    ['labels 480x360 -> 960x720 align-corners', (a) => a.labelsFromLogits(lr, K, 360, 480, 720, 960, 'align-corners')],
    ['labels 480x360 -> 960x720 half-pixel', (a) => a.labelsFromLogits(lr, K, 360, 480, 720, 960, 'half-pixel')],
    [
      'labels 120x90 x8 half-pixel, then -> 960x720',
      (a) =>
        a.labelsFromLogits(bise, 12, 90, 120, 720, 960, 'align-corners', {
          height: 720,
          width: 960,
          upsampling: 'half-pixel',
        }),
    ],
  ];
  for (const x of await compare([mine, theirs], labels)) rows.push([x.name, x.mine, x.other]);
  console.log('| kernel | this build (ms) | other build (ms) | this / other |');
  console.log('|---|---:|---:|---:|');
  for (const [name, a, b] of rows)
    console.log(`| ${name} | ${a.toFixed(1)} | ${b.toFixed(1)} | ${(a / b).toFixed(2)}x |`);
}

(args.includes('--child') ? child() : main()).catch((err) => {
  console.error(err);
  process.exit(1);
});
