'use strict';
// CReFF kernels against PyTorch goldens (python/tools/make_creff_goldens.py), against each
// other, and their failure paths.
const fs = require('node:fs');
const path = require('node:path');
const { execFileSync } = require('node:child_process');
const test = require('ava');
const { CReFF, Keyframe } = require('../dist');
const { readNpy, FIXTURES } = require('./helpers/fixtures');
const { randoms } = require('./helpers/random');

const GOLDEN_DIR = path.join(FIXTURES, 'creff');
const TOLERANCE = 1e-4;
const cuda = CReFF.cudaStatus();

function loadCase(name) {
  const dir = path.join(GOLDEN_DIR, name);
  const meta = JSON.parse(fs.readFileSync(path.join(dir, 'case.json'), 'utf8'));
  const npy = (n) => readNpy(path.join(dir, `${n}.npy`)).data;
  const { channels: C, height: H, width: W, lrHeight: h, lrWidth: w } = meta;
  return {
    meta,
    creff: new CReFF({
      channels: C,
      window: meta.window,
      q: { weight: npy('q_weight'), bias: npy('q_bias') },
      k: { weight: npy('k_weight'), bias: npy('k_bias') },
      v: { weight: npy('v_weight'), bias: npy('v_bias') },
    }),
    lr: { data: npy('lr'), dims: [1, C, h, w] },
    key: { data: npy('key'), dims: [1, C, H, W] },
    motion: { data: npy('motion'), dims: [2, H, W] },
    expected: npy('out'),
    options: { sampling: meta.sampling, mode: meta.mode },
  };
}

function maxDiff(a, b) {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

function randomProblem({ C, H, W, h, w, K, seed, motionScale = 4 }) {
  const conv = (s) => ({ weight: randoms(C * 9, s, 1 / 3), bias: randoms(C, s + 1, 1 / 3) });
  return {
    creff: new CReFF({ channels: C, window: K, q: conv(seed), k: conv(seed + 2), v: conv(seed + 4) }),
    lr: { data: randoms(C * h * w, seed + 6, 1.7), dims: [1, C, h, w] },
    key: { data: randoms(C * H * W, seed + 7, 1.7), dims: [1, C, H, W] },
    motion: { data: randoms(2 * H * W, seed + 8, motionScale), dims: [2, H, W] },
  };
}

const cases = fs.readdirSync(GOLDEN_DIR).sort();

test('the golden set covers the cases the issue names', (t) => {
  for (const name of [
    'small',
    'realistic',
    'window1',
    'window3',
    'pixel',
    'far-outside',
    'small-official',
    'small-keyframe-conv',
  ])
    t.true(cases.includes(name), name);
  const realistic = loadCase('realistic').meta;
  t.deepEqual([realistic.channels, realistic.height, realistic.width, realistic.window], [64, 90, 120, 7]);
});

for (const name of cases) {
  for (const kernel of ['reference', 'fused']) {
    test(`${name}: the ${kernel} kernel matches PyTorch within ${TOLERANCE}`, async (t) => {
      const c = loadCase(name);
      const r = await c.creff.run(c.lr, c.key, c.motion, { ...c.options, kernel });
      t.deepEqual(r.dims, [1, c.meta.channels, c.meta.height, c.meta.width]);
      const diff = maxDiff(r.data, c.expected);
      t.true(diff < TOLERANCE, `max |difference| ${diff.toExponential(2)}`);
    });
  }
  test(`${name}: the CUDA kernel's device code, emulated on the CPU, matches PyTorch within ${TOLERANCE}`, async (t) => {
    const c = loadCase(name);
    const r = await c.creff.run(c.lr, c.key, c.motion, { ...c.options, kernel: 'cuda-emulated' });
    const diff = maxDiff(r.data, c.expected);
    t.true(Number.isFinite(diff) && diff < TOLERANCE, `max |difference| ${diff.toExponential(2)}`);
  });
  (cuda.available ? test : test.skip)(
    `${name}: the CUDA kernel matches PyTorch within ${TOLERANCE}${cuda.available ? '' : ` (skipped: ${cuda.reason})`}`,
    async (t) => {
      const c = loadCase(name);
      const r = await c.creff.run(c.lr, c.key, c.motion, { ...c.options, device: 'cuda' });
      const diff = maxDiff(r.data, c.expected);
      t.true(diff < TOLERANCE, `max |difference| ${diff.toExponential(2)}`);
    },
  );
}

test('fused equals reference for every window size, odd shapes, an LR wider than the output, work-unit seams and large motion', async (t) => {
  for (const [K, H, W, h, w, C] of [
    [1, 20, 28, 10, 14, 6],
    [3, 19, 33, 7, 9, 5],
    [5, 40, 50, 20, 25, 12],
    [9, 35, 37, 18, 19, 3],
    [11, 48, 16, 24, 8, 7],
    [7, 1, 40, 1, 20, 4],
    [7, 40, 1, 20, 1, 4],
    [7, 20, 24, 30, 50, 5],
    [5, 200, 70, 100, 35, 3],
  ]) {
    for (const motionScale of [0.5, 6, 500]) {
      const p = randomProblem({ C, H, W, h, w, K, seed: K * 131 + H, motionScale });
      const ref = await p.creff.run(p.lr, p.key, p.motion, { kernel: 'reference' });
      const fused = await p.creff.run(p.lr, p.key, p.motion, { kernel: 'fused' });
      const diff = maxDiff(ref.data, fused.data);
      t.true(diff < TOLERANCE, `K=${K} ${H}x${W} motion ${motionScale}: ${diff.toExponential(2)}`);
      const official = await p.creff.run(p.lr, p.key, p.motion, { kernel: 'fused', sampling: 'official' });
      const officialRef = await p.creff.run(p.lr, p.key, p.motion, { kernel: 'reference', sampling: 'official' });
      t.true(maxDiff(official.data, officialRef.data) < TOLERANCE, `official sampling K=${K}`);
    }
  }
});

test('emulated CUDA device code equals the reference: partial channel chunks, every window, tile edges', async (t) => {
  for (const [K, H, W, h, w, C] of [
    [1, 17, 33, 9, 17, 9],
    [3, 31, 16, 16, 8, 20],
    [5, 16, 17, 8, 9, 13],
    [9, 20, 15, 10, 8, 17],
    [11, 33, 18, 17, 9, 3],
  ]) {
    for (const mode of ['exact', 'keyframe-conv']) {
      const p = randomProblem({ C, H, W, h, w, K, seed: 7 * K + C, motionScale: 9 });
      const ref = await p.creff.run(p.lr, p.key, p.motion, { kernel: 'reference', mode });
      const emu = await p.creff.run(p.lr, p.key, p.motion, { kernel: 'cuda-emulated', mode });
      const diff = maxDiff(ref.data, emu.data);
      t.true(Number.isFinite(diff) && diff < TOLERANCE, `K=${K} ${H}x${W} C=${C} ${mode}: ${diff}`);
    }
  }
  const big = randomProblem({ C: 2, H: 8, W: 8, h: 4, w: 4, K: 13, seed: 1 });
  await t.throwsAsync(big.creff.run(big.lr, big.key, big.motion, { kernel: 'cuda-emulated' }), {
    code: 'ERR_UNSUPPORTED',
  });
});

test('a prepared keyframe gives the same result as the raw feature; any thread count agrees', async (t) => {
  const p = randomProblem({ C: 16, H: 45, W: 70, h: 23, w: 35, K: 7, seed: 99 });
  const raw = await p.creff.run(p.lr, p.key, p.motion);
  const key = await p.creff.prepareKeyframe(p.key);
  t.true(key instanceof Keyframe);
  t.deepEqual([key.channels, key.height, key.width, key.mode], [16, 45, 70, 'exact']);
  for (const threads of [1, 2, 3, 8]) {
    const r = await p.creff.run(p.lr, key, p.motion, { threads });
    t.is(maxDiff(r.data, raw.data), 0, `threads ${threads}`);
  }
  const fastKey = await p.creff.prepareKeyframe(p.key, { mode: 'keyframe-conv' });
  const fast = await p.creff.run(p.lr, fastKey, p.motion);
  const fastRaw = await p.creff.run(p.lr, p.key, p.motion, { mode: 'keyframe-conv' });
  const fastRef = await p.creff.run(p.lr, p.key, p.motion, { mode: 'keyframe-conv', kernel: 'reference' });
  t.is(maxDiff(fast.data, fastRaw.data), 0);
  t.true(maxDiff(fast.data, fastRef.data) < TOLERANCE);
});

test('keyframe-conv mode equals the exact mode when there is no motion', async (t) => {
  const p = randomProblem({ C: 8, H: 30, W: 40, h: 15, w: 20, K: 7, seed: 5 });
  const still = { data: new Float32Array(2 * 30 * 40), dims: [2, 30, 40] };
  const exact = await p.creff.run(p.lr, p.key, still);
  const fast = await p.creff.run(p.lr, p.key, still, { mode: 'keyframe-conv' });
  t.true(maxDiff(exact.data, fast.data) < 1e-5);
  // with motion they differ (the approximation is real) but stay close to the exact result
  const moving = await p.creff.run(p.lr, p.key, p.motion, { mode: 'keyframe-conv' });
  const exactMoving = await p.creff.run(p.lr, p.key, p.motion);
  t.true(maxDiff(moving.data, exactMoving.data) > 1e-3);
});

test('shapes, sizes and options are checked with clear, coded errors', async (t) => {
  const p = randomProblem({ C: 4, H: 10, W: 12, h: 5, w: 6, K: 3, seed: 1 });
  const conv = { weight: new Float32Array(36), bias: new Float32Array(4) };
  t.throws(() => new CReFF(), { code: 'ERR_INVALID_ARG' });
  t.throws(() => new CReFF({ channels: 4, window: 4, q: conv, k: conv, v: conv }), { code: 'ERR_INVALID_ARG' });
  t.throws(() => new CReFF({ channels: 4, window: 0, q: conv, k: conv, v: conv }), { code: 'ERR_INVALID_ARG' });
  t.throws(() => new CReFF({ channels: -4, window: 3, q: conv, k: conv, v: conv }), { code: 'ERR_INVALID_ARG' });
  t.throws(() => new CReFF({ channels: 5, window: 3, q: conv, k: conv, v: conv }), { code: 'ERR_SHAPE' });
  t.throws(() => new CReFF({ channels: 4, window: 3, q: { weight: [1], bias: conv.bias }, k: conv, v: conv }), {
    code: 'ERR_INVALID_ARG',
  });
  t.throws(
    () =>
      new CReFF({
        channels: 4,
        window: 3,
        q: conv,
        k: { weight: new Float32Array(36), bias: new Float32Array(3) },
        v: conv,
      }),
    { code: 'ERR_SHAPE' },
  );

  const run = (lr, key, motion, opts) => p.creff.run(lr, key, motion, opts);
  await t.throwsAsync(run({ data: p.lr.data, dims: [1, 4, 5, 7] }, p.key, p.motion), { code: 'ERR_SHAPE' });
  await t.throwsAsync(run({ data: p.lr.data, dims: [1, 4, 5, -6] }, p.key, p.motion), { code: 'ERR_SHAPE' });
  await t.throwsAsync(run({ data: p.lr.data, dims: [2, 2, 5, 6] }, p.key, p.motion), { code: 'ERR_SHAPE' });
  await t.throwsAsync(run({ data: Array.from(p.lr.data), dims: p.lr.dims }, p.key, p.motion), {
    code: 'ERR_INVALID_ARG',
  });
  await t.throwsAsync(run(p.lr, { data: new Float32Array(3 * 10 * 12), dims: [1, 3, 10, 12] }, p.motion), {
    code: 'ERR_SHAPE',
  });
  await t.throwsAsync(run(p.lr, p.key, { data: new Float32Array(2 * 10 * 11), dims: [2, 10, 11] }), {
    code: 'ERR_SHAPE',
  });
  await t.throwsAsync(run(p.lr, p.key, { data: new Float32Array(3 * 10 * 12), dims: [3, 10, 12] }), {
    code: 'ERR_SHAPE',
  });
  await t.throwsAsync(run(p.lr, p.key, p.motion, { kernel: 'fast' }), { code: 'ERR_INVALID_ARG' });
  await t.throwsAsync(run(p.lr, p.key, p.motion, { device: 'gpu' }), { code: 'ERR_INVALID_ARG' });
  await t.throwsAsync(run(p.lr, p.key, p.motion, { sampling: 'nearest' }), { code: 'ERR_INVALID_ARG' });
  await t.throwsAsync(run(p.lr, p.key, p.motion, { mode: 'approx' }), { code: 'ERR_INVALID_ARG' });
  await t.throwsAsync(run(p.lr, p.key, p.motion, { threads: 0 }), { code: 'ERR_INVALID_ARG' });
  await t.throwsAsync(run(p.lr, p.key, p.motion, null), { code: 'ERR_INVALID_ARG' });
  const other = randomProblem({ C: 4, H: 11, W: 12, h: 5, w: 6, K: 3, seed: 2 });
  const wrongKey = await p.creff.prepareKeyframe(other.key);
  await t.throwsAsync(run(p.lr, wrongKey, p.motion), { code: 'ERR_SHAPE' });
  const key = await p.creff.prepareKeyframe(p.key);
  await t.throwsAsync(run(p.lr, key, p.motion, { kernel: 'reference' }), { code: 'ERR_INVALID_ARG' });
  await t.throwsAsync(p.creff.prepareKeyframe({ data: new Float32Array(7), dims: [1, 4, 1, 2] }), {
    code: 'ERR_SHAPE',
  });
});

test('CUDA: available, or refused with ERR_CUDA_UNAVAILABLE and the reason', async (t) => {
  const p = randomProblem({ C: 4, H: 10, W: 12, h: 5, w: 6, K: 7, seed: 3 });
  if (cuda.available) {
    const gpu = await p.creff.run(p.lr, p.key, p.motion, { device: 'cuda' });
    const cpu = await p.creff.run(p.lr, p.key, p.motion);
    t.true(maxDiff(gpu.data, cpu.data) < TOLERANCE);
  } else {
    t.log(`no CUDA here: ${cuda.reason}`);
    const err = await t.throwsAsync(p.creff.run(p.lr, p.key, p.motion, { device: 'cuda' }), {
      code: 'ERR_CUDA_UNAVAILABLE',
    });
    t.is(err.message, `${cuda.reason}; to fix: ${cuda.fix}`);
  }
});

test('options.output: the result is written into a caller buffer, which must have the right size', async (t) => {
  const p = randomProblem({ C: 8, H: 20, W: 24, h: 10, w: 12, K: 7, seed: 11 });
  const expected = await p.creff.run(p.lr, p.key, p.motion);
  const output = new Float32Array(8 * 20 * 24).fill(NaN);
  const r = await p.creff.run(p.lr, p.key, p.motion, { output });
  t.is(r.data, output);
  t.is(maxDiff(output, expected.data), 0);
  const again = await p.creff.run(p.lr, await p.creff.prepareKeyframe(p.key), p.motion, { output });
  t.is(again.data, output);
  t.is(maxDiff(output, expected.data), 0);
  await t.throwsAsync(p.creff.run(p.lr, p.key, p.motion, { output: new Float32Array(5) }), { code: 'ERR_SHAPE' });
  await t.throwsAsync(p.creff.run(p.lr, p.key, p.motion, { output: new Float64Array(8 * 20 * 24) }), {
    code: 'ERR_INVALID_ARG',
  });
});

test('options.output must not share memory with an input, as the pointwise head refuses it too', async (t) => {
  const C = 8,
    H = 20,
    W = 24,
    h = 10,
    w = 12;
  const p = randomProblem({ C, H, W, h, w, K: 7, seed: 12 });
  const plane = H * W;
  // one buffer holding the keyframe, the LR feature and the motion, then room for an output
  const pool = new Float32Array(C * plane + C * h * w + 2 * plane + C * plane);
  const key = pool.subarray(0, C * plane);
  const lr = pool.subarray(C * plane, C * plane + C * h * w);
  const motion = pool.subarray(C * plane + C * h * w, C * plane + C * h * w + 2 * plane);
  key.set(p.key.data);
  lr.set(p.lr.data);
  motion.set(p.motion.data);
  const args = [
    { data: lr, dims: p.lr.dims },
    { data: key, dims: p.key.dims },
    { data: motion, dims: p.motion.dims },
  ];
  const expected = await p.creff.run(...args);
  const end = C * plane + C * h * w + 2 * plane;
  for (const [what, start] of [
    ['the keyframe feature', 0],
    ['the LR feature', C * plane],
    ['the motion field', end - 1],
  ]) {
    const output = pool.subarray(start, start + C * plane);
    await t.throwsAsync(p.creff.run(...args, { output }), { code: 'ERR_INVALID_ARG', message: new RegExp(what) }, what);
  }
  // the free space right after the inputs is fine, and the result is the same
  const output = pool.subarray(end);
  await p.creff.run(...args, { output });
  t.is(maxDiff(output, expected.data), 0);
});

// The head inside the fused kernel is pointwiseHeadPixels (native/postprocess/pointwise_head.h):
// fused multiply-adds where the CPU has them, so within rounding of the native head (which rounds
// each product, for the device path's bits); the selftest holds it to that variant bit for bit.
const HEAD_ROUNDING = 1e-5;

test('options.head: the logits equal the fused feature through the native head, within rounding', async (t) => {
  const { addon } = require('../dist/native');
  for (const [K, H, W, h, w, C, classes, mode] of [
    [7, 45, 70, 23, 35, 16, 11, 'exact'],
    [3, 19, 33, 7, 9, 5, 1, 'exact'],
    [11, 30, 40, 15, 20, 6, 3, 'exact'],
    [7, 30, 50, 15, 25, 8, 5, 'keyframe-conv'],
  ]) {
    const p = randomProblem({ C, H, W, h, w, K, seed: 5 * K + C, motionScale: 6 });
    const head = { weight: randoms(classes * C, 21 + K, 0.5), bias: randoms(classes, 23 + K, 0.5) };
    const feature = await p.creff.run(p.lr, p.key, p.motion, { mode });
    const expected = await addon().pointwiseHead(feature.data, C, H, W, head.weight, head.bias, classes);
    const key = await p.creff.prepareKeyframe(p.key, { mode });
    for (const k of [p.key, key]) {
      const fused = await p.creff.run(p.lr, k, p.motion, { mode, head });
      t.deepEqual(fused.dims, [1, classes, H, W]);
      t.true(maxDiff(fused.data, expected) < HEAD_ROUNDING, `K=${K} ${H}x${W} C=${C} classes ${classes} ${mode}`);
    }
    // the reference kernel takes the head too, for parity
    const ref = await p.creff.run(p.lr, p.key, p.motion, { mode, head, kernel: 'reference' });
    t.true(maxDiff(ref.data, expected) < TOLERANCE * C, `reference K=${K}`);
    const output = new Float32Array(classes * H * W);
    const r = await p.creff.run(p.lr, key, p.motion, { mode, head, output });
    t.is(r.data, output);
    t.true(maxDiff(output, expected) < HEAD_ROUNDING);
  }
  const p = randomProblem({ C: 4, H: 10, W: 12, h: 5, w: 6, K: 3, seed: 3 });
  const good = { weight: new Float32Array(8), bias: new Float32Array(2) };
  await t.throwsAsync(
    p.creff.run(p.lr, p.key, p.motion, { head: { weight: new Float32Array(7), bias: new Float32Array(2) } }),
    { code: 'ERR_SHAPE' },
  );
  await t.throwsAsync(
    p.creff.run(p.lr, p.key, p.motion, { head: { weight: good.weight, bias: new Float32Array(0) } }),
    { code: 'ERR_SHAPE' },
  );
  await t.throwsAsync(p.creff.run(p.lr, p.key, p.motion, { head: { weight: [1, 2], bias: good.bias } }), {
    code: 'ERR_INVALID_ARG',
  });
  await t.throwsAsync(p.creff.run(p.lr, p.key, p.motion, { head: null }), { code: 'ERR_INVALID_ARG' });
  await t.throwsAsync(p.creff.run(p.lr, p.key, p.motion, { head: good, output: new Float32Array(4 * 10 * 12) }), {
    code: 'ERR_SHAPE',
  });
  await t.throwsAsync(p.creff.run(p.lr, p.key, p.motion, { head: good, device: 'cuda' }), { code: 'ERR_INVALID_ARG' });
});

// The fused kernel is compiled for AVX-512 (16-pixel blocks), AVX2 + FMA (8) and baseline x86-64
// (4); each path this CPU has runs in a child process with the level capped by ARSEG_SIMD:
// window sizes on the shifted-register path and off it, widths that leave partial blocks and
// strips, an LR wider than the output, keyframe-conv, the head.
test('every SIMD path this CPU has gives the reference result', async (t) => {
  const CASES = [
    [7, 45, 70, 23, 35, 8, 'exact'],
    [9, 20, 33, 10, 17, 5, 'exact'],
    [5, 17, 9, 9, 5, 6, 'keyframe-conv'],
    [11, 16, 24, 8, 12, 3, 'exact'],
    [3, 12, 20, 18, 30, 4, 'exact'],
  ];
  const script = `
    const { CReFF } = require(${JSON.stringify(path.join(__dirname, '..', 'dist'))});
    const { addon } = require(${JSON.stringify(path.join(__dirname, '..', 'dist', 'native'))});
    const { randoms } = require(${JSON.stringify(path.join(__dirname, 'helpers', 'random'))});
    (async () => {
      const out = [];
      for (const [K, H, W, h, w, C, mode] of ${JSON.stringify(CASES)}) {
        const conv = (s) => ({ weight: randoms(C * 9, s, 1 / 3), bias: randoms(C, s + 1, 1 / 3) });
        const seed = K * 13 + W;
        const creff = new CReFF({ channels: C, window: K, q: conv(seed), k: conv(seed + 2), v: conv(seed + 4) });
        const lr = { data: randoms(C * h * w, seed + 6, 1.7), dims: [1, C, h, w] };
        const key = { data: randoms(C * H * W, seed + 7, 1.7), dims: [1, C, H, W] };
        const motion = { data: randoms(2 * H * W, seed + 8, 6), dims: [2, H, W] };
        const head = { weight: randoms(3 * C, seed + 9, 0.5), bias: randoms(3, seed + 10, 0.5) };
        const prepared = await creff.prepareKeyframe(key, { mode });
        const fused = await creff.run(lr, prepared, motion, { mode });
        const logits = await creff.run(lr, prepared, motion, { mode, head });
        const expectedLogits = await addon().pointwiseHead(fused.data, C, H, W, head.weight, head.bias, 3);
        let headDiff = 0;
        for (let i = 0; i < logits.data.length; i++) headDiff = Math.max(headDiff, Math.abs(logits.data[i] - expectedLogits[i]));
        out.push({ fused: Array.from(fused.data), head: headDiff });
      }
      process.stdout.write(JSON.stringify({ level: addon().simdLevel(), out }));
    })();`;
  const run = (level) =>
    JSON.parse(
      execFileSync(process.execPath, ['-e', script], {
        env: { ...process.env, ARSEG_SIMD: level ?? '' },
        maxBuffer: 1 << 28,
      }).toString(),
    );
  const references = [];
  for (const [K, H, W, h, w, C, mode] of CASES) {
    const conv = (s) => ({ weight: randoms(C * 9, s, 1 / 3), bias: randoms(C, s + 1, 1 / 3) });
    const seed = K * 13 + W;
    const creff = new CReFF({ channels: C, window: K, q: conv(seed), k: conv(seed + 2), v: conv(seed + 4) });
    const r = await creff.run(
      { data: randoms(C * h * w, seed + 6, 1.7), dims: [1, C, h, w] },
      { data: randoms(C * H * W, seed + 7, 1.7), dims: [1, C, H, W] },
      { data: randoms(2 * H * W, seed + 8, 6), dims: [2, H, W] },
      { mode, kernel: 'reference' },
    );
    references.push(r.data);
  }
  const levels = ['avx512', 'avx2', 'baseline'];
  const best = run(undefined).level;
  t.log(`this CPU: ${best}`);
  for (const level of levels.slice(levels.indexOf(best))) {
    const { level: ran, out } = run(level);
    t.is(ran, level);
    CASES.forEach(([K, H, W, , , C, mode], i) => {
      const diff = maxDiff(out[i].fused, references[i]);
      t.true(diff < TOLERANCE, `${level} K=${K} ${H}x${W} C=${C} ${mode}: ${diff.toExponential(2)}`);
      t.true(
        out[i].head < HEAD_ROUNDING,
        `${level} K=${K}: the head inside the kernel ~ the head after it: ${out[i].head}`,
      );
    });
  }
});
