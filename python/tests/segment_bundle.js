#!/usr/bin/env node
'use strict';
// For python/tests/test_export_roundtrip.py: runs a bundle through the Node pipeline
// (ArSeg.load(dir).segment(clip, { mode, logits: true })) for each mode, and writes what the
// pipeline fed its networks, so that PyTorch can compute the same frames:
//   OUT/hr-<i>.npy, OUT/lr-<i>.npy        the HR and LR image tensors (as the pipeline's reader makes them)
//   OUT/motion-<i>.npy                    accumulated motion resized to the HR feature size (2 x H x W)
//   OUT/logits-<mode>-<i>.npy             the pipeline's logits (decoder output, before upsampling)
//   OUT/frames.json                       [{ index, isKeyframe, keyframeIndex, branch: { mode: branch } }]
// Usage: node python/tests/segment_bundle.js BUNDLE_DIR CLIP OUT_DIR FRAMES [MODES=hr,lr,ar]
const fs = require('node:fs');
const path = require('node:path');
const { ArSeg, openVideo, resizeMotion, writeNpy } = require('../../dist');

(async () => {
  const [bundleDir, clip, out, count, modeList = 'hr,lr,ar'] = process.argv.slice(2);
  const n = Number(count);
  fs.mkdirSync(out, { recursive: true });
  const seg = await ArSeg.load(bundleDir, { threads: 1 });
  const m = seg.bundle.manifest;
  const frames = new Map();
  const featureSize = new Map(); // frame -> [H, W] of the HR feature CReFF ran at
  try {
    for (const mode of modeList.split(',')) {
      for await (const r of seg.segment(clip, { mode, logits: true })) {
        if (r.index >= n) break;
        const f = frames.get(r.index) ?? { index: r.index, isKeyframe: r.isKeyframe, keyframeIndex: r.keyframeIndex, branch: {} };
        f.branch[mode] = r.branch;
        frames.set(r.index, f);
        await writeNpy(path.join(out, `logits-${mode}-${r.index}.npy`), r.logits.data, [...r.logits.dims]);
        if (mode !== 'lr') featureSize.set(r.index, [r.logits.dims[2], r.logits.dims[3]]);
      }
    }
  } finally {
    await seg.close();
  }
  // The same reader options as ArSeg.segment's defaults (pipeline.ts).
  const norm = { mean: m.input.mean, std: m.input.std, channelOrder: m.input.channelOrder };
  const multiple = m.input.sizeMultiple ?? 8;
  const reader = openVideo(clip, {
    tensors: [{ scale: 1, multiple, ...norm }, { scale: m.lrScale, multiple, ...norm }],
    motion: 'accumulated',
    stride: 4,
    keyframes: m.keyframeInterval,
  });
  for await (const f of reader) {
    if (f.index >= n) break;
    const [hr, lr] = f.tensors;
    await writeNpy(path.join(out, `hr-${f.index}.npy`), hr.data, [...hr.dims]);
    await writeNpy(path.join(out, `lr-${f.index}.npy`), lr.data, [...lr.dims]);
    const size = featureSize.get(f.index);
    if (size) {
      const [H, W] = size;
      await writeNpy(path.join(out, `motion-${f.index}.npy`), resizeMotion(f.motion, f.width, f.height, W, H), [2, H, W]);
    }
  }
  const list = [...frames.values()].sort((a, b) => a.index - b.index);
  fs.writeFileSync(path.join(out, 'frames.json'), JSON.stringify({ stride: m.feature.stride, frames: list }, null, 1));
})().catch((err) => {
  console.error(err);
  process.exit(1);
});
