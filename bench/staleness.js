#!/usr/bin/env node
'use strict';
/*
 * What staleness costs (issue 14): mode 'ar' on a labelled split with asynchronous keyframes
 * ready S frames after their frame (keyframeDelay S: a deterministic stand-in for an HR encoder
 * that takes S frame periods), next to the synchronous schedule and to LR alone; and, at each S,
 * the three ways of reaching an older keyframe across the frame's own (acrossKeyframes):
 * 'bridge' (the default), 'zero-motion', and 'lr' (no fusion until the own keyframe is ready).
 *
 *   cd python && /usr/bin/python3 -m arseg.street generate --train 0 --val 0 --test 12 --out ../.data/street
 *   node bench/staleness.js [--dataset .data/street] [--split test] [--model models/default] [--delays 3,12] [--clips N]
 *
 * Rows: mIoU per reference distance d (the protocol's: the frame's distance to its OWN
 * keyframe) and the mean over d; "stale" is the mIoU of the frames fused with an older keyframe
 * alone (d < S after the first GOP of a clip), "first GOP" counts the frames at d < S of a
 * clip's first GOP, which have no older keyframe and take the LR branch in every variant.
 */
const path = require('node:path');
const { ArSeg, DistanceMetrics, ConfusionMatrix, meanOf } = require('../dist');
const { resolveClips, listLabelFiles, ClipLabels } = require('../dist/dataset');

const args = process.argv.slice(2);
const arg = (name, fallback) => (args.includes(name) ? args[args.indexOf(name) + 1] : fallback);
const root = path.join(__dirname, '..');
const dataset = arg('--dataset', path.join(root, '.data', 'street'));
const split = arg('--split', 'test');
const model = arg('--model', path.join(root, 'models', 'default'));
const delays = arg('--delays', '3,12').split(',').map(Number);
const clipLimit = Number(arg('--clips', 0));
const L = 12;

const pct = (v) => (v === null ? '–' : (100 * v).toFixed(1));

(async () => {
  const { clips: all } = await resolveClips([dataset], { split });
  const clips = clipLimit > 0 ? all.slice(0, clipLimit) : all;
  const seg = await ArSeg.load(model);
  const K = seg.bundle.manifest.classes.length;
  const ignoreIndex = seg.bundle.manifest.ignoreIndex;
  const ignore = typeof ignoreIndex === 'number' && ignoreIndex < K ? [ignoreIndex] : [];
  const labels = [];
  for (const clip of clips) labels.push(new ClipLabels(clip, await listLabelFiles(clip.labels, clip.name), K));

  const variants = [
    { name: 'lr', options: { mode: 'lr' } },
    { name: 'ar sync', options: { mode: 'ar' } },
  ];
  for (const S of delays)
    for (const across of ['bridge', 'zero-motion', 'lr'])
      variants.push({
        name: `ar async S=${S} ${across}`,
        options: { mode: 'ar', keyframeLatency: 'async', keyframeDelay: S, acrossKeyframes: across },
      });

  const rows = [];
  const t0 = Date.now();
  for (const v of variants) {
    const perD = new DistanceMetrics(K, L, { ignore });
    const stale = new ConfusionMatrix(K, { ignore });
    let staleFrames = 0;
    let firstGop = 0;
    for (const l of labels) {
      for await (const r of seg.segment(l.clip.video, { ...v.options, keyframes: L })) {
        const gt = await l.frame(r.index, r.width, r.height);
        const d = r.index - r.keyframeIndex;
        perD.add(d, gt, r.labels);
        if (r.usedKeyframe !== null && r.usedKeyframe < r.keyframeIndex) {
          stale.add(gt, r.labels);
          staleFrames++;
        }
        if (v.options.keyframeDelay !== undefined && r.keyframeIndex === 0 && d < v.options.keyframeDelay) firstGop++;
      }
    }
    const rep = perD.report();
    const evaluated = perD.evaluatedClasses();
    const staleIou = staleFrames ? meanOf(evaluated.map((c) => stale.iou()[c])) : null;
    rows.push({ name: v.name, perDistance: rep.perDistance, mean: rep.mean, stale: staleIou, staleFrames, firstGop });
    console.error(`${v.name}: mean ${pct(rep.mean)} (${((Date.now() - t0) / 1000).toFixed(0)} s)`);
  }
  await seg.close();
  console.log(
    `model ${path.basename(model)}, ${dataset} split ${split}, ${clips.length} clips; mIoU (%) per d (distance to the frame's own keyframe), keyframe every ${L}`,
  );
  console.log('');
  console.log(
    `| variant | ${Array.from({ length: L }, (_, d) => `d=${d}`).join(' | ')} | mean | stale frames: mIoU (count) | first-GOP LR frames |`,
  );
  console.log(`|---|${Array.from({ length: L }, () => '---:').join('|')}|---:|---:|---:|`);
  for (const r of rows)
    console.log(
      `| ${r.name} | ${r.perDistance.map(pct).join(' | ')} | **${pct(r.mean)}** | ${r.staleFrames ? `${pct(r.stale)} (${r.staleFrames})` : '–'} | ${r.firstGop || '–'} |`,
    );
})().catch((err) => {
  console.error(err);
  process.exit(1);
});
