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
 *                          [--device cpu|cuda|cuda-emulated] [--clip FILE]
 *
 * --decoder: 'auto' (default) runs the bundle's 1x1 decoder natively (on fused frames inside
 * CReFF); 'onnx' runs it in ONNX Runtime for every mode, to see what the native head buys.
 *
 * --device cuda: the networks on ONNX Runtime's CUDA provider and the device path (CReFF, head
 * and labels on the GPU); the bytes per frame are then reported too: measured for ar-seg-native's
 * own copies (SegmentResult.bus) and computed for ONNX Runtime's (lib/bus-bytes.ts).
 * --clip: another clip (scripts/gpu-check.sh uses the committed demo clip with models/default,
 * which need neither Python nor libx264).
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
const device = arg('--device', 'cpu');
const clipArg = arg('--clip', null);
if (!['cpu', 'cuda', 'cuda-emulated'].includes(device)) {
  console.error("--device must be 'cpu', 'cuda' or 'cuda-emulated'");
  process.exit(2);
}
if (decoder !== 'auto' && decoder !== 'onnx') {
  console.error("--decoder must be 'auto' or 'onnx'");
  process.exit(2);
}

(async () => {
  if (!fs.existsSync(path.join(model, 'arseg.json'))) {
    console.error(`no bundle at ${model}: run /usr/bin/python3 python/tools/export_official_layout.py ${model}`);
    process.exit(2);
  }
  const clip = clipArg ?? ensureBenchClip(path.join(__dirname, '..', '.bench-cache'), CAMVID_CLIP);
  const seg = await ArSeg.load(model, { device });
  const rows = [];
  let size = null;
  for (const mode of ['hr', 'lr', 'ar']) {
    const sums = { decode: 0, hrEncoder: 0, lrEncoder: 0, creff: 0, decoder: 0, labels: 0 };
    const bus = { toDevice: 0, toHost: 0, frames: 0 };
    let n = 0;
    const t0 = process.hrtime.bigint();
    for await (const r of seg.segment(clip, { mode, scale: 0.5, keyframes: 12, decoder })) {
      for (const k of Object.keys(sums)) sums[k] += r.timings[k];
      size = { width: r.width, height: r.height };
      if (r.bus) {
        bus.toDevice += r.bus.toDevice;
        bus.toHost += r.bus.toHost;
        bus.frames++;
      }
      if (++n >= frames) break;
    }
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    const stageTotal = Object.values(sums).reduce((a, b) => a + b, 0);
    rows.push({
      mode,
      frames: n,
      seconds,
      fps: n / seconds,
      msPerFrame: Object.fromEntries(Object.entries(sums).map(([k, v]) => [k, v / n])),
      share: Object.fromEntries(Object.entries(sums).map(([k, v]) => [k, v / stageTotal])),
      // ar-seg-native's own copies across the bus per frame (the device path), measured
      arSegBusPerFrame: bus.frames ? { toDevice: bus.toDevice / bus.frames, toHost: bus.toHost / bus.frames } : null,
    });
    console.error(`${mode}: ${n} frames in ${seconds.toFixed(1)} s`);
  }
  const manifest = seg.bundle.manifest;
  await seg.close();
  const hr = rows[0].fps;
  console.log(
    `clip ${path.basename(clip)}, model ${path.basename(model)}, ${frames} frames per mode, decoder ${decoder}, device ${device}`,
  );
  console.log('| mode | fps | vs hr | decode | HR encoder | LR encoder | CReFF | decoder | labels |');
  console.log('|---|---|---|---|---|---|---|---|---|');
  for (const r of rows) {
    const pct = (k) => `${(100 * r.share[k]).toFixed(1)}%`;
    console.log(
      `| ${r.mode} | ${r.fps.toFixed(3)} | ${(r.fps / hr).toFixed(2)}x | ${pct('decode')} | ${pct('hrEncoder')} | ${pct('lrEncoder')} | ${pct('creff')} | ${pct('decoder')} | ${pct('labels')} |`,
    );
  }
  console.log('\nms per frame by stage:');
  for (const r of rows)
    console.log(
      `  ${r.mode}: ${Object.entries(r.msPerFrame)
        .map(([k, v]) => `${k} ${v.toFixed(1)}`)
        .join(', ')}`,
    );
  let busReport = null;
  if (device !== 'cpu' && size) {
    // bytes per frame across the bus: ONNX Runtime's computed, ar-seg-native's measured (and computed)
    const { busBytes, busShapes } = require('../dist/bus-bytes');
    busReport = busBytes(busShapes(manifest, size.width, size.height, { scale: 0.5, interval: 12 }));
    const mib = (n) => (n / 2 ** 20).toFixed(2);
    console.log(`\nbytes across the bus per frame at ${size.width}x${size.height} (MiB, up + down):`);
    console.log(
      '| mode | ONNX Runtime (computed) | ar-seg-native (measured over the frames run) | ar-seg-native (computed; ar: a GOP of 12) | total | before the device path (computed) |',
    );
    console.log('|---|---|---|---|---|---|');
    for (const r of rows) {
      const a = busReport.after[r.mode];
      const measured = r.arSegBusPerFrame ? r.arSegBusPerFrame.toDevice + r.arSegBusPerFrame.toHost : null;
      const ort = a.onnxRuntime.toDevice + a.onnxRuntime.toHost;
      const computed = a.arSeg.toDevice + a.arSeg.toHost;
      console.log(
        `| ${r.mode} | ${mib(ort)} | ${measured === null ? 'n/a' : mib(measured)} | ${mib(computed)} | ${mib(ort + (measured ?? computed))} | ${mib(busReport.before[r.mode].total)} |`,
      );
    }
  }
  if (jsonOut)
    fs.writeFileSync(
      jsonOut,
      JSON.stringify(
        device === 'cpu' ? rows : { device, clip: path.basename(clip), size, rows, bus: busReport },
        null,
        2,
      ),
    );
})().catch((err) => {
  console.error(err);
  process.exit(1);
});
