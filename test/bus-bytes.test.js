'use strict';
// lib/bus-bytes.ts: the bytes per frame BENCHMARKS.md gives for device 'cuda', before and after
// the device path, from the shapes. (test/device-path.test.js holds the device path's measured
// bytes, SegmentResult.bus, equal to its share here.)
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const test = require('ava');
const { busBytes, busShapes, inputSize } = require('../dist/bus-bytes');

const DEFAULT = path.join(__dirname, '..', 'models', 'default');

test("input sizes round like the video reader's (nearest multiple, at least one)", (t) => {
  t.is(inputSize(960, 1, 8), 960);
  t.is(inputSize(100, 1, 8), 104);
  t.is(inputSize(70, 1, 8), 72);
  t.is(inputSize(100, 0.5, 8), 48);
  t.is(inputSize(3, 0.5, 8), 8);
});

test('a small case counted by hand: before and after, each kind of frame', (t) => {
  const s = {
    frameWidth: 16,
    frameHeight: 8,
    hrWidth: 16,
    hrHeight: 8,
    lrWidth: 8,
    lrHeight: 4,
    channels: 2,
    stride: 1,
    classes: 3,
    interval: 4,
  };
  const r = busBytes(s);
  const hrFeature = 2 * 128 * 4; // C x 8 x 16 floats
  const lrFeature = 2 * 32 * 4;
  // before, hr: image up, feature down (encoder); feature up, logits down (ONNX Runtime's decoder)
  t.deepEqual(r.before.hr.onnxRuntime, { toDevice: 3 * 128 * 4 + hrFeature, toHost: hrFeature + 3 * 128 * 4 });
  t.deepEqual(r.before.hr.arSeg, { toDevice: 0, toHost: 0 });
  // before, fused: CReFF gets LR feature, keyframe, motion and weights, returns the fused feature
  t.deepEqual(r.before.arFused.arSeg, {
    toDevice: lrFeature + hrFeature + 2 * 128 * 4 + 3 * 10 * 2 * 4,
    toHost: hrFeature,
  });
  // after: the feature up, the labels (one byte a pixel) down; fused: LR feature and motion up
  t.deepEqual(r.after.hr.arSeg, { toDevice: hrFeature, toHost: 128 });
  t.deepEqual(r.after.lr.arSeg, { toDevice: lrFeature, toHost: 128 });
  t.deepEqual(r.after.arFused.arSeg, { toDevice: lrFeature + 2 * 128 * 4, toHost: 128 });
  t.deepEqual(r.after.arFused.onnxRuntime, { toDevice: 3 * 32 * 4, toHost: lrFeature });
  // the GOP mean: one keyframe and three fused frames
  t.is(r.after.ar.total, (r.after.arKeyframe.total + 3 * r.after.arFused.total) / 4);
  // logits asked for: they come back at the feature's size
  t.is(busBytes(s, { logits: true }).after.arFused.arSeg.toHost, 128 + 3 * 128 * 4);
  t.true(r.after.ar.total < r.before.ar.total);
});

test('bench/bus-bytes.js prints the table for the default model at 960x720', (t) => {
  const r = spawnSync(
    process.execPath,
    [path.join(__dirname, '..', 'bench', 'bus-bytes.js'), '--model', DEFAULT, '--size', '960x720'],
    { encoding: 'utf8' },
  );
  t.is(r.status, 0, r.stderr);
  t.regex(r.stdout, /^\| ar fused \| .* \| 0\.\d\d \|$/m);
  const json = JSON.parse(
    spawnSync(process.execPath, [path.join(__dirname, '..', 'bench', 'bus-bytes.js'), '--model', DEFAULT, '--json'], {
      encoding: 'utf8',
    }).stdout,
  );
  const manifest = JSON.parse(fs.readFileSync(path.join(DEFAULT, 'arseg.json'), 'utf8'));
  t.deepEqual(json, JSON.parse(JSON.stringify(busBytes(busShapes(manifest, 960, 720)))));
});
