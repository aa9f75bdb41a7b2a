'use strict';
// The device path (native/device/device_path.h, lib/device-path.ts): the keyframe kept on the
// device, CReFF, the decoder's pointwise head and the upsampling + arg-max run there, only the
// labels come back. Without a GPU it runs through the emulator ('cuda-emulated': the same device
// code on the CPU); its labels must equal the CPU path's, its bus traffic what the shapes say.
// The same checks on the GPU itself run where there is one (skipped here, with the reason).
const fs = require('node:fs');
const path = require('node:path');
const test = require('ava');
const { ArSeg, CReFF } = require('../dist');
const { addon } = require('../dist/native');
const { doctor } = require('../dist/doctor');
const { busBytes, busShapes } = require('../dist/bus-bytes');
const { fixture, tmpDir, FIXTURES } = require('./helpers/fixtures');
const { randoms } = require('./helpers/random');

// The default model: trained, so its labels have real boundaries (the tiny fixture bundle's are
// nearly one class, which would make equal labels prove little).
const BUNDLE = path.join(__dirname, '..', 'models', 'default');
const TINY = path.join(FIXTURES, 'bundles', 'tiny-psp18');
const CLIP = fixture('translate-b.mp4');
const cuda = CReFF.cudaStatus();
const pipelineCuda = doctor().devices.cuda;

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

test('head and labels on the emulated device equal the CPU path: both maps, sizes off the tiles, up- and downsampling', async (t) => {
  const p = problem({});
  const path_ = devicePath('cuda-emulated', p);
  t.deepEqual(path_.info(), { backend: 'cuda-emulated', channels: 6, classes: 12 });
  for (const [H, W, outH, outW] of [
    [17, 23, 17, 23],
    [9, 14, 37, 50],
    [20, 16, 80, 64],
    [31, 7, 5, 3],
    [1, 1, 4, 6],
  ]) {
    for (const upsampling of ['align-corners', 'half-pixel']) {
      const feature = randoms(p.C * H * W, H * 31 + W, 2);
      const cpu = await cpuLabels(p, feature, H, W, outH, outW, upsampling);
      const r = await path_.labels(feature, H, W, { outHeight: outH, outWidth: outW, upsampling, logits: true });
      const at = `${H}x${W} -> ${outH}x${outW} ${upsampling}`;
      t.is(r.labels.length, outH * outW);
      t.is(countDiffer(r.labels, cpu.labels), 0, `labels differ, ${at}`);
      t.true(maxDiff(r.logits, cpu.logits) <= 1e-5, `logits ${at}: ${maxDiff(r.logits, cpu.logits)}`);
      // from the same logits, the labels are the CPU kernel's bit for bit
      t.deepEqual(r.labels, await addon().labelsFromLogits(r.logits, p.classes, H, W, outH, outW, upsampling), at);
      t.is(r.bytesToDevice, p.C * H * W * 4, `feature up, ${at}`);
      t.is(r.bytesToHost, outH * outW + p.classes * H * W * 4, `labels and logits down, ${at}`);
      const noLogits = await path_.labels(feature, H, W, { outHeight: outH, outWidth: outW, upsampling });
      t.is(noLogits.logits, undefined);
      t.is(noLogits.bytesToHost, outH * outW, 'only the labels come back');
      t.deepEqual(noLogits.labels, r.labels);
    }
  }
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
    t.is(kept.bytesToDevice, C * H * W * 4, 'the keyframe goes up once');
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
      // two classes tie to that precision, which these inputs do not reach
      t.is(countDiffer(r.labels, cpu.labels), 0, `${mode} K=${K} frame ${frame}`);
      if (r.logits) t.true(maxDiff(r.logits, cpu.logits) < 1e-4, `logits: ${maxDiff(r.logits, cpu.logits)}`);
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

/** Every frame of a clip through ArSeg, or the first `limit`. */
async function segmentAll(device, bundle, options, limit = Infinity) {
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
  return frames;
}

for (const [mode, limit, extra] of [
  ['hr', 6, {}],
  ['lr', 14, {}],
  ['ar', 14, {}],
  ['ar', 14, { creffMode: 'keyframe-conv', logits: true }],
]) {
  test(`pipeline '${mode}'${extra.creffMode ? ' keyframe-conv' : ''}${extra.logits ? ' with logits' : ''}: labels through the emulated CUDA path equal the CPU path, frame by frame`, async (t) => {
    const options = { mode, keyframes: 12, ...extra };
    const [cpu, emu] = [
      await segmentAll('cpu', BUNDLE, options, limit),
      await segmentAll('cuda-emulated', BUNDLE, options, limit),
    ];
    t.is(emu.length, cpu.length);
    const manifest = JSON.parse(fs.readFileSync(path.join(BUNDLE, 'arseg.json'), 'utf8'));
    // what lib/bus-bytes.ts (and so BENCHMARKS.md) counts for the device path's own copies
    const after = busBytes(busShapes(manifest, 192, 128, { interval: 12 }), { logits: Boolean(extra.logits) }).after;
    const expected = { hr: after.hr.arSeg, lr: after.lr.arSeg, ar: after.arFused.arSeg };
    for (let i = 0; i < cpu.length; i++) {
      t.is(emu[i].branch, cpu[i].branch);
      t.is(countDiffer(emu[i].labels, cpu[i].labels), 0, `frame ${i} (${cpu[i].branch})`);
      t.deepEqual(emu[i].bus, expected[emu[i].branch], `bus bytes, frame ${i} (${emu[i].branch})`);
      t.is(cpu[i].bus, undefined);
      if (extra.logits) {
        t.deepEqual(emu[i].logits.dims, cpu[i].logits.dims);
        t.true(maxDiff(emu[i].logits.data, cpu[i].logits.data) < 1e-4, `logits, frame ${i}`);
      } else t.is(emu[i].logits, undefined);
    }
    if (mode === 'ar') t.true(emu.some((r) => r.branch === 'ar') && emu.some((r) => r.branch === 'hr'));
    t.true(
      cpu.every((r) => new Set(r.labels).size >= 3),
      'several classes per frame',
    );
  });
}

test("pipeline 'lr' with a half-pixel bundle: labels through the emulated CUDA path equal the CPU path", async (t) => {
  const dir = path.join(tmpDir('arseg-halfpixel-'), 'b');
  try {
    fs.cpSync(BUNDLE, dir, { recursive: true });
    const file = path.join(dir, 'arseg.json');
    fs.writeFileSync(
      file,
      JSON.stringify({ ...JSON.parse(fs.readFileSync(file, 'utf8')), logitsUpsampling: 'half-pixel' }),
    );
    const cpu = await segmentAll('cpu', dir, { mode: 'lr' }, 6);
    const emu = await segmentAll('cuda-emulated', dir, { mode: 'lr' }, 6);
    for (let i = 0; i < cpu.length; i++) t.is(countDiffer(emu[i].labels, cpu[i].labels), 0, `frame ${i}`);
    // not a trivial picture: several classes, with boundaries the upsampling places
    t.true(cpu.every((r) => new Set(r.labels).size >= 3));
  } finally {
    fs.rmSync(path.dirname(dir), { recursive: true, force: true });
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
    for (const upsampling of ['align-corners', 'half-pixel']) {
      const lr = randoms(C * h * w, 4, 1.7);
      const motion = randoms(2 * H * W, 5, 5);
      const a = await gpu.fuse(lr, h, w, motion, { outHeight: 180, outWidth: 240, upsampling, logits: true });
      const b = await emu.fuse(lr, h, w, motion, { outHeight: 180, outWidth: 240, upsampling, logits: true });
      t.true(maxDiff(a.logits, b.logits) < 1e-4, `logits ${maxDiff(a.logits, b.logits)}`);
      t.deepEqual(
        a.labels,
        await addon().labelsFromLogits(a.logits, p.classes, H, W, 180, 240, upsampling),
        'GPU labels = CPU labels of the GPU logits, bit for bit',
      );
      t.true(countDiffer(a.labels, b.labels) <= 2, `${countDiffer(a.labels, b.labels)} labels differ`);
      t.is(a.bytesToDevice, b.bytesToDevice);
      t.log(`GPU fuse + head + labels ${upsampling}: ${a.milliseconds.toFixed(3)} ms device time`);
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
