'use strict';
// The native pointwise head (native/postprocess/pointwise_head.cc): a 1x1 convolution against a
// plain JS loop on shapes that reach its edges, against ONNX Runtime's run of the test bundles'
// decoders, on every SIMD path this CPU has, and its coded failures.
const path = require('node:path');
const { execFileSync } = require('node:child_process');
const test = require('ava');
const ort = require('onnxruntime-node');
const { PointwiseHead, readPointwiseHead } = require('../dist');
const { addon } = require('../dist/native');
const { FIXTURES } = require('./helpers/fixtures');
const { randoms } = require('./helpers/random');

const BUNDLES = [path.join(FIXTURES, 'bundles', 'tiny-psp18'), path.join(__dirname, '..', 'models', 'default')];

/** logits[k][p] = sum over c (in order) of weight[k][c] * feature[c][p], plus bias[k], in float64. */
function reference(feature, C, H, W, weight, bias, K) {
  const plane = H * W;
  const out = new Float64Array(K * plane);
  for (let k = 0; k < K; k++)
    for (let p = 0; p < plane; p++) {
      let sum = 0;
      for (let c = 0; c < C; c++) sum += weight[k * C + c] * feature[c * plane + p];
      out[k * plane + p] = sum + bias[k];
    }
  return out;
}

/**
 * The native head's own arithmetic in float32: each product rounded, summed over the channels in
 * order, then the bias (Math.fround of a float64 sum or product of two float32 values is the
 * float32 result: float64 has more than twice float32's precision, so rounding twice is exact).
 */
function float32Reference(feature, C, H, W, weight, bias, K) {
  const plane = H * W;
  const out = new Float32Array(K * plane);
  for (let k = 0; k < K; k++)
    for (let p = 0; p < plane; p++) {
      let sum = 0;
      for (let c = 0; c < C; c++) sum = Math.fround(sum + Math.fround(weight[k * C + c] * feature[c * plane + p]));
      out[k * plane + p] = sum + bias[k];
    }
  return out;
}

function maxDiff(a, b) {
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d;
}

// [channels, classes, height, width]: less than one vector of pixels, ragged ends (widths not
// multiples of 16), one class, 255 classes, a class count that is not a multiple of 4, several
// parallel tasks (more than 4096 pixels).
const SHAPES = [
  [6, 12, 7, 5],
  [64, 12, 3, 21],
  [3, 1, 4, 4],
  [5, 255, 3, 5],
  [5, 255, 9, 33],
  [16, 11, 48, 64],
  [2, 3, 1, 1],
  [17, 7, 61, 97],
];

for (const [C, K, H, W] of SHAPES) {
  test(`${C} -> ${K} channels at ${H}x${W}: the plain loop's logits`, async (t) => {
    const feature = randoms(C * H * W, 3 + C * K, 2);
    const weight = randoms(K * C, 5 + K);
    const bias = randoms(K, 7 + H);
    const got = await addon().pointwiseHead(feature, C, H, W, weight, bias, K);
    t.true(got instanceof Float32Array);
    t.is(got.length, K * H * W);
    const diff = maxDiff(got, reference(feature, C, H, W, weight, bias, K));
    t.true(diff < 2e-6 * C, `max |difference| ${diff.toExponential(2)}`);
  });
}

test('options.output is written and returned, and reused from call to call', async (t) => {
  const [C, K, H, W] = [8, 5, 6, 19];
  const weight = randoms(K * C, 1);
  const bias = randoms(K, 2);
  const output = new Float32Array(K * H * W).fill(NaN);
  for (const seed of [10, 11]) {
    const feature = randoms(C * H * W, seed);
    const got = await addon().pointwiseHead(feature, C, H, W, weight, bias, K, { output, threads: 2 });
    t.is(got, output);
    t.deepEqual(got, await addon().pointwiseHead(feature, C, H, W, weight, bias, K, { threads: 1 }));
  }
});

test('PointwiseHead.run: [1, C, H, W] in, [1, K, H, W] out', async (t) => {
  const head = new PointwiseHead({ channels: 4, classes: 3, weight: randoms(12, 1), bias: randoms(3, 2) });
  const feature = randoms(4 * 5 * 18, 3);
  const { data, dims } = await head.run({ data: feature, dims: [1, 4, 5, 18] });
  t.deepEqual(dims, [1, 3, 5, 18]);
  t.true(maxDiff(data, reference(feature, 4, 5, 18, head.weight, head.bias, 3)) < 1e-5);
  t.deepEqual((await head.run({ data: feature, dims: [4, 5, 18] })).data, data, '[C, H, W] works too');
});

for (const dir of BUNDLES) {
  test(`the decoder of ${path.basename(dir)}: the native head gives ONNX Runtime's logits`, async (t) => {
    const { head } = await readPointwiseHead(path.join(dir, 'decoder.onnx'));
    t.truthy(head);
    const session = await ort.InferenceSession.create(path.join(dir, 'decoder.onnx'), {
      graphOptimizationLevel: 'all',
    });
    try {
      for (const [H, W, seed] of [
        [24, 37, 1],
        [48, 64, 2],
        [1, 3, 3],
      ]) {
        const feature = randoms(head.channels * H * W, seed, 3);
        const out = await session.run({
          [session.inputNames[0]]: new ort.Tensor('float32', feature, [1, head.channels, H, W]),
        });
        const expected = out[session.outputNames[0]].data;
        const got = await new PointwiseHead(head).run({ data: feature, dims: [1, head.channels, H, W] });
        const scale = expected.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
        const diff = maxDiff(got.data, expected);
        t.true(
          diff <= 1e-5 * scale,
          `${H}x${W}: max |difference| ${diff.toExponential(2)} at scale ${scale.toFixed(2)}`,
        );
      }
    } finally {
      await session.release();
    }
  });
}

// Each SIMD path (AVX-512, AVX2 + FMA, baseline x86-64) in a child process with the level capped
// by ARSEG_SIMD: the head exactly the plain float32 loop (no fused multiply-add at any level: the
// device path repeats it bit for bit), and the same-size labels exactly.
test('every SIMD path this CPU has gives the same head and labels', (t) => {
  const script = `
    const { addon } = require(${JSON.stringify(path.join(__dirname, '..', 'dist', 'native'))});
    const { randoms } = require(${JSON.stringify(path.join(__dirname, 'helpers', 'random'))});
    (async () => {
      const out = [];
      for (const [C, K, H, W] of ${JSON.stringify(SHAPES)}) {
        const logits = await addon().pointwiseHead(randoms(C * H * W, 3 + C * K, 2), C, H, W, randoms(K * C, 5 + K), randoms(K, 7 + H), K);
        const labels = await addon().labelsFromLogits(logits, K, H, W, H, W);
        out.push({ logits: Array.from(logits), labels: Array.from(labels) });
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
  const levels = ['avx512', 'avx2', 'baseline'];
  const best = run(undefined).level;
  t.log(`this CPU: ${best}`);
  for (const level of levels.slice(levels.indexOf(best))) {
    const { level: ran, out: got } = run(level);
    t.is(ran, level);
    SHAPES.forEach(([C, K, H, W], i) => {
      const ref = float32Reference(
        randoms(C * H * W, 3 + C * K, 2),
        C,
        H,
        W,
        randoms(K * C, 5 + K),
        randoms(K, 7 + H),
        K,
      );
      const differ = got[i].logits.reduce((n, v, j) => n + (v !== ref[j]), 0);
      t.is(differ, 0, `${level} ${C}->${K} ${H}x${W}: logits differ from the float32 loop`);
      // labels are exact arg-maxes of each path's own logits
      const labels = got[i].labels;
      for (let p = 0; p < H * W; p++) {
        let arg = 0;
        for (let k = 1; k < K; k++) if (got[i].logits[k * H * W + p] > got[i].logits[arg * H * W + p]) arg = k;
        if (labels[p] !== arg)
          return t.fail(`${level} ${K} classes ${H}x${W}: pixel ${p} labelled ${labels[p]}, arg-max ${arg}`);
      }
    });
  }
});

// --- failures -------------------------------------------------------------------------------

test('wrong lengths are ERR_SHAPE; bad arguments ERR_INVALID_ARG', async (t) => {
  const [C, K, H, W] = [3, 2, 4, 5];
  const f = randoms(C * H * W, 1);
  const w = randoms(K * C, 2);
  const b = randoms(K, 3);
  const head = (...args) => addon().pointwiseHead(...args);
  t.throws(() => head(f.subarray(1), C, H, W, w, b, K), { code: 'ERR_SHAPE' });
  t.throws(() => head(f, C, H, W + 1, w, b, K), { code: 'ERR_SHAPE' });
  t.throws(() => head(f, C, H, W, w.subarray(1), b, K), { code: 'ERR_SHAPE' });
  t.throws(() => head(f, C, H, W, w, randoms(K + 1, 3), K), { code: 'ERR_SHAPE' });
  t.throws(() => head(f, C, H, W, w, b, K, { output: new Float32Array(K * H * W - 1) }), {
    code: 'ERR_SHAPE',
    message: /options\.output/,
  });
  t.throws(() => head(f, C, H, W, w, b, K, { output: new Float32Array(K * H * W + 1) }), { code: 'ERR_SHAPE' });
  t.throws(() => head(new Float64Array(C * H * W), C, H, W, w, b, K), { code: 'ERR_INVALID_ARG' });
  t.throws(() => head(f, C, H, W, Array.from(w), b, K), { code: 'ERR_INVALID_ARG' });
  t.throws(() => head(f, 0, H, W, w, b, K), { code: 'ERR_INVALID_ARG' });
  t.throws(() => head(f, 1.5, H, W, w, b, K), { code: 'ERR_INVALID_ARG' });
  t.throws(() => head(f, C, '4', W, w, b, K), { code: 'ERR_INVALID_ARG' });
  t.throws(() => head(f, C, H, W, w, b), { code: 'ERR_INVALID_ARG' });
  t.throws(() => head(f, C, H, W, w, b, K, 'fast'), { code: 'ERR_INVALID_ARG' });
  t.throws(() => head(f, C, H, W, w, b, K, { threads: 0 }), { code: 'ERR_INVALID_ARG' });
  t.throws(() => head(f, C, H, W, w, b, K, { output: new Uint8Array(K * H * W) }), { code: 'ERR_INVALID_ARG' });
  // an output sharing the feature's memory would be overwritten while it is read
  const shared = new Float32Array(C * H * W + K * H * W);
  t.throws(
    () =>
      head(shared.subarray(0, C * H * W), C, H, W, w, b, K, {
        output: shared.subarray(C * H * W - 1, C * H * W - 1 + K * H * W),
      }),
    {
      code: 'ERR_INVALID_ARG',
    },
  );
  // ...while one next to it is fine
  await t.notThrowsAsync(head(shared.subarray(0, C * H * W), C, H, W, w, b, K, { output: shared.subarray(C * H * W) }));
});

test('PointwiseHead checks its weights and the feature', async (t) => {
  t.throws(() => new PointwiseHead(null), { code: 'ERR_INVALID_ARG' });
  t.throws(
    () => new PointwiseHead({ channels: 0, classes: 1, weight: new Float32Array(0), bias: new Float32Array(1) }),
    { code: 'ERR_INVALID_ARG' },
  );
  t.throws(() => new PointwiseHead({ channels: 2, classes: 2, weight: [1, 2, 3, 4], bias: new Float32Array(2) }), {
    code: 'ERR_INVALID_ARG',
  });
  t.throws(
    () => new PointwiseHead({ channels: 2, classes: 2, weight: new Float32Array(3), bias: new Float32Array(2) }),
    { code: 'ERR_SHAPE' },
  );
  const head = new PointwiseHead({ channels: 2, classes: 3, weight: new Float32Array(6), bias: new Float32Array(3) });
  await t.throwsAsync(head.run({ data: new Float32Array(2 * 4 * 4), dims: [1, 3, 4, 4] }), { code: 'ERR_SHAPE' });
  await t.throwsAsync(head.run({ data: new Float32Array(2 * 4 * 4), dims: [1, 2, 4, 5] }), { code: 'ERR_SHAPE' });
  await t.throwsAsync(
    head.run({ data: new Float32Array(2 * 16), dims: [1, 2, 4, 4] }, { output: new Float32Array(47) }),
    { code: 'ERR_SHAPE' },
  );
  await t.throwsAsync(head.run({ data: [0, 1], dims: [1, 2, 1, 1] }), { code: 'ERR_INVALID_ARG' });
  await t.throwsAsync(head.run(null), { code: 'ERR_INVALID_ARG' });
});
