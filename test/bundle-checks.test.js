'use strict';
// Bundles that would load and silently give wrong answers, or read outside themselves: a NaN
// or an infinity in any stored weight (CReFF's .npy files, the ONNX initializers of the decoder
// and the encoders) is ERR_BUNDLE naming the file and the tensor; a symbolic link inside the
// bundle that leads outside it is refused.
const fs = require('node:fs');
const path = require('node:path');
const test = require('ava');
const { Bundle, ArSeg } = require('../dist');
const { onnxTypes } = require('../dist/pointwise-head');
const { nonFiniteWeight } = require('../dist/onnx-weights');
const { FIXTURES, tmpDir } = require('./helpers/fixtures');

const BUNDLE = path.join(FIXTURES, 'bundles', 'tiny-psp18');

function copyBundle() {
  const dir = path.join(tmpDir('arseg-bundle-'), 'bundle');
  fs.cpSync(BUNDLE, dir, { recursive: true });
  return dir;
}

/** Rewrites `file` (an ONNX model) with value `v` at index `at` of its `which`-th float initializer. */
function poisonOnnx(file, v, which = 0, at = 0) {
  const { ModelProto } = onnxTypes();
  const model = ModelProto.decode(fs.readFileSync(file));
  const floats = model.graph.initializer.filter(
    (t) => t.data_type === 1 && (t.raw_data?.length || t.float_data?.length),
  );
  const t = floats[which];
  if (t.raw_data && t.raw_data.length) {
    const raw = Buffer.from(t.raw_data);
    raw.writeFloatLE(v, 4 * at);
    t.raw_data = raw;
  } else {
    t.float_data[at] = v;
  }
  fs.writeFileSync(file, ModelProto.encode(model).finish());
  return t.name;
}

test('the tiny bundle loads: every weight is finite', async (t) => {
  for (const f of ['hr_encoder.onnx', 'lr_encoder.onnx', 'decoder.onnx'])
    t.is(nonFiniteWeight(fs.readFileSync(path.join(BUNDLE, f))), null, f);
  const b = await Bundle.load(BUNDLE);
  await b.close();
});

test('NaN in the decoder weights: ERR_BUNDLE naming decoder.onnx and the tensor', async (t) => {
  const dir = copyBundle();
  const name = poisonOnnx(path.join(dir, 'decoder.onnx'), NaN, 0, 3);
  const err = await t.throwsAsync(Bundle.load(dir));
  t.is(err.code, 'ERR_BUNDLE');
  t.true(err.message.startsWith(path.join(dir, 'decoder.onnx') + ':'), err.message);
  t.true(err.message.includes(`weight '${name}' holds NaN at index 3`), err.message);
  // the same through ArSeg and with the ONNX Runtime decoder
  t.is((await t.throwsAsync(ArSeg.load(dir, { decoder: 'onnx' }))).code, 'ERR_BUNDLE');
});

test('an infinity in an encoder, in any initializer: ERR_BUNDLE naming the encoder', async (t) => {
  for (const [file, v] of [
    ['hr_encoder.onnx', Infinity],
    ['lr_encoder.onnx', -Infinity],
  ]) {
    const dir = copyBundle();
    const name = poisonOnnx(path.join(dir, file), v, 5, 1);
    const err = await t.throwsAsync(Bundle.load(dir));
    t.is(err.code, 'ERR_BUNDLE');
    t.true(err.message.startsWith(path.join(dir, file) + ':'), err.message);
    t.true(err.message.includes(`'${name}' holds ${v}`), err.message);
  }
});

test('NaN in a CReFF .npy: ERR_BUNDLE naming the file', async (t) => {
  for (const rel of ['creff/q_weight.npy', 'creff/v_bias.npy']) {
    const dir = copyBundle();
    const file = path.join(dir, rel);
    const bytes = fs.readFileSync(file);
    const headerLen = bytes.readUInt16LE(8);
    bytes.writeFloatLE(NaN, 10 + headerLen + 4 * 2);
    fs.writeFileSync(file, bytes);
    const err = await t.throwsAsync(Bundle.load(dir));
    t.is(err.code, 'ERR_BUNDLE');
    t.true(err.message.startsWith(file + ':'), err.message);
    t.regex(err.message, /holds NaN at index 2/);
  }
});

test('non-finite values of every stored float type are found: float_data, double, float16, bfloat16, Constant nodes', (t) => {
  const { ModelProto } = onnxTypes();
  const model = (initializer, node = []) =>
    ModelProto.encode(ModelProto.fromObject({ ir_version: 8, graph: { initializer, node } })).finish();
  const raw = (Type, values) => Buffer.from(new Type(values).buffer);
  t.like(nonFiniteWeight(model([{ name: 'a', data_type: 1, dims: [3], float_data: [1, NaN, 2] }])), {
    tensor: 'a',
    index: 1,
  });
  t.like(
    nonFiniteWeight(model([{ name: 'd', data_type: 11, dims: [2], raw_data: raw(Float64Array, [0, -Infinity]) }])),
    { tensor: 'd', index: 1, value: -Infinity },
  );
  t.like(
    nonFiniteWeight(
      model([{ name: 'h', data_type: 10, dims: [3], raw_data: raw(Uint16Array, [0x3c00, 0x3c00, 0x7e00]) }]),
    ),
    { tensor: 'h', index: 2 },
  );
  t.like(nonFiniteWeight(model([{ name: 'b', data_type: 16, dims: [2], raw_data: raw(Uint16Array, [0xff80, 0]) }])), {
    tensor: 'b',
    index: 0,
    value: -Infinity,
  });
  t.like(
    nonFiniteWeight(
      model(
        [],
        [
          {
            op_type: 'Constant',
            name: 'c',
            output: ['c'],
            attribute: [
              { name: 'value', type: 4, t: { data_type: 1, dims: [1], raw_data: raw(Float32Array, [Infinity]) } },
            ],
          },
        ],
      ),
    ),
    { tensor: 'c', value: Infinity },
  );
  t.is(
    nonFiniteWeight(
      model([
        { name: 'ok', data_type: 1, dims: [2], raw_data: raw(Float32Array, [1, 1e38]) },
        { name: 'i', data_type: 7, dims: [1], raw_data: Buffer.alloc(8, 0xff) },
      ]),
    ),
    null,
  );
});

test('a symbolic link inside the bundle to a file outside it is refused; one to a file inside is fine', async (t) => {
  const dir = copyBundle();
  const outside = path.join(path.dirname(dir), 'elsewhere.onnx');
  fs.renameSync(path.join(dir, 'decoder.onnx'), outside);
  fs.symlinkSync(outside, path.join(dir, 'decoder.onnx'));
  const err = await t.throwsAsync(Bundle.load(dir));
  t.is(err.code, 'ERR_BUNDLE');
  t.regex(err.message, /networks\.decoder is a symbolic link to .*elsewhere\.onnx, outside the bundle: refused/);
  // a CReFF file, a linked directory, and the manifest itself
  const dir2 = copyBundle();
  const away = path.join(path.dirname(dir2), 'creff-away');
  fs.renameSync(path.join(dir2, 'creff'), away);
  fs.symlinkSync(away, path.join(dir2, 'creff'));
  t.regex(
    (await t.throwsAsync(Bundle.load(dir2))).message,
    /creff\.q\.weight is a symbolic link to .*creff-away.*outside the bundle/,
  );
  const dir3 = copyBundle();
  const manifest = path.join(path.dirname(dir3), 'arseg.json');
  fs.renameSync(path.join(dir3, 'arseg.json'), manifest);
  fs.symlinkSync(manifest, path.join(dir3, 'arseg.json'));
  t.regex((await t.throwsAsync(Bundle.load(dir3))).message, /the manifest is a symbolic link to .*outside the bundle/);
  // inside: lr_encoder.onnx is a link to hr_encoder.onnx (identical files in the tiny bundle); and
  // the bundle directory itself may be reached through a link
  const dir4 = copyBundle();
  fs.rmSync(path.join(dir4, 'lr_encoder.onnx'));
  fs.symlinkSync('hr_encoder.onnx', path.join(dir4, 'lr_encoder.onnx'));
  const link = path.join(tmpDir('arseg-bundle-'), 'linked');
  fs.symlinkSync(dir4, link);
  const b = await Bundle.load(link);
  await b.close();
  t.pass();
});

test('a path in the manifest that leaves the bundle by name is refused too', async (t) => {
  const dir = copyBundle();
  const m = JSON.parse(fs.readFileSync(path.join(dir, 'arseg.json'), 'utf8'));
  m.networks.decoder = '../decoder.onnx';
  fs.writeFileSync(path.join(dir, 'arseg.json'), JSON.stringify(m));
  t.regex((await t.throwsAsync(Bundle.load(dir))).message, /networks\.decoder points outside the bundle/);
});
