#!/usr/bin/env node
'use strict';
/*
 * CReFF at C=64, K=7 on CamVid sizes (360x480 and 720x960, LR at half size per side), side by
 * side in one run: the fused CPU kernel (raw keyframe, and a keyframe prepared once per GOP),
 * the 'keyframe-conv' mode, the plain reference kernel, and CReFF written as an ONNX graph of
 * standard operators (test/fixtures/creff-graph/creff-c64-k7.onnx, python/tools/export_creff_onnx.py) run by ONNX
 * Runtime's CPU provider, all with the same weights and inputs. Also the error of the
 * 'keyframe-conv' mode against the exact mode, and, when a CUDA device is present, the CUDA
 * kernel's time and its difference from the CPU result.
 *
 *   node bench/creff.js [--rounds 3] [--sizes 360x480,720x960] [--no-reference]
 */
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const ort = require('onnxruntime-node');
const { CReFF, creffFlops } = require('../dist');
const { randoms } = require('../test/helpers/random');

const args = process.argv.slice(2);
const arg = (name, fallback) => (args.includes(name) ? args[args.indexOf(name) + 1] : fallback);
const rounds = Number(arg('--rounds', 3));
const sizes = arg('--sizes', '360x480,720x960').split(',').map((s) => s.split('x').map(Number));
const withReference = !args.includes('--no-reference');

const model = path.join(__dirname, '..', 'test', 'fixtures', 'creff-graph', 'creff-c64-k7.onnx');
const w = JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'test', 'fixtures', 'creff-graph', 'creff-c64-k7.weights.json'), 'utf8'));
const f32 = (a) => Float32Array.from(a);
const creff = new CReFF({
  channels: w.channels,
  window: w.window,
  q: { weight: f32(w.qWeight), bias: f32(w.qBias) },
  k: { weight: f32(w.kWeight), bias: f32(w.kBias) },
  v: { weight: f32(w.vWeight), bias: f32(w.vBias) },
});

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1];
}

function diff(a, b) {
  let max = 0;
  let sum = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    max = Math.max(max, d);
    sum += d;
  }
  return `${max.toExponential(1)} / ${(sum / a.length).toExponential(1)}`;
}

async function time(fn) {
  const t0 = process.hrtime.bigint();
  const out = await fn();
  return { ms: Number(process.hrtime.bigint() - t0) / 1e6, out };
}

(async () => {
  const C = w.channels;
  const session = await ort.InferenceSession.create(model, { intraOpNumThreads: os.cpus().length, graphOptimizationLevel: 'all' });
  const cuda = CReFF.cudaStatus();
  console.log(`CReFF C=${C} K=${w.window}, ${rounds} rounds (median), threads: all ${os.cpus().length} cores; CUDA: ${cuda.available ? 'yes' : cuda.reason}`);
  for (const [H, W] of sizes) {
    const h = H / 2;
    const wl = W / 2;
    const lr = { data: randoms(C * h * wl, 1, 1.7), dims: [1, C, h, wl] };
    const key = { data: randoms(C * H * W, 2, 1.7), dims: [1, C, H, W] };
    // smooth motion of a few pixels plus a band pointing out of the frame
    const motion = { data: new Float32Array(2 * H * W), dims: [2, H, W] };
    for (let y = 0; y < H; y++)
      for (let x = 0; x < W; x++) {
        motion.data[y * W + x] = 3 * Math.sin(y / 17) + (x < W / 10 ? -W : 0);
        motion.data[H * W + y * W + x] = 2 * Math.cos(x / 23);
      }
    const feeds = {
      lr: new ort.Tensor('float32', lr.data, lr.dims),
      key: new ort.Tensor('float32', key.data, key.dims),
      motion: new ort.Tensor('float32', motion.data, [1, 2, H, W]),
    };
    const prepared = await creff.prepareKeyframe(key);
    const reused = new Float32Array(C * H * W);
    const preparedFast = await creff.prepareKeyframe(key, { mode: 'keyframe-conv' });
    const configs = [
      ['fused CPU (raw keyframe)', () => creff.run(lr, key, motion).then((r) => r.data)],
      ['fused CPU (keyframe prepared per GOP)', () => creff.run(lr, prepared, motion).then((r) => r.data)],
      ['fused CPU, keyframe-conv mode (prepared)', () => creff.run(lr, preparedFast, motion).then((r) => r.data)],
      // as the pipeline runs it: the output buffer reused from call to call (no new 4 x C x H x W
      // bytes to fault in per call)
      ['fused CPU (prepared, output buffer reused)', () => creff.run(lr, prepared, motion, { output: reused }).then((r) => r.data)],
      ['ONNX Runtime graph (CPU)', () => session.run(feeds).then((r) => r.fused.data)],
    ];
    if (withReference) configs.push(['reference kernel', () => creff.run(lr, key, motion, { kernel: 'reference' }).then((r) => r.data)]);
    const times = configs.map(() => []);
    const outputs = [];
    for (let r = 0; r < rounds; r++)
      for (let i = 0; i < configs.length; i++) {
        const { ms, out } = await time(configs[i][1]);
        times[i].push(ms);
        if (r === 0) outputs[i] = out;
      }
    const flops = creffFlops(C, H, W, w.window);
    const fusedMs = median(times[0]);
    console.log(`\n${H}x${W} (LR ${h}x${wl}), ${(flops / 1e9).toFixed(2)} GFLOP per call`);
    console.log('| implementation | ms | GFLOP/s | time / fused | max / mean abs difference from fused |');
    console.log('|---|---|---|---|---|');
    configs.forEach(([name], i) => {
      const ms = median(times[i]);
      console.log(`| ${name} | ${ms.toFixed(1)} | ${(flops / ms / 1e6).toFixed(1)} | ${(ms / fusedMs).toFixed(2)}x | ${diff(outputs[i], outputs[0])} |`);
    });
    if (cuda.available) {
      const gpu = await creff.run(lr, key, motion, { device: 'cuda' });
      const ms = [];
      for (let r = 0; r < rounds; r++) ms.push((await creff.run(lr, key, motion, { device: 'cuda' })).milliseconds);
      console.log(`| CUDA kernel (device time) | ${median(ms).toFixed(3)} | ${(flops / median(ms) / 1e6).toFixed(1)} | | ${diff(gpu.data, outputs[0])} |`);
    }
  }
})().catch((err) => {
  console.error(err);
  process.exit(1);
});
