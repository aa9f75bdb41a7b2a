#!/usr/bin/env node
'use strict';
// Writes, for the pipeline goldens, what the Node pipeline feeds its networks for the first
// frames of a clip: the HR and LR image tensors and the accumulated motion resized to the HR
// feature size, as .npy files (OUT/hr-<i>.npy, lr-<i>.npy, motion-<i>.npy, frames.json).
// Usage: node python/tools/dump_pipeline_inputs.js BUNDLE_DIR CLIP OUT_DIR FRAMES
const fs = require('node:fs');
const path = require('node:path');
const { openVideo, resizeMotion, writeNpy } = require('../../dist');

(async () => {
  const [bundleDir, clip, out, count] = process.argv.slice(2);
  const m = JSON.parse(fs.readFileSync(path.join(bundleDir, 'arseg.json'), 'utf8'));
  const norm = { mean: m.input.mean, std: m.input.std, channelOrder: m.input.channelOrder };
  const multiple = m.input.sizeMultiple ?? 8;
  fs.mkdirSync(out, { recursive: true });
  const reader = openVideo(clip, {
    tensors: [
      { scale: 1, multiple, ...norm },
      { scale: m.lrScale, multiple, ...norm },
    ],
    motion: 'accumulated',
    stride: 4,
    keyframes: m.keyframeInterval,
  });
  const frames = [];
  for await (const f of reader) {
    if (f.index >= Number(count)) break;
    const [hr, lr] = f.tensors;
    const [, , H, W] = hr.dims; // feature stride 1: the feature has the HR tensor's size
    await writeNpy(path.join(out, `hr-${f.index}.npy`), hr.data, [...hr.dims]);
    await writeNpy(path.join(out, `lr-${f.index}.npy`), lr.data, [...lr.dims]);
    await writeNpy(path.join(out, `motion-${f.index}.npy`), resizeMotion(f.motion, f.width, f.height, W, H), [2, H, W]);
    frames.push({ index: f.index, isKeyframe: f.isKeyframe, keyframeIndex: f.keyframeIndex });
  }
  fs.writeFileSync(path.join(out, 'frames.json'), JSON.stringify(frames, null, 1));
})().catch((err) => {
  console.error(err);
  process.exit(1);
});
