'use strict';
// The load-time cost of checking a bundle's ONNX weights for NaN and infinities
// (lib/onnx-weights.ts), against ONNX Runtime's own session creation for the same bytes, side by
// side in one run. The model: one 3x3 convolution whose weight has as many floats as the official
// PSPNet18 HR encoder (13.4 M, ~54 MB), random values.
//   node bench/weight-scan.js [millions of weights, default 13.4]
const ort = require('onnxruntime-node');
const { nonFiniteWeight } = require('../dist/onnx-weights');
const { onnxTypes } = require('../dist/pointwise-head');

const millions = Number(process.argv[2] || 13.4);
const cin = 512;
const cout = Math.round((millions * 1e6) / (cin * 9));
const weights = new Float32Array(cout * cin * 9);
let x = 1;
for (let i = 0; i < weights.length; i++) {
  x = (x * 1103515245 + 12345) >>> 0;
  weights[i] = (x / 2 ** 32 - 0.5) * 0.1;
}
const { ModelProto } = onnxTypes();
const bytes = ModelProto.encode(
  ModelProto.fromObject({
    ir_version: 8,
    opset_import: [{ domain: '', version: 13 }],
    graph: {
      name: 'g',
      node: [
        {
          op_type: 'Conv',
          input: ['x', 'w'],
          output: ['y'],
          attribute: [
            { name: 'kernel_shape', type: 7, ints: [3, 3] },
            { name: 'pads', type: 7, ints: [1, 1, 1, 1] },
          ],
        },
      ],
      initializer: [{ name: 'w', data_type: 1, dims: [cout, cin, 3, 3], raw_data: Buffer.from(weights.buffer) }],
      input: [
        {
          name: 'x',
          type: {
            tensor_type: {
              elem_type: 1,
              shape: { dim: [{ dim_value: 1 }, { dim_value: cin }, { dim_param: 'h' }, { dim_param: 'w' }] },
            },
          },
        },
      ],
      output: [{ name: 'y', type: { tensor_type: { elem_type: 1 } } }],
    },
  }),
).finish();

const median = (a) => [...a].sort((p, q) => p - q)[a.length >> 1];
(async () => {
  const scan = [];
  const create = [];
  for (let r = 0; r < 5; r++) {
    let t = process.hrtime.bigint();
    if (nonFiniteWeight(bytes) !== null) throw new Error('expected finite weights');
    scan.push(Number(process.hrtime.bigint() - t) / 1e6);
    t = process.hrtime.bigint();
    const s = await ort.InferenceSession.create(bytes, { graphOptimizationLevel: 'all' });
    create.push(Number(process.hrtime.bigint() - t) / 1e6);
    await s.release();
  }
  const [ms, mc] = [median(scan), median(create)];
  console.log(
    `${(weights.length / 1e6).toFixed(1)} M weights (${(bytes.length / 2 ** 20).toFixed(1)} MiB): ` +
      `scan ${ms.toFixed(1)} ms, ONNX Runtime session ${mc.toFixed(1)} ms (median of 5): the scan adds ${((100 * ms) / mc).toFixed(0)}%`,
  );
})();
