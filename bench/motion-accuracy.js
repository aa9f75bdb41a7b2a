#!/usr/bin/env node
'use strict';
/*
 * Accuracy of the dense motion fields against the fixtures' known motion
 * (test/fixtures/README.md), per clip and per distance to the keyframe: for every non-keyframe,
 * the error of each interior cell (2-cell margin) of the field accumulated to the keyframe,
 * |field - truth| (Euclidean, px). Shows what several reference frames, B-frames, B-pyramids,
 * open GOPs and HEVC cost, and whether the references are exact (reader.motionExact).
 *
 * Target (issue 13), for every bitstream configuration and every distance up to 11: mean error
 * <= 0.1 px and >= 98% of interior cells within 0.5 px (translation clips; zoom is reported).
 *
 *   node bench/motion-accuracy.js [--stride 8] [--composition bilinear|official]
 *                                 [--by-distance] [--json] [clip.mp4 ...]
 *
 * A second table gives the motion estimator's error on the same kind of clips and on codecs
 * without motion vectors (estimatorSection; skipped with a clip list or --json).
 */
const path = require('node:path');
const { openVideo } = require('../dist');
const { fixture, meta } = require('../test/helpers/fixtures');

const args = process.argv.slice(2);
const opt = (name, fallback) => (args.includes(name) ? args[args.indexOf(name) + 1] : fallback);
const stride = Number(opt('--stride', 8));
const composition = opt('--composition', 'bilinear');
const byDistance = args.includes('--by-distance');
const asJson = args.includes('--json');
const named = args.filter((a, i) => !a.startsWith('--') && !['--stride', '--composition'].includes(args[i - 1]));

const CLIPS = [
  'translate-p.mp4',
  'translate-b.mp4',
  'translate-refs.mp4',
  'x264-default.mp4',
  'x265-default.mp4',
  'x265-p.mp4',
  'hevc-wpp.mp4',
  'hevc-main10.mp4',
  'zoom.mp4',
];

function truth(m, px, py, k) {
  if (m.motion.type === 'translate') return [k * m.motion.dx, k * m.motion.dy];
  const cx = (m.width - 1) / 2;
  const cy = (m.height - 1) / 2;
  const s = Math.pow(m.motion.factor, -k) - 1;
  return [(px - cx) * s, (py - cy) * s];
}

function summary(errs) {
  const sorted = Float64Array.from(errs).sort();
  const n = sorted.length;
  let sum = 0;
  let within = 0;
  for (const e of sorted) {
    sum += e;
    if (e <= 0.5) within++;
  }
  const pct = (q) => sorted[Math.min(n - 1, Math.floor(q * n))];
  return { cells: n, mean: sum / n, median: pct(0.5), p95: pct(0.95), within: within / n };
}

async function measure(file, m) {
  const perDistance = new Map();
  const reader = openVideo(file, { motion: 'accumulated', stride, composition });
  for await (const f of reader) {
    const k = f.index - f.keyframeIndex;
    if (k === 0) continue;
    const { width, height, data } = f.motion;
    const errs = perDistance.get(k) ?? [];
    for (let i = 2; i < height - 2; i++)
      for (let j = 2; j < width - 2; j++) {
        const px = j * stride + (stride - 1) / 2;
        const py = i * stride + (stride - 1) / 2;
        const [tx, ty] = truth(m, px, py, k);
        errs.push(Math.hypot(data[i * width + j] - tx, data[width * height + i * width + j] - ty));
      }
    perDistance.set(k, errs);
  }
  const all = [].concat(...perDistance.values());
  const distances = [...perDistance.keys()]
    .sort((a, b) => a - b)
    .map((k) => ({ distance: k, ...summary(perDistance.get(k)) }));
  const worst = distances.reduce((w, d) => (d.mean > w.mean ? d : w), distances[0]);
  const worstWithin = distances.reduce((w, d) => (d.within < w.within ? d : w), distances[0]);
  return { exact: reader.motionExact, all: summary(all), distances, worst, worstWithin };
}

/**
 * The motion estimator (native/motion/estimator.h) on the same kind of clips: motionSource
 * 'estimate' on the H.264 and HEVC fixtures (the same streams as the bitstream rows above) and on
 * the codecs without vectors; keyframes every 12 frames (the MJPEG clip is all I-frames).
 */
async function estimatorSection() {
  console.log('\nEstimated motion (motionSource estimate; keyframe every 12 frames):\n');
  console.log('| clip | codec | mean error (px) | median | 95th pct | share within 0.5 px | worst distance: mean |');
  console.log('|---|---|---|---|---|---|---|');
  const clips = [
    'translate-p.mp4',
    'translate-b.mp4',
    'translate-refs.mp4',
    'x264-default.mp4',
    'x265-default.mp4',
    'translate-vp9.webm',
    'translate-mjpeg.avi',
    'zoom.mp4',
  ];
  for (const name of clips.filter((c) => meta[c])) {
    const m = meta[name];
    const perDistance = new Map();
    for await (const f of openVideo(fixture(name), {
      motion: 'accumulated',
      stride,
      keyframes: 12,
      motionSource: 'estimate',
    })) {
      const k = f.index - f.keyframeIndex;
      if (k === 0) continue;
      const { width, height, data } = f.motion;
      const errs = perDistance.get(k) ?? [];
      for (let i = 2; i < height - 2; i++)
        for (let j = 2; j < width - 2; j++) {
          const [tx, ty] = truth(m, j * stride + (stride - 1) / 2, i * stride + (stride - 1) / 2, k);
          errs.push(Math.hypot(data[i * width + j] - tx, data[width * height + i * width + j] - ty));
        }
      perDistance.set(k, errs);
    }
    const all = summary([].concat(...perDistance.values()));
    const worst = [...perDistance.entries()]
      .map(([k, e]) => ({ k, mean: summary(e).mean }))
      .reduce((w, d) => (d.mean > w.mean ? d : w));
    console.log(
      `| ${name} | ${m.codec} | ${all.mean.toFixed(3)} | ${all.median.toFixed(3)} | ${all.p95.toFixed(3)} | ${(100 * all.within).toFixed(1)}% | d=${worst.k}: ${worst.mean.toFixed(3)} |`,
    );
  }
}

(async () => {
  const clips = named.length ? named : CLIPS.filter((c) => meta[c]);
  const results = [];
  for (const name of clips) {
    const m = meta[path.basename(name)];
    if (!m) throw new Error(`${name}: not in test/fixtures/fixtures.json (its known motion is needed)`);
    const file = name.includes('/') ? name : fixture(name);
    results.push({ clip: path.basename(name), meta: m, ...(await measure(file, m)) });
  }
  if (asJson) {
    console.log(JSON.stringify({ stride, composition, results }, null, 2));
    return;
  }
  console.log(`stride ${stride}, composition ${composition}`);
  console.log(
    '| clip | codec | B-frames | refs | exact refs | mean error (px) | median | 95th pct | within 0.5 px | worst distance: mean | worst distance: within 0.5 px |',
  );
  console.log('|---|---|---|---|---|---|---|---|---|---|---|');
  for (const r of results) {
    const m = r.meta;
    const bf = m.bframes === 'default' ? 'x26x default' : String(m.bframes);
    console.log(
      `| ${r.clip} | ${m.codec} | ${bf} | ${m.refs} | ${r.exact ? 'yes' : 'no'} | ${r.all.mean.toFixed(3)} | ${r.all.median.toFixed(3)} | ` +
        `${r.all.p95.toFixed(3)} | ${(100 * r.all.within).toFixed(1)}% | ${r.worst.mean.toFixed(3)} (d=${r.worst.distance}) | ` +
        `${(100 * r.worstWithin.within).toFixed(1)}% (d=${r.worstWithin.distance}) |`,
    );
  }
  if (named.length === 0) await estimatorSection();
  if (byDistance) {
    for (const r of results) {
      console.log(`\n${r.clip}: distance | mean | within 0.5 px`);
      for (const d of r.distances)
        console.log(`  ${String(d.distance).padStart(2)} | ${d.mean.toFixed(3)} | ${(100 * d.within).toFixed(1)}%`);
    }
  }
})().catch((err) => {
  console.error(err);
  process.exit(1);
});
