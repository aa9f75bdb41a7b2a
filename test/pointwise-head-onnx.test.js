'use strict';
// Reading the decoder's 1x1 convolution out of ONNX (lib/pointwise-head.ts): the bundles' decoders
// give exactly the weights ONNX Runtime computes with; models written here with the same schema
// (and loaded by ONNX Runtime, which proves them valid ONNX) that are not exactly a pointwise
// head give null and the reason; corrupt files give null, unreadable ones a coded error; and
// Bundle.load uses the head only when it agrees with ONNX Runtime.
const fs = require('node:fs');
const path = require('node:path');
const test = require('ava');
const ort = require('onnxruntime-node');
const { Bundle, ArSeg, PointwiseHead, readPointwiseHead, pointwiseHeadFromOnnx } = require('../dist');
const { onnxTypes } = require('../dist/pointwise-head');
const { FIXTURES, fixture, tmpDir } = require('./helpers/fixtures');
const { randoms } = require('./helpers/random');

const BUNDLE = path.join(FIXTURES, 'bundles', 'tiny-psp18');
const BUNDLES = [BUNDLE, path.join(__dirname, '..', 'models', 'default')];

// --- writing ONNX models --------------------------------------------------------------------

const AttributeType = { INT: 2, STRING: 3, INTS: 7 };
const ints = (name, values) => ({ name, type: AttributeType.INTS, ints: values });

function tensor(name, dims, values, { raw = true, dataType = 1 } = {}) {
  const t = { name, dims, data_type: dataType };
  if (raw) t.raw_data = Buffer.from(new Float32Array(values).buffer);
  else t.float_data = Array.from(values);
  return t;
}

function valueInfo(name, dims) {
  const dim = dims.map((d) => (typeof d === 'string' ? { dim_param: d } : { dim_value: d }));
  return { name, type: { tensor_type: { elem_type: 1, shape: { dim } } } };
}

function encode(graph, { irVersion = 8, opset = 13 } = {}) {
  const { ModelProto } = onnxTypes();
  return ModelProto.encode(
    ModelProto.fromObject({ ir_version: irVersion, opset_import: [{ domain: '', version: opset }], graph }),
  ).finish();
}

/**
 * A graph around one Conv: feature [N, C, H, W] -> logits. `edit(graph, conv)` changes it. The
 * weights are [K, C / group, k, k] and the bias [K].
 */
function convModel({
  C = 3,
  K = 2,
  k = 1,
  group = 1,
  attributes,
  bias = true,
  raw = true,
  edit,
  irVersion,
  opset,
} = {}) {
  const weight = randoms(K * (C / group) * k * k, 21 + K);
  const biasValues = randoms(K, 22);
  const conv = {
    op_type: 'Conv',
    name: 'final_conv',
    input: bias ? ['feature', 'w', 'b'] : ['feature', 'w'],
    output: ['logits'],
    attribute: attributes ?? [
      ints('kernel_shape', [k, k]),
      ints('strides', [1, 1]),
      ints('pads', [0, 0, 0, 0]),
      ints('dilations', [1, 1]),
      { name: 'group', type: AttributeType.INT, i: group },
    ],
  };
  const graph = {
    name: 'decoder',
    node: [conv],
    initializer: [
      tensor('w', [K, C / group, k, k], weight, { raw }),
      ...(bias ? [tensor('b', [K], biasValues, { raw })] : []),
    ],
    input: [valueInfo('feature', ['N', C, 'H', 'W'])],
    output: [valueInfo('logits', ['N', K, 'H', 'W'])],
  };
  edit?.(graph, conv);
  return { bytes: encode(graph, { irVersion, opset }), weight, bias: bias ? biasValues : new Float32Array(K) };
}

async function ortRun(bytes, feature, dims) {
  const session = await ort.InferenceSession.create(bytes, { graphOptimizationLevel: 'all' });
  try {
    const out = await session.run({ [session.inputNames[0]]: new ort.Tensor('float32', feature, dims) });
    return out[session.outputNames[0]].data;
  } finally {
    await session.release();
  }
}

// --- the bundles' decoders --------------------------------------------------------------------

for (const dir of BUNDLES) {
  test(`${path.basename(dir)}: the decoder's weights are exactly those ONNX Runtime computes with`, async (t) => {
    const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'arseg.json'), 'utf8'));
    const { head, reason } = await readPointwiseHead(path.join(dir, manifest.networks.decoder));
    t.is(reason, undefined);
    t.is(head.channels, manifest.feature.channels);
    t.is(head.classes, manifest.classes.length);
    // Probe the graph as exported by PyTorch: a zero pixel gives the bias, a one-hot pixel of
    // channel c the weight column c plus the bias, each exactly (every other product is 0).
    const C = head.channels;
    const n = C + 1;
    const feature = new Float32Array(C * n);
    for (let c = 0; c < C; c++) feature[c * n + c] = 1;
    const logits = await ortRun(fs.readFileSync(path.join(dir, manifest.networks.decoder)), feature, [1, C, 1, n]);
    let wrong = 0;
    for (let k = 0; k < head.classes; k++) {
      if (logits[k * n + C] !== head.bias[k]) wrong++;
      for (let c = 0; c < C; c++) if (logits[k * n + c] !== Math.fround(head.weight[k * C + c] + head.bias[k])) wrong++;
    }
    t.is(wrong, 0);
  });
}

// --- models written here ----------------------------------------------------------------------

test('a 1x1 Conv with raw_data weights and bias: exactly the weights written', async (t) => {
  const m = convModel({ C: 5, K: 7 });
  const { head } = pointwiseHeadFromOnnx(m.bytes);
  t.deepEqual(head, { channels: 5, classes: 7, weight: m.weight, bias: m.bias });
  const feature = randoms(5 * 3 * 9, 4);
  const expected = await ortRun(m.bytes, feature, [1, 5, 3, 9]);
  const got = await new PointwiseHead(head).run({ data: feature, dims: [1, 5, 3, 9] });
  t.true(got.data.every((v, i) => Math.abs(v - expected[i]) < 1e-5));
});

test('float_data weights, no bias, no attributes: a head with a zero bias', async (t) => {
  const m = convModel({ C: 4, K: 3, bias: false, raw: false, attributes: [] });
  const { head } = pointwiseHeadFromOnnx(m.bytes);
  t.deepEqual(head.weight, m.weight);
  t.deepEqual(head.bias, new Float32Array(3));
  const feature = randoms(4 * 2 * 17, 5);
  const expected = await ortRun(m.bytes, feature, [1, 4, 2, 17]);
  const got = await new PointwiseHead(head).run({ data: feature, dims: [1, 4, 2, 17] });
  t.true(got.data.every((v, i) => Math.abs(v - expected[i]) < 1e-5));
});

test('IR 3, where the initializers are graph inputs too: still a head', async (t) => {
  const m = convModel({
    irVersion: 3,
    opset: 9,
    edit: (g) => g.input.push(valueInfo('w', [2, 3, 1, 1]), valueInfo('b', [2])),
  });
  await t.notThrowsAsync(ortRun(m.bytes, randoms(3 * 4, 1), [1, 3, 2, 2]));
  t.truthy(pointwiseHeadFromOnnx(m.bytes).head);
});

// [what, model options, the reason, whether ONNX Runtime loads it (proof that it is valid ONNX)]
const NOT_POINTWISE = [
  [
    'a 3x3 kernel',
    { k: 3, attributes: [ints('kernel_shape', [3, 3]), ints('pads', [1, 1, 1, 1])] },
    /kernel_shape \[3,3\]/,
    true,
  ],
  ['stride 2', { attributes: [ints('strides', [2, 2])] }, /strides \[2,2\]/, true],
  ['padding', { attributes: [ints('pads', [0, 0, 1, 1])] }, /pads \[0,0,1,1\]/, true],
  ['dilation 2', { attributes: [ints('dilations', [2, 2])] }, /dilations \[2,2\]/, true],
  ['two groups', { C: 4, group: 2, attributes: [{ name: 'group', type: AttributeType.INT, i: 2 }] }, /group 2/, true],
  [
    'a Conv then a Relu',
    {
      edit: (g, conv) => {
        conv.output = ['pre'];
        g.node.push({ op_type: 'Relu', input: ['pre'], output: ['logits'] });
      },
    },
    /2 nodes/,
    true,
  ],
  [
    'a Relu alone',
    {
      edit: (g) => {
        g.node = [{ op_type: 'Relu', input: ['feature'], output: ['logits'] }];
        g.initializer = [];
        g.output = [valueInfo('logits', ['N', 3, 'H', 'W'])];
      },
    },
    /Relu, not Conv/,
    true,
  ],
  [
    'weights fed as an input',
    {
      edit: (g) => {
        g.initializer = g.initializer.filter((i) => i.name !== 'w');
        g.input.push(valueInfo('w', [2, 3, 1, 1]));
      },
    },
    /weight 'w' is not an initializer/,
    true,
  ],
  [
    'a second output',
    {
      edit: (g) => {
        g.node.push({ op_type: 'Identity', input: ['logits'], output: ['copy'] });
        g.output.push(valueInfo('copy', ['N', 2, 'H', 'W']));
      },
    },
    /2 nodes/,
    true,
  ],
  [
    "an output other than the Conv's",
    {
      edit: (g) => {
        g.output = [valueInfo('probabilities', ['N', 2, 'H', 'W'])];
      },
    },
    /outputs \[probabilities\] are not just the Conv's output 'logits'/,
    false,
  ],
  [
    'another domain',
    {
      edit: (g, conv) => {
        conv.domain = 'com.example';
      },
    },
    /com\.example\.Conv/,
    false,
  ],
  [
    'an unknown attribute',
    { attributes: [{ name: 'activation', type: AttributeType.STRING, s: Buffer.from('relu') }] },
    /attribute 'activation'/,
    false,
  ],
  [
    'auto_pad of another name',
    { attributes: [{ name: 'auto_pad', type: AttributeType.STRING, s: Buffer.from('SAME_SIDEWAYS') }] },
    /auto_pad 'SAME_SIDEWAYS'/,
    false,
  ],
  [
    'float16 weights',
    {
      edit: (g) => {
        g.initializer[0].data_type = 10;
      },
    },
    /not float32 \(data_type 10\)/,
    false,
  ],
  [
    'weights in an external file',
    {
      edit: (g) => {
        g.initializer[0].data_location = 1;
        delete g.initializer[0].raw_data;
      },
    },
    /external data/,
    false,
  ],
  [
    'a weight of the wrong byte count',
    {
      edit: (g) => {
        g.initializer[0].raw_data = Buffer.alloc(10);
      },
    },
    /holds 10 bytes, its dims need 24/,
    false,
  ],
  [
    'a bias of the wrong length',
    {
      edit: (g) => {
        g.initializer[1] = tensor('b', [3], [1, 2, 3]);
      },
    },
    /bias's dims \[3\]/,
    false,
  ],
  [
    'a feature of other channels',
    {
      edit: (g) => {
        g.input[0] = valueInfo('feature', ['N', 4, 'H', 'W']);
      },
    },
    /not \[N, 3, H, W\]/,
    false,
  ],
];

for (const [what, options, reason, valid] of NOT_POINTWISE) {
  test(`${what}: not a pointwise head, and why`, async (t) => {
    const { bytes } = convModel(options);
    if (valid)
      await t.notThrowsAsync(
        ort.InferenceSession.create(bytes).then((s) => s.release()),
        'ONNX Runtime loads it',
      );
    const got = pointwiseHeadFromOnnx(bytes);
    t.is(got.head, null);
    t.regex(got.reason, reason);
  });
}

test('a real network (the CReFF benchmark graph, an encoder): not a pointwise head', async (t) => {
  for (const file of [
    path.join(__dirname, 'fixtures', 'creff-graph', 'creff-c64-k7.onnx'),
    path.join(BUNDLE, 'hr_encoder.onnx'),
  ]) {
    const { head, reason } = await readPointwiseHead(file);
    t.is(head, null);
    t.regex(reason, /the graph has \d+ nodes, not one Conv/);
  }
});

// --- corrupt and unreadable files ---------------------------------------------------------------

test('corrupt bytes give null and a reason, never an exception', (t) => {
  const decoder = fs.readFileSync(path.join(BUNDLE, 'decoder.onnx'));
  const truncated = pointwiseHeadFromOnnx(decoder.subarray(0, decoder.length >> 1));
  t.is(truncated.head, null);
  t.regex(truncated.reason, /^not an ONNX model: /);
  t.deepEqual(pointwiseHeadFromOnnx(new Uint8Array(0)), { head: null, reason: 'the model has no graph' });
  t.regex(pointwiseHeadFromOnnx(Buffer.from('not onnx at all')).reason, /^not an ONNX model: /);
  for (let seed = 1; seed <= 50; seed++) {
    const bytes = Buffer.from(randoms(64 + seed, seed).buffer);
    const got = pointwiseHeadFromOnnx(bytes);
    t.is(got.head, null);
    t.is(typeof got.reason, 'string');
  }
  // flipped bytes of a real decoder: a head only if the weights survived intact
  for (let i = 0; i < decoder.length; i += 7) {
    const bytes = Buffer.from(decoder);
    bytes[i] ^= 0x5a;
    const got = pointwiseHeadFromOnnx(bytes);
    t.true(
      got.head === null
        ? typeof got.reason === 'string'
        : got.head.weight.length === got.head.classes * got.head.channels,
    );
  }
});

test('a file that cannot be read: ERR_NOT_FOUND or ERR_OPEN', async (t) => {
  await t.throwsAsync(readPointwiseHead(path.join(tmpDir(), 'missing.onnx')), { code: 'ERR_NOT_FOUND' });
  await t.throwsAsync(readPointwiseHead(tmpDir()), { code: 'ERR_OPEN' });
});

// --- Bundle.load ------------------------------------------------------------------------------

function bundleWithDecoder(bytes) {
  const dir = path.join(tmpDir('arseg-head-'), 'b');
  fs.cpSync(BUNDLE, dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'decoder.onnx'), bytes);
  return dir;
}

test("Bundle.load takes the head; decoder: 'onnx' does not; other choices are refused", async (t) => {
  const bundle = await Bundle.load(BUNDLE);
  t.true(bundle.head instanceof PointwiseHead);
  t.is(bundle.headReason, null);
  t.is(bundle.head.channels, bundle.manifest.feature.channels);
  await bundle.close();
  const onnx = await Bundle.load(BUNDLE, { decoder: 'onnx' });
  t.is(onnx.head, null);
  t.regex(onnx.headReason, /decoder: 'onnx'/);
  await onnx.close();
  await t.throwsAsync(Bundle.load(BUNDLE, { decoder: 'native' }), { code: 'ERR_INVALID_ARG' });
  await t.throwsAsync(ArSeg.load(BUNDLE, { decoder: 1 }), { code: 'ERR_INVALID_ARG' });
});

test('a bundle whose decoder is not one 1x1 convolution runs it in ONNX Runtime', async (t) => {
  const { head } = await readPointwiseHead(path.join(BUNDLE, 'decoder.onnx'));
  const C = head.channels;
  const K = head.classes;
  const graph = {
    name: 'decoder',
    node: [
      { op_type: 'Conv', input: ['feature', 'w', 'b'], output: ['pre'], attribute: [ints('kernel_shape', [1, 1])] },
      { op_type: 'Relu', input: ['pre'], output: ['logits'] },
    ],
    initializer: [tensor('w', [K, C, 1, 1], head.weight), tensor('b', [K], head.bias)],
    input: [valueInfo('feature', ['N', C, 'H', 'W'])],
    output: [valueInfo('logits', ['N', K, 'H', 'W'])],
  };
  const seg = await ArSeg.load(bundleWithDecoder(encode(graph)));
  try {
    t.is(seg.bundle.head, null);
    t.regex(seg.bundle.headReason, /decoder\.onnx is not a pointwise head: the graph has 2 nodes/);
    let frames = 0;
    for await (const r of seg.segment(fixture('tiny.h264'), { logits: true })) {
      frames++;
      t.true(
        r.logits.data.every((v) => v >= 0),
        'the Relu ran',
      );
    }
    t.is(frames, 24);
  } finally {
    await seg.close();
  }
});

test('a pointwise decoder of fewer classes than the manifest: ERR_BUNDLE (the dry run sees it first)', async (t) => {
  const m = convModel({ C: 6, K: 11 });
  const err = await t.throwsAsync(Bundle.load(bundleWithDecoder(m.bytes)));
  t.is(err.code, 'ERR_BUNDLE');
});

test.serial("a head that does not reproduce ONNX Runtime's logits is not used", async (t) => {
  const run = PointwiseHead.prototype.run;
  PointwiseHead.prototype.run = async function (...args) {
    const out = await run.apply(this, args);
    out.data[3] += 0.01;
    return out;
  };
  try {
    const bundle = await Bundle.load(BUNDLE);
    t.is(bundle.head, null);
    t.regex(bundle.headReason, /the native head disagrees with ONNX Runtime by 1\.00e-2/);
    await bundle.close();
  } finally {
    PointwiseHead.prototype.run = run;
  }
});
