#!/usr/bin/env node
'use strict';
/*
 * What adaptive keyframes buy, on test/fixtures/scene-cut.mp4 (textured translation of 2.2 px
 * per frame, a scene cut at frame 18, mid-GOP; GOP 12): for each keyframe policy, the number
 * of keyframes, the compute per frame, and how closely 'ar' reproduces 'hr' (share of pixels
 * whose label equals the HR label), over the whole clip and over the 6 frames after the cut.
 * The model is the tiny test bundle (random weights: agreement with HR is the measure, not
 * accuracy); compute is reported for it and, from its keyframe count, for the official
 * PSPNet18 layout at 960x720 (HR 308.6 GMAC, other AR frames 83.1 GMAC; `ar-seg flops`).
 *
 *   node bench/adaptive.js
 */
const path = require('node:path');
const { ArSeg } = require('../dist');
const { bundleFlops } = require('../dist/flops');

const BUNDLE = path.join(__dirname, '..', 'test', 'fixtures', 'bundles', 'tiny-psp18');
const CLIP = path.join(__dirname, '..', 'test', 'fixtures', 'scene-cut.mp4');
const OFFICIAL = { hr: 308.64, arOther: 83.1 };

(async () => {
  const seg = await ArSeg.load(BUNDLE);
  const hr = [];
  for await (const r of seg.segment(CLIP, { mode: 'hr' })) hr.push(r.labels);
  const flops = await bundleFlops(seg.bundle.dir, seg.bundle.manifest, { width: 192, height: 128 });
  const policies = [
    ['gop (every I-frame)', 'gop'],
    ['interval 12', 12],
    ['adaptive (defaults: cut, 8% motion, max 12)', 'adaptive'],
    ['adaptive, scene cuts only (max 12)', { policy: 'adaptive', maxMotion: 1e9, maxInterval: 12 }],
  ];
  console.log('| policy | keyframes | agreement with HR, all frames | frames 18-23 (after the cut) | tiny model GMAC/frame | official layout GMAC/frame (960x720) |');
  console.log('|---|---|---|---|---|---|');
  for (const [name, keyframes] of policies) {
    let keys = 0;
    const agree = [];
    for await (const r of seg.segment(CLIP, { mode: 'ar', keyframes })) {
      if (r.isKeyframe) keys++;
      const ref = hr[r.index];
      let same = 0;
      for (let i = 0; i < ref.length; i++) same += ref[i] === r.labels[i];
      agree.push(same / ref.length);
    }
    const n = agree.length;
    const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
    const tiny = (keys * flops.perFrame.hr + (n - keys) * flops.perFrame.arOther) / n;
    const official = (keys * OFFICIAL.hr + (n - keys) * OFFICIAL.arOther) / n;
    console.log(`| ${name} | ${keys} | ${(100 * mean(agree)).toFixed(1)}% | ${(100 * mean(agree.slice(18, 24))).toFixed(1)}% | ${tiny.toFixed(3)} | ${official.toFixed(1)} |`);
  }
  await seg.close();
})().catch((err) => {
  console.error(err);
  process.exit(1);
});
