#!/usr/bin/env node
'use strict';
/*
 * Accuracy of the dense motion fields against the fixtures' known motion
 * (test/fixtures/README.md), per clip: for every non-keyframe, the error of each interior cell
 * (2-cell margin) of the field accumulated to the keyframe, |field - truth| (Euclidean, px).
 * Shows what one vs several reference frames, and B-frames, cost.
 *
 *   node bench/motion-accuracy.js [--stride 8]
 *
 * A second table gives the motion estimator's error on the same clips and on codecs without
 * motion vectors (estimatorSection).
 */
const { openVideo } = require('../dist');
const { fixture, meta } = require('../test/helpers/fixtures');

const args = process.argv.slice(2);
const stride = Number(args[args.indexOf('--stride') + 1]) || 8;

function truth(m, px, py, k) {
  if (m.motion.type === 'translate') return [k * m.motion.dx, k * m.motion.dy];
  const cx = (m.width - 1) / 2;
  const cy = (m.height - 1) / 2;
  const s = Math.pow(m.motion.factor, -k) - 1;
  return [(px - cx) * s, (py - cy) * s];
}

function pct(sorted, q) {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

/**
 * The motion estimator (native/motion/estimator.h) on the same kind of clips: motionSource
 * 'estimate' on the H.264 fixtures (the same stream as the bitstream rows above) and 'auto' on
 * the codecs without vectors; keyframes every 12 frames (the MJPEG clip is all I-frames).
 */
async function estimatorSection() {
  console.log('\nEstimated motion (motionSource estimate; keyframe every 12 frames):\n');
  console.log('| clip | codec | motion | mean error (px) | median | 95th pct | share within 0.5 px | worst frame mean |');
  console.log('|---|---|---|---|---|---|---|---|');
  for (const name of ['translate-p.mp4', 'translate-b.mp4', 'translate-refs.mp4', 'translate-vp9.webm', 'translate-mjpeg.avi', 'zoom.mp4']) {
    const m = meta[name];
    const errs = [];
    let worst = 0;
    let source = '';
    for await (const f of openVideo(fixture(name), { motion: 'accumulated', stride, keyframes: 12, motionSource: 'estimate' })) {
      source = f.motionSource;
      const k = f.index - f.keyframeIndex;
      if (k === 0) continue;
      const { width, height, data } = f.motion;
      let sum = 0;
      let n = 0;
      for (let i = 2; i < height - 2; i++)
        for (let j = 2; j < width - 2; j++) {
          const [tx, ty] = truth(m, j * stride + (stride - 1) / 2, i * stride + (stride - 1) / 2, k);
          const e = Math.hypot(data[i * width + j] - tx, data[width * height + i * width + j] - ty);
          errs.push(e);
          sum += e;
          n++;
        }
      worst = Math.max(worst, sum / n);
    }
    errs.sort((a, b) => a - b);
    const mean = errs.reduce((a, b) => a + b, 0) / errs.length;
    const within = errs.filter((e) => e <= 0.5).length / errs.length;
    console.log(
      `| ${name} | ${m.codec} | ${source} | ${mean.toFixed(3)} | ${pct(errs, 0.5).toFixed(3)} | ${pct(errs, 0.95).toFixed(3)} | ${(100 * within).toFixed(1)}% | ${worst.toFixed(3)} |`,
    );
  }
}

(async () => {
  console.log(`| clip | B-frames | refs | mean error (px) | median | 95th pct | share within 0.5 px | worst frame mean |`);
  console.log('|---|---|---|---|---|---|---|---|');
  for (const name of ['translate-p.mp4', 'translate-b.mp4', 'translate-refs.mp4', 'zoom.mp4']) {
    const m = meta[name];
    const errs = [];
    let worst = 0;
    for await (const f of openVideo(fixture(name), { motion: 'accumulated', stride })) {
      const k = f.index - f.keyframeIndex;
      if (k === 0) continue;
      const { width, height, data } = f.motion;
      let sum = 0;
      let n = 0;
      for (let i = 2; i < height - 2; i++)
        for (let j = 2; j < width - 2; j++) {
          const px = j * stride + (stride - 1) / 2;
          const py = i * stride + (stride - 1) / 2;
          const [tx, ty] = truth(m, px, py, k);
          const e = Math.hypot(data[i * width + j] - tx, data[width * height + i * width + j] - ty);
          errs.push(e);
          sum += e;
          n++;
        }
      worst = Math.max(worst, sum / n);
    }
    errs.sort((a, b) => a - b);
    const mean = errs.reduce((a, b) => a + b, 0) / errs.length;
    const within = errs.filter((e) => e <= 0.5).length / errs.length;
    console.log(
      `| ${name} | ${m.bframes} | ${m.refs} | ${mean.toFixed(3)} | ${pct(errs, 0.5).toFixed(3)} | ${pct(errs, 0.95).toFixed(3)} | ${(100 * within).toFixed(1)}% | ${worst.toFixed(3)} |`,
    );
  }
  await estimatorSection();
})();
