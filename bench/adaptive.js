#!/usr/bin/env node
'use strict';
/*
 * What adaptive keyframes buy, on test/fixtures/scene-cut.mp4 (textured translation of 2.2 px
 * per frame, a scene cut at frame 18, mid-GOP; GOP 12): for each keyframe policy, the number
 * of keyframes, the compute per frame, and how closely 'ar' reproduces 'hr': the relative error
 * of the AR logits against the HR logits of the same frame (||ar - hr|| / ||hr||), over the
 * whole clip and over the 6 frames after the cut. The model is the tiny test bundle (random
 * weights: how well AR reproduces HR is the measure, not accuracy); compute is reported for it
 * and, from its keyframe count, for the official PSPNet18 layout at 960x720 (HR 308.6 GMAC,
 * other AR frames 83.1 GMAC; `ar-seg flops`).
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
  for await (const r of seg.segment(CLIP, { mode: 'hr', logits: true })) hr.push(r.logits.data);
  const flops = await bundleFlops(seg.bundle.dir, seg.bundle.manifest, { width: 192, height: 128 });
  const policies = [
    ['gop (every I-frame)', 'gop'],
    ['interval 12', 12],
    ['adaptive (defaults: cut, 8% motion, max 12)', 'adaptive'],
    ['adaptive, scene cuts only (max 12)', { policy: 'adaptive', maxMotion: 1e6, maxInterval: 12 }],
  ];
  console.log(
    '| policy | keyframes | AR vs HR logits, relative error, all frames | frames 18-23 (after the cut) | tiny model GMAC/frame | official layout GMAC/frame (960x720) |',
  );
  console.log('|---|---|---|---|---|---|');
  for (const [name, keyframes] of policies) {
    let keys = 0;
    const agree = [];
    for await (const r of seg.segment(CLIP, { mode: 'ar', keyframes, logits: true })) {
      if (r.isKeyframe) keys++;
      const ref = hr[r.index];
      let err = 0;
      let norm = 0;
      for (let i = 0; i < ref.length; i++) {
        err += (r.logits.data[i] - ref[i]) ** 2;
        norm += ref[i] ** 2;
      }
      agree.push(Math.sqrt(err / norm));
    }
    const n = agree.length;
    const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
    const tiny = (keys * flops.perFrame.hr + (n - keys) * flops.perFrame.arOther) / n;
    const official = (keys * OFFICIAL.hr + (n - keys) * OFFICIAL.arOther) / n;
    console.log(
      `| ${name} | ${keys} | ${mean(agree).toFixed(3)} | ${mean(agree.slice(18, 24)).toFixed(3)} | ${tiny.toFixed(3)} | ${official.toFixed(1)} |`,
    );
  }
  await seg.close();
})().catch((err) => {
  console.error(err);
  process.exit(1);
});
