'use strict';
// The device path (native/device/device_path.h, lib/device-path.ts): the keyframe kept on the
// device, CReFF, the decoder's pointwise head (the HR network's, or the LR network's own) and the
// upsampling + arg-max (every resize a bundle declares, through the CPU's own tap tables) run
// there, only the labels come back. Without a GPU it runs through the emulator ('cuda-emulated':
// the same device code on the CPU). Its head and labels must equal the CPU path's bit for bit;
// CReFF's sums run in another order on the device, so on AR frames the logits must agree within
// LOGIT_BOUND and the labels wherever the two best classes are further apart than that allows.
// Its bus traffic must be what the shapes say. The same checks on the GPU itself run where there
// is one (skipped here, with the reason). Run under ARSEG_SIMD=avx2 and baseline too: the CPU
// head rounds the same at every level.
const fs = require('node:fs');
const path = require('node:path');
const test = require('ava');
const { ArSeg, CReFF } = require('../dist');
const { addon } = require('../dist/native');
const { doctor } = require('../dist/doctor');
const { busBytes, busShapes } = require('../dist/bus-bytes');
const { onnxTypes } = require('../dist/pointwise-head');
const { fixture, tmpDir, FIXTURES } = require('./helpers/fixtures');
const { randoms } = require('./helpers/random');
const { labelsReference } = require('./helpers/labels-reference');

// The default model: trained, so its labels have real boundaries (the tiny fixture bundle's are
// nearly one class, which would make equal labels prove little).
const BUNDLE = path.join(__dirname, '..', 'models', 'default');
const TINY = path.join(FIXTURES, 'bundles', 'tiny-psp18');
const CLIP = fixture('translate-b.mp4');
const cuda = CReFF.cudaStatus();
const pipelineCuda = doctor().devices.cuda;
// sizeof(AxisTaps) (common/bilinear_axis.h): a resize's tap tables, one entry per output row and
// column, cross the bus on the first frame of each labels size (not an identity)
const TAP_BYTES = 36;
// AR frames: CReFF's sums run in another order on the device than in the CPU kernel
const LOGIT_BOUND = 1e-4;

function maxDiff(a, b) {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

function countDiffer(a, b) {
  let n = 0;
  for (let i = 0; i < a.length; i++) n += a[i] !== b[i];
  return n;
}

/** Labels that differ where the CPU's two best classes are more than 2 x LOGIT_BOUND apart. */
function nearTieDiffer(got, expected, margins) {
  let n = 0;
  for (let i = 0; i < got.length; i++) n += got[i] !== expected[i] && margins[i] > 2 * LOGIT_BOUND;
  return n;
}

function problem({ C = 6, classes = 12, K = 5, seed = 1 }) {
  const conv = (s) => ({ weight: randoms(C * 9, s, 1 / 3), bias: randoms(C, s + 1, 1 / 3) });
  const creff = new CReFF({ channels: C, window: K, q: conv(seed), k: conv(seed + 2), v: conv(seed + 4) });
  const head = { weight: randoms(classes * C, seed + 6, 0.7), bias: randoms(classes, seed + 7, 0.5) };
  return { C, classes, creff, head };
}

function devicePath(backend, p) {
  return new (addon().NativeDevicePath)({
    backend,
    creff: p.creff.nativeHandle(),
    channels: p.C,
    headWeight: p.head.weight,
    headBias: p.head.bias,
  });
}

/** The CPU path: the native head, then the native labels. */
async function cpuLabels(p, feature, H, W, outH, outW, upsampling) {
  const logits = await addon().pointwiseHead(feature, p.C, H, W, p.head.weight, p.head.bias, p.classes);
  return { logits, labels: await addon().labelsFromLogits(logits, p.classes, H, W, outH, outW, upsampling) };
}

// [name, upsampling, via (as a function of the logits' and labels' sizes)]
const RESIZES = [
  ['align-corners', 'align-corners', null],
  ['half-pixel', 'half-pixel', null],
  [
    'x8 half-pixel, then align-corners (BiSeNet18)',
    'align-corners',
    (H, W) => ({ height: 8 * H, width: 8 * W, upsampling: 'half-pixel' }),
  ],
  [
    "align-corners to an input of another size, then align-corners (a PSPNet's LR frames)",
    'align-corners',
    (H, W, outH) => ({ height: Math.ceil(outH * 0.6) + 1, width: W + 3 }),
  ],
];

test('head and labels on the emulated device equal the CPU path bit for bit: every resize, both heads, sizes off the tiles', async (t) => {
  const p = problem({});
  const lrHead = { weight: randoms(p.classes * p.C, 61, 0.7), bias: randoms(p.classes, 62, 0.5) };
  const own = new (addon().NativeDevicePath)({
    backend: 'cuda-emulated',
    creff: p.creff.nativeHandle(),
    channels: p.C,
    headWeight: p.head.weight,
    headBias: p.head.bias,
    lrHeadWeight: lrHead.weight,
    lrHeadBias: lrHead.bias,
  });
  const shared = devicePath('cuda-emulated', p);
  t.deepEqual(shared.info(), { backend: 'cuda-emulated', channels: 6, classes: 12, lrHead: false });
  t.true(own.info().lrHead);
  // the resizes each path has had: their tap tables are on the device already
  const seen = new Map([
    [shared, new Set()],
    [own, new Set()],
  ]);
  for (const [H, W, outH, outW] of [
    [17, 23, 17, 23],
    [9, 14, 37, 50],
    [20, 16, 80, 64],
    [31, 7, 5, 3],
    [1, 1, 4, 6],
  ]) {
    for (const [name, upsampling, viaOf] of RESIZES) {
      const via = viaOf ? viaOf(H, W, outH, outW) : undefined;
      for (const [dp, head, weights] of [
        [shared, 'hr', p.head],
        [shared, 'lr', p.head],
        [own, 'lr', lrHead],
      ]) {
        const feature = randoms(p.C * H * W, H * 31 + W, 2);
        const logits = await addon().pointwiseHead(feature, p.C, H, W, weights.weight, weights.bias, p.classes);
        const labels = await addon().labelsFromLogits(logits, p.classes, H, W, outH, outW, upsampling, via);
        const identity = H === outH && W === outW && !via;
        const first = !seen.get(dp).has(`${H}x${W} ${name}`);
        seen.get(dp).add(`${H}x${W} ${name}`);
        const r = await dp.labels(feature, H, W, {
          outHeight: outH,
          outWidth: outW,
          upsampling,
          via,
          head,
          logits: true,
        });
        const at = `${H}x${W} -> ${outH}x${outW} ${name}, head ${head}${dp === own ? ' (own)' : ''}`;
        t.is(countDiffer(r.logits, logits), 0, `logits ${at}`);
        t.is(countDiffer(r.labels, labels), 0, `labels ${at}`);
        const tables = first && !identity ? (outH + outW) * TAP_BYTES : 0;
        t.is(r.bytesToDevice, p.C * H * W * 4 + tables, `feature up (and the tables on a size's first frame), ${at}`);
        t.is(r.bytesToHost, outH * outW + p.classes * H * W * 4, `labels and logits down, ${at}`);
        const noLogits = await dp.labels(feature, H, W, { outHeight: outH, outWidth: outW, upsampling, via, head });
        t.is(noLogits.logits, undefined);
        t.is(noLogits.bytesToHost, outH * outW, 'only the labels come back');
        t.is(noLogits.bytesToDevice, p.C * H * W * 4, 'the tables are kept on the device');
        t.deepEqual(noLogits.labels, r.labels);
      }
    }
  }
  // the two heads differ (the test above could tell them apart)
  const feature = randoms(p.C * 4 * 5, 3, 2);
  const [a, b] = await Promise.all(
    ['hr', 'lr'].map((head) => own.labels(feature, 4, 5, { outHeight: 4, outWidth: 5, head, logits: true })),
  );
  t.true(countDiffer(a.logits, b.logits) > 0);
});

test('a keyframe kept on the device, then fused frames: labels equal the CPU path (CReFF, head, labels); only LR feature and motion go up', async (t) => {
  for (const [mode, K] of [
    ['exact', 5],
    ['keyframe-conv', 3],
    ['exact', 11],
  ]) {
    const p = problem({ K, seed: K });
    const path_ = devicePath('cuda-emulated', p);
    const [C, H, W, h, w] = [p.C, 40, 52, 20, 26];
    const key = randoms(C * H * W, 3, 1.7);
    const kept = await path_.labels(key, H, W, { outHeight: 80, outWidth: 104, keyframe: mode });
    t.is(
      kept.bytesToDevice,
      C * H * W * 4 + (80 + 104) * TAP_BYTES,
      "the keyframe goes up once (with the resize's tables)",
    );
    const prepared = await p.creff.prepareKeyframe({ data: key, dims: [1, C, H, W] }, { mode });
    for (let frame = 0; frame < 3; frame++) {
      const lr = randoms(C * h * w, 10 + frame, 1.7);
      const motion = randoms(2 * H * W, 20 + frame, 5);
      const r = await path_.fuse(lr, h, w, motion, { outHeight: 80, outWidth: 104, logits: frame === 1 });
      t.is(r.bytesToDevice, (C * h * w + 2 * H * W) * 4, 'LR feature and motion up, nothing else');
      t.is(r.bytesToHost, 80 * 104 + (frame === 1 ? p.classes * H * W * 4 : 0));
      const fused = await p.creff.run({ data: lr, dims: [1, C, h, w] }, prepared, { data: motion, dims: [2, H, W] });
      const cpu = await cpuLabels(p, fused.data, H, W, 80, 104, 'align-corners');
      // CReFF's sums run in another order on the device (1e-6 apart): labels may differ only where
      // the two best classes are that close
      const margins = labelsReference(cpu.logits, p.classes, H, W, 80, 104).margins;
      t.is(nearTieDiffer(r.labels, cpu.labels, margins), 0, `${mode} K=${K} frame ${frame}`);
      if (r.logits) t.true(maxDiff(r.logits, cpu.logits) < LOGIT_BOUND, `logits: ${maxDiff(r.logits, cpu.logits)}`);
    }
    path_.dropKeyframe();
    await t.throwsAsync(
      path_.fuse(randoms(C * h * w, 1, 1), h, w, randoms(2 * H * W, 2, 1), { outHeight: 8, outWidth: 8 }),
      { code: 'ERR_INVALID_ARG', message: /no keyframe on the device/ },
    );
  }
});

test('the device path refuses bad input with coded errors; the GPU backend says why it is not here', async (t) => {
  const p = problem({});
  const dp = devicePath('cuda-emulated', p);
  const feature = randoms(p.C * 4 * 5, 1, 1);
  await t.throwsAsync(dp.fuse(randoms(p.C * 4, 1, 1), 2, 2, randoms(40, 1, 1), { outHeight: 4, outWidth: 5 }), {
    code: 'ERR_INVALID_ARG',
  });
  await dp.labels(feature, 4, 5, { outHeight: 4, outWidth: 5, keyframe: 'exact' });
  await t.throwsAsync(dp.fuse(randoms(p.C * 4, 1, 1), 2, 2, randoms(39, 1, 1), { outHeight: 4, outWidth: 5 }), {
    code: 'ERR_SHAPE',
    message: /motion field holds 39 values/,
  });
  t.throws(() => dp.labels(feature, 4, 6, { outHeight: 4, outWidth: 5 }), { code: 'ERR_SHAPE' });
  t.throws(() => dp.labels(feature, 4, 5, { outHeight: 0, outWidth: 5 }), { code: 'ERR_INVALID_ARG' });
  t.throws(() => dp.labels(feature, 4, 5, { outHeight: 4, outWidth: 5, upsampling: 'nearest' }), {
    code: 'ERR_INVALID_ARG',
  });
  for (const via of [{ height: 0, width: 4 }, { height: 4 }, { height: 4, width: 4, upsampling: 'nearest' }, 7])
    t.throws(
      () => dp.labels(feature, 4, 5, { outHeight: 4, outWidth: 5, via }),
      { code: 'ERR_INVALID_ARG' },
      JSON.stringify(via),
    );
  t.throws(() => dp.labels(feature, 4, 5, { outHeight: 4, outWidth: 5, head: 'ar' }), {
    code: 'ERR_INVALID_ARG',
    message: /'hr' or 'lr'/,
  });
  t.throws(() => dp.labels(feature, 4, 5, { outHeight: 4, outWidth: 5, keyframe: 'approx' }), {
    code: 'ERR_INVALID_ARG',
  });
  t.throws(
    () => dp.fuse(randoms(p.C * 4, 1, 1), 2, 2, randoms(40, 1, 1), { outHeight: 4, outWidth: 5, sampling: 'nearest' }),
    { code: 'ERR_INVALID_ARG' },
  );
  const N = addon().NativeDevicePath;
  t.throws(
    () =>
      new N({
        backend: 'gpu',
        creff: p.creff.nativeHandle(),
        channels: p.C,
        headWeight: p.head.weight,
        headBias: p.head.bias,
      }),
    { code: 'ERR_INVALID_ARG' },
  );
  t.throws(
    () =>
      new N({ backend: 'cuda-emulated', creff: {}, channels: p.C, headWeight: p.head.weight, headBias: p.head.bias }),
    { code: 'ERR_INVALID_ARG' },
  );
  t.throws(
    () => new N({ backend: 'cuda-emulated', channels: p.C, headWeight: new Float32Array(5), headBias: p.head.bias }),
    { code: 'ERR_SHAPE' },
  );
  t.throws(
    () =>
      new N({
        backend: 'cuda-emulated',
        channels: 1,
        headWeight: new Float32Array(256),
        headBias: new Float32Array(256),
      }),
    { code: 'ERR_INVALID_ARG', message: /1 to 255 classes/ },
  );
  t.throws(
    () =>
      new N({
        backend: 'cuda-emulated',
        creff: p.creff.nativeHandle(),
        channels: p.C + 1,
        headWeight: new Float32Array(12 * 7),
        headBias: new Float32Array(12),
      }),
    { code: 'ERR_SHAPE' },
  );
  t.throws(
    () =>
      new N({
        backend: 'cuda-emulated',
        channels: p.C,
        headWeight: p.head.weight,
        headBias: p.head.bias,
        lrHeadWeight: p.head.weight,
      }),
    { code: 'ERR_INVALID_ARG', message: /go together/ },
  );
  t.throws(
    () =>
      new N({
        backend: 'cuda-emulated',
        channels: p.C,
        headWeight: p.head.weight,
        headBias: p.head.bias,
        lrHeadWeight: new Float32Array(p.C * 3),
        lrHeadBias: new Float32Array(3),
      }),
    { code: 'ERR_SHAPE', message: /the LR head is/ },
  );
  const big = problem({ K: 13 });
  t.throws(() => devicePath('cuda-emulated', big), { code: 'ERR_UNSUPPORTED' });
  // a head-only path (no CReFF) gives labels but keeps no keyframe
  const headOnly = new N({ backend: 'cuda-emulated', channels: p.C, headWeight: p.head.weight, headBias: p.head.bias });
  t.is((await headOnly.labels(feature, 4, 5, { outHeight: 4, outWidth: 5 })).labels.length, 20);
  t.throws(() => headOnly.labels(feature, 4, 5, { outHeight: 4, outWidth: 5, keyframe: 'exact' }), {
    code: 'ERR_INVALID_ARG',
  });
  if (!cuda.available) {
    const err = t.throws(() => devicePath('cuda', p), { code: 'ERR_CUDA_UNAVAILABLE' });
    t.is(err.message, `${cuda.reason}; to fix: ${cuda.fix}`);
  } else {
    t.is(devicePath('cuda', p).info().backend, 'cuda');
  }
});

/** Every frame of a clip through ArSeg, or the first `limit`; with the bundle's labelsResize. */
async function segmentRun(device, bundle, options, limit = Infinity) {
  const seg = await ArSeg.load(bundle, { device });
  const frames = [];
  try {
    for await (const r of seg.segment(CLIP, options)) {
      frames.push(r);
      if (frames.length >= limit) break;
    }
  } finally {
    await seg.close();
  }
  return { frames, bundle: seg.bundle, devicePathReason: seg.devicePathReason };
}

async function segmentAll(device, bundle, options, limit = Infinity) {
  return (await segmentRun(device, bundle, options, limit)).frames;
}

/**
 * A clip through the CPU path and the emulated device path, compared frame by frame. HR and LR
 * frames bit for bit: the same feature, the same head arithmetic, the same tap tables. AR frames
 * go through CReFF, whose sums run in another order on the device: logits within LOGIT_BOUND,
 * labels equal wherever the CPU's two best classes, after the upsampling, are more than
 * 2 x LOGIT_BOUND apart (a convex resize moves each value by at most the logits' bound). The CPU
 * run always returns its logits (for those margins); the device run as `options` asks.
 */
async function compareWithCpu(t, bundleDir, options, limit) {
  const cpu = await segmentRun('cpu', bundleDir, { ...options, logits: true }, limit);
  const emu = await segmentRun('cuda-emulated', bundleDir, options, limit);
  t.is(emu.devicePathReason, null);
  t.is(emu.frames.length, cpu.frames.length);
  let nearTies = 0;
  let worst = 0;
  for (let i = 0; i < cpu.frames.length; i++) {
    const [c, e] = [cpu.frames[i], emu.frames[i]];
    const at = `frame ${i} (${c.branch})`;
    t.is(e.branch, c.branch, at);
    t.is(c.bus, undefined);
    t.truthy(e.bus, `the device path ran, ${at}`);
    if (options.logits) t.deepEqual(e.logits.dims, c.logits.dims, at);
    else t.is(e.logits, undefined);
    if (c.branch !== 'ar') {
      t.is(countDiffer(e.labels, c.labels), 0, `labels bit for bit, ${at}`);
      if (options.logits) t.is(countDiffer(e.logits.data, c.logits.data), 0, `logits bit for bit, ${at}`);
      continue;
    }
    const [, classes, H, W] = c.logits.dims;
    const { upsampling, via } = cpu.bundle.labelsResize('ar', H, W, { height: H, width: W });
    const { margins } = labelsReference(c.logits.data, classes, H, W, c.height, c.width, upsampling, via);
    t.is(nearTieDiffer(e.labels, c.labels, margins), 0, `labels wherever no two classes nearly tie, ${at}`);
    nearTies += countDiffer(e.labels, c.labels);
    if (options.logits) {
      worst = Math.max(worst, maxDiff(e.logits.data, c.logits.data));
      t.true(
        maxDiff(e.logits.data, c.logits.data) < LOGIT_BOUND,
        `logits, ${at}: ${maxDiff(e.logits.data, c.logits.data)}`,
      );
    }
  }
  if (cpu.frames.some((r) => r.branch === 'ar'))
    t.log(
      `AR frames: ${nearTies} labels differ at near ties${options.logits ? `; logits at most ${worst.toExponential(1)} apart` : ''}`,
    );
  // not a trivial picture: several classes, with boundaries the upsampling places
  t.true(
    cpu.frames.every((r) => new Set(r.labels).size >= 3),
    'several classes per frame',
  );
  return { cpu, emu };
}

// 'lr': every frame takes the same path, so 6 frames show it as well as 14 did (the tap tables
// go up once, on the first); 'ar' needs 14: two keyframes (0 and 12) and the fused frames after each.
for (const [mode, limit, extra] of [
  ['hr', 6, {}],
  ['lr', 6, {}],
  ['ar', 14, {}],
  ['ar', 14, { creffMode: 'keyframe-conv', logits: true }],
]) {
  test(`pipeline '${mode}'${extra.creffMode ? ' keyframe-conv' : ''}${extra.logits ? ' with logits' : ''}: labels through the emulated CUDA path equal the CPU path, frame by frame`, async (t) => {
    const options = { mode, keyframes: 12, ...extra };
    const { emu } = await compareWithCpu(t, BUNDLE, options, limit);
    const manifest = JSON.parse(fs.readFileSync(path.join(BUNDLE, 'arseg.json'), 'utf8'));
    // what lib/bus-bytes.ts (and so BENCHMARKS.md) counts for the device path's own copies, per
    // frame; and once, on the first LR frame, that resize's tap tables (the default model's HR and
    // AR logits are at the frame's size: the identity, no tables)
    const after = busBytes(busShapes(manifest, 192, 128, { interval: 12 }), { logits: Boolean(extra.logits) }).after;
    const expected = { hr: after.hr.arSeg, lr: after.lr.arSeg, ar: after.arFused.arSeg };
    const tables = { hr: 0, lr: (128 + 192) * TAP_BYTES, ar: 0 };
    const seen = new Set();
    for (const [i, r] of emu.frames.entries()) {
      const once = seen.has(r.branch) ? 0 : tables[r.branch];
      seen.add(r.branch);
      t.deepEqual(
        r.bus,
        { ...expected[r.branch], toDevice: expected[r.branch].toDevice + once },
        `bus bytes, frame ${i} (${r.branch})`,
      );
    }
    if (mode === 'ar') t.true(emu.frames.some((r) => r.branch === 'ar') && emu.frames.some((r) => r.branch === 'hr'));
  });
}

/**
 * A copy of the default model (in a temporary directory: remove it with rmBundle) whose LR
 * network has its own decoder, lr_decoder.onnx: decoder.onnx with `transform(model)` applied;
 * then `edit(manifest)`.
 */
function defaultWithLrDecoder(transform, edit = () => {}) {
  const dir = path.join(tmpDir('arseg-lrdecoder-'), 'b');
  fs.cpSync(BUNDLE, dir, { recursive: true });
  const { ModelProto } = onnxTypes();
  const model = ModelProto.decode(fs.readFileSync(path.join(dir, 'decoder.onnx')));
  transform(model, ModelProto);
  fs.writeFileSync(path.join(dir, 'lr_decoder.onnx'), ModelProto.encode(model).finish());
  const file = path.join(dir, 'arseg.json');
  const manifest = JSON.parse(fs.readFileSync(file, 'utf8'));
  manifest.networks.lrDecoder = 'lr_decoder.onnx';
  edit(manifest);
  fs.writeFileSync(file, JSON.stringify(manifest));
  return dir;
}

function rmBundle(dir) {
  fs.rmSync(path.dirname(dir), { recursive: true, force: true });
}

/**
 * The LR decoder: the HR one's classes in reverse order, so that a frame decoded by the wrong
 * head gets other labels nearly everywhere while the picture keeps its boundaries.
 */
function reverseClasses(model) {
  for (const init of model.graph.initializer) {
    const values = new Float32Array(
      init.raw_data.buffer.slice(init.raw_data.byteOffset, init.raw_data.byteOffset + init.raw_data.byteLength),
    );
    const classes = init.dims[0];
    const row = values.length / classes;
    const reversed = new Float32Array(values.length);
    for (let k = 0; k < classes; k++) reversed.set(values.subarray(k * row, (k + 1) * row), (classes - 1 - k) * row);
    init.raw_data = Buffer.from(reversed.buffer);
  }
}

// Every logitsUpsampling mode, with the LR network's own decoder. The default model has stride 1:
// 'align-corners-via-input' resizes its LR logits to the LR input first, which the official LR
// input at scale 0.3 makes another size (57x38, logits 64x40: a real two-step resize), and its AR
// logits (at the keyframe feature's size) once; 'half-pixel-via-stride' at stride 1 is one resize
// here (the x8 BiSeNet18 case runs in the first test, and end to end in
// python/tests/test_official_end_to_end.py).
for (const [name, edit, options] of [
  ['align-corners', () => {}, {}],
  [
    'half-pixel',
    (m) => {
      m.logitsUpsampling = 'half-pixel';
    },
    {},
  ],
  [
    'align-corners-via-input with the official LR input',
    (m) => {
      m.logitsUpsampling = 'align-corners-via-input';
      m.input.lrInput = 'hr-tensor-align-corners';
    },
    { scale: 0.3 },
  ],
  [
    'half-pixel-via-stride',
    (m) => {
      m.logitsUpsampling = 'half-pixel-via-stride';
    },
    {},
  ],
]) {
  test(`a bundle with the LR network's own decoder, labels '${name}': the emulated device path equals the CPU path`, async (t) => {
    const dir = defaultWithLrDecoder(reverseClasses, edit);
    try {
      const { cpu } = await compareWithCpu(t, dir, { mode: 'ar', keyframes: 3, ...options }, 7);
      t.truthy(cpu.bundle.lrHead, cpu.bundle.lrHeadReason ?? '');
      t.true(cpu.frames.some((r) => r.branch === 'ar') && cpu.frames.some((r) => r.branch === 'hr'));
      const lr = await compareWithCpu(t, dir, { mode: 'lr', logits: true, ...options }, 3);
      if (options.scale) {
        const [, , lh, lw] = lr.cpu.frames[0].logits.dims;
        const via = lr.cpu.bundle.labelsResize('lr', lh, lw, {
          height: Math.floor(128 * 0.3),
          width: Math.floor(192 * 0.3),
        }).via;
        t.notDeepEqual([via.height, via.width], [lh, lw], 'two resizes, not one');
      }
      // the LR network's head is not the HR one's: the same frame at HR gets other labels
      const hr = await segmentAll('cpu', dir, { mode: 'hr', ...options }, 1);
      t.true(countDiffer(hr[0].labels, lr.cpu.frames[0].labels) > lr.cpu.frames[0].labels.length / 2);
    } finally {
      rmBundle(dir);
    }
  });
}

test("an LR decoder that is not a pointwise head: the plain CUDA path, with the reason; labels as the CPU's with ONNX Runtime's decoders", async (t) => {
  // a 1x1 convolution with dilations 2: ONNX Runtime computes the same, but it is not the one
  // Conv with default attributes the native head takes
  const dir = defaultWithLrDecoder((model, ModelProto) => {
    const attributes = model.graph.node[0].attribute;
    const dilations = attributes.find((a) => a.name === 'dilations');
    if (dilations) dilations.ints = [2, 2];
    else
      attributes.push(
        ModelProto.root.lookupType('onnx.AttributeProto').create({ name: 'dilations', type: 7, ints: [2, 2] }),
      );
  });
  try {
    const emu = await segmentRun('cuda-emulated', dir, { mode: 'ar', keyframes: 3 }, 5);
    t.regex(emu.devicePathReason, /the LR network's own decoder is not run as a pointwise head: .*dilations \[2,2\]/);
    t.truthy(emu.bundle.head);
    t.true(
      emu.frames.every((r) => r.bus === undefined),
      'no frame took the device path',
    );
    const cpu = await segmentAll('cpu', dir, { mode: 'ar', keyframes: 3, decoder: 'onnx' }, 5);
    for (let i = 0; i < cpu.length; i++) t.deepEqual(emu.frames[i].labels, cpu[i].labels, `frame ${i}`);
    const onCpu = await ArSeg.load(dir);
    t.is(onCpu.devicePathReason, "device 'cpu'");
    await onCpu.close();
  } finally {
    rmBundle(dir);
  }
});

test("decoder 'onnx' on 'cuda-emulated' keeps the old path (ONNX Runtime's decoder, CReFF on the CPU): same labels as the CPU", async (t) => {
  const cpu = await segmentAll('cpu', TINY, { mode: 'ar', decoder: 'onnx' }, 4);
  const emu = await segmentAll('cuda-emulated', TINY, { mode: 'ar', decoder: 'onnx' }, 4);
  for (let i = 0; i < cpu.length; i++) {
    t.is(emu[i].bus, undefined);
    t.deepEqual(emu[i].labels, cpu[i].labels);
  }
});

test("the live options on 'cuda-emulated': drop 'latest' (threaded networks) keeps the device path; async keyframes take the plain path, with the CPU's labels", async (t) => {
  // drop 'latest': the networks run on a worker thread and frames the loop falls behind on are
  // skipped (decoded for their motion); those it segments take the device path, with the labels
  // the undropped run gives the same frame
  const dropped = (await segmentAll('cuda-emulated', BUNDLE, { mode: 'ar', keyframes: 12, drop: 'latest' }, 2)).slice(
    0,
    2,
  );
  t.is(dropped.length, 2);
  const plain = await segmentAll('cuda-emulated', BUNDLE, { mode: 'ar', keyframes: 12 }, dropped[1].index + 1);
  for (const r of dropped) {
    t.truthy(r.bus, `frame ${r.index}: the device path`);
    t.is(r.branch, plain[r.index].branch);
    t.deepEqual(r.labels, plain[r.index].labels, `frame ${r.index}`);
  }
  // the device path holds one keyframe, the frame's own; the asynchronous schedule may fuse with
  // an older one, so it runs CReFF on the CPU kernel and ONNX Runtime's decoders, as on the CPU
  const options = { mode: 'ar', keyframes: 12, keyframeLatency: 'async', keyframeDelay: 0 };
  const cpu = await segmentAll('cpu', TINY, options, 6);
  const emu = await segmentAll('cuda-emulated', TINY, options, 6);
  t.is(emu.length, cpu.length);
  t.true(cpu.some((r) => r.branch === 'ar'));
  for (const [i, r] of emu.entries()) {
    t.is(r.bus, undefined, `frame ${i}: not the device path`);
    t.is(r.usedKeyframe, cpu[i].usedKeyframe);
    t.deepEqual(r.labels, cpu[i].labels, `frame ${i}`);
  }
});

test('close() frees the device keyframe of a segmentation left suspended, and its loop then ends with ERR_CLOSED', async (t) => {
  const { DevicePath } = require('../dist/device-path');
  const original = DevicePath.prototype.close;
  let closes = 0;
  DevicePath.prototype.close = function () {
    closes++;
    return original.call(this);
  };
  try {
    const seg = await ArSeg.load(TINY, { device: 'cuda-emulated', threads: 1 });
    t.is(seg.devicePathReason, null);
    const frames = seg.segment(CLIP, { mode: 'ar', keyframes: 12 })[Symbol.asyncIterator]();
    const first = await frames.next();
    t.true(first.value.isKeyframe && first.value.bus !== undefined, 'a keyframe through the device path');
    t.is(closes, 0);
    // the caller never resumes the loop: close() must free the kept keyframe itself
    await seg.close();
    t.is(closes, 1, 'close() closed the device path');
    const err = await t.throwsAsync(frames.next());
    t.is(err.code, 'ERR_CLOSED');
  } finally {
    DevicePath.prototype.close = original;
  }
});

// --- on a GPU ---------------------------------------------------------------------------------

(cuda.available ? test : test.skip)(
  `GPU: the device path on the GPU gives the emulated device's labels${cuda.available ? '' : ` (skipped: ${cuda.reason})`}`,
  async (t) => {
    const p = problem({ K: 7, seed: 7 });
    const gpu = devicePath('cuda', p);
    const emu = devicePath('cuda-emulated', p);
    const [C, H, W, h, w] = [p.C, 90, 120, 45, 60];
    const key = randoms(C * H * W, 3, 1.7);
    for (const dp of [gpu, emu]) await dp.labels(key, H, W, { outHeight: 180, outWidth: 240, keyframe: 'exact' });
    for (const [name, upsampling, viaOf] of RESIZES) {
      const via = viaOf ? viaOf(H, W, 180, 240) : undefined;
      const request = { outHeight: 180, outWidth: 240, upsampling, via, logits: true };
      const lr = randoms(C * h * w, 4, 1.7);
      const motion = randoms(2 * H * W, 5, 5);
      const a = await gpu.fuse(lr, h, w, motion, request);
      const b = await emu.fuse(lr, h, w, motion, request);
      // CReFF on the GPU (__expf, another order of sums) is not the emulator's to the bit
      t.true(maxDiff(a.logits, b.logits) < 1e-4, `logits ${maxDiff(a.logits, b.logits)}, ${name}`);
      t.deepEqual(
        a.labels,
        await addon().labelsFromLogits(a.logits, p.classes, H, W, 180, 240, upsampling, via),
        `GPU labels = CPU labels of the GPU logits, bit for bit, ${name}`,
      );
      t.true(countDiffer(a.labels, b.labels) <= 2, `${countDiffer(a.labels, b.labels)} labels differ, ${name}`);
      t.is(a.bytesToDevice, b.bytesToDevice);
      // the head and the labels alone: the CPU's bits
      const feature = randoms(C * H * W, 6, 2);
      const head = await gpu.labels(feature, H, W, request);
      const logits = await addon().pointwiseHead(feature, C, H, W, p.head.weight, p.head.bias, p.classes);
      t.is(countDiffer(head.logits, logits), 0, `GPU head = CPU head, bit for bit, ${name}`);
      t.deepEqual(
        head.labels,
        await addon().labelsFromLogits(logits, p.classes, H, W, 180, 240, upsampling, via),
        name,
      );
      t.log(`GPU fuse + head + labels, ${name}: ${a.milliseconds.toFixed(3)} ms device time`);
    }
  },
);

(pipelineCuda.usable ? test : test.skip)(
  `GPU: pipeline on device 'cuda' equals the CPU path${pipelineCuda.usable ? '' : ` (skipped: ${pipelineCuda.reason})`}`,
  async (t) => {
    for (const mode of ['hr', 'lr', 'ar']) {
      const cpu = await segmentAll('cpu', BUNDLE, { mode, keyframes: 12 });
      const gpu = await segmentAll('cuda', BUNDLE, { mode, keyframes: 12 });
      let differ = 0;
      for (let i = 0; i < cpu.length; i++) differ += countDiffer(gpu[i].labels, cpu[i].labels);
      // ONNX Runtime's CUDA convolutions round differently from its CPU ones: a few labels at ties
      t.true(differ <= cpu.length * 128 * 192 * 1e-3, `${mode}: ${differ} labels differ`);
      t.log(`${mode}: ${differ} of ${cpu.length * 128 * 192} labels differ from the CPU path`);
    }
  },
);
