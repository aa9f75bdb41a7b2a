#!/usr/bin/env node
'use strict';
/*
 * The AR-Seg pipeline on CamVid-size video, side by side in one run: frames per second of the
 * 'hr', 'lr' and 'ar' modes (scale 0.5, keyframe every 12 frames), and the share of time in
 * decoding, the encoders, CReFF, the decoder and the labels. The model is the official PSPNet18
 * layout with random weights (real cost, no training needed):
 *
 *   /usr/bin/python3 python/tools/export_official_layout.py .bench-cache/psp18-official
 *   node bench/pipeline.js [--frames 24] [--model .bench-cache/psp18-official] [--decoder auto|onnx] [--json FILE]
 *
 * --decoder: 'auto' (default) runs the bundle's 1x1 decoder natively (on fused frames inside
 * CReFF); 'onnx' runs it in ONNX Runtime for every mode, to see what the native head buys.
 *
 * The clip is bench/clip.js's 960x720 H.264 (needs ffmpeg with libx264). For the comparison
 * with PyTorch, bench/pytorch_pipeline.py runs the reference formulation on the same frames.
 */
const fs = require('node:fs');
const path = require('node:path');
const { ArSeg } = require('../dist');
const { ensureBenchClip, CAMVID_CLIP } = require('./clip');

const args = process.argv.slice(2);
const arg = (name, fallback) => (args.includes(name) ? args[args.indexOf(name) + 1] : fallback);
const model = arg('--model', path.join(__dirname, '..', '.bench-cache', 'psp18-official'));
const frames = Number(arg('--frames', 24));
const jsonOut = arg('--json', null);
const decoder = arg('--decoder', 'auto');
if (decoder !== 'auto' && decoder !== 'onnx') {
  console.error("--decoder must be 'auto' or 'onnx'");
  process.exit(2);
}

(async () => {
  if (!fs.existsSync(path.join(model, 'arseg.json'))) {
    console.error(`no bundle at ${model}: run /usr/bin/python3 python/tools/export_official_layout.py ${model}`);
    process.exit(2);
  }
  const clip = ensureBenchClip(path.join(__dirname, '..', '.bench-cache'), CAMVID_CLIP);
  const seg = await ArSeg.load(model);
  const rows = [];
  for (const mode of ['hr', 'lr', 'ar']) {
    const sums = { decode: 0, hrEncoder: 0, lrEncoder: 0, creff: 0, decoder: 0, labels: 0 };
    let n = 0;
    const t0 = process.hrtime.bigint();
    for await (const r of seg.segment(clip, { mode, scale: 0.5, keyframes: 12, decoder })) {
      for (const k of Object.keys(sums)) sums[k] += r.timings[k];
      if (++n >= frames) break;
    }
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    const stageTotal = Object.values(sums).reduce((a, b) => a + b, 0);
    rows.push({ mode, frames: n, seconds, fps: n / seconds, msPerFrame: Object.fromEntries(Object.entries(sums).map(([k, v]) => [k, v / n])), share: Object.fromEntries(Object.entries(sums).map(([k, v]) => [k, v / stageTotal])) });
    console.error(`${mode}: ${n} frames in ${seconds.toFixed(1)} s`);
  }
  await seg.close();
  const hr = rows[0].fps;
  console.log(`clip ${path.basename(clip)}, model ${path.basename(model)}, ${frames} frames per mode, decoder ${decoder}`);
  console.log('| mode | fps | vs hr | decode | HR encoder | LR encoder | CReFF | decoder | labels |');
  console.log('|---|---|---|---|---|---|---|---|---|');
  for (const r of rows) {
    const pct = (k) => `${(100 * r.share[k]).toFixed(1)}%`;
    console.log(`| ${r.mode} | ${r.fps.toFixed(3)} | ${(r.fps / hr).toFixed(2)}x | ${pct('decode')} | ${pct('hrEncoder')} | ${pct('lrEncoder')} | ${pct('creff')} | ${pct('decoder')} | ${pct('labels')} |`);
  }
  console.log('\nms per frame by stage:');
  for (const r of rows) console.log(`  ${r.mode}: ${Object.entries(r.msPerFrame).map(([k, v]) => `${k} ${v.toFixed(1)}`).join(', ')}`);
  if (jsonOut) fs.writeFileSync(jsonOut, JSON.stringify(rows, null, 2));
})().catch((err) => {
  console.error(err);
  process.exit(1);
});
