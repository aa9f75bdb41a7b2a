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
 *   node bench/creff.js --device cuda [--rounds 10] [--sizes ...] [--json FILE]
 *   node bench/creff.js --device cuda-emulated --sizes 32x48 --rounds 1   (the same flow on the
 *     emulated device: a check of this script where there is no GPU, not a figure)
 *
 * --device cuda: the GPU alone (scripts/gpu-check.sh runs it): the CUDA kernel's device time,
 * its achieved memory bandwidth (the bytes it must move: LR feature, keyframe, motion, output)
 * and FP32 rate against the GPU's peaks computed from what the driver reports (bench/gpu-peak.js),
 * and the device path's fused frame (CReFF + head + labels, the keyframe on the device), with the
 * difference from the fused CPU kernel.
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
const sizes = arg('--sizes', '360x480,720x960')
  .split(',')
  .map((s) => s.split('x').map(Number));
const withReference = !args.includes('--no-reference');
const device = arg('--device', 'cpu');
const jsonOut = arg('--json', null);

const model = path.join(__dirname, '..', 'test', 'fixtures', 'creff-graph', 'creff-c64-k7.onnx');
const w = JSON.parse(
  fs.readFileSync(path.join(__dirname, '..', 'test', 'fixtures', 'creff-graph', 'creff-c64-k7.weights.json'), 'utf8'),
);
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

function problemAt(C, H, W) {
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
  return { h, wl, lr, key, motion };
}

/** --device cuda: the GPU alone (or 'cuda-emulated': the same flow through the emulator). */
async function cudaBench(backend) {
  const { addon } = require('../dist/native');
  const { gpuPeak } = require('./gpu-peak');
  const emulated = backend === 'cuda-emulated';
  const cuda = CReFF.cudaStatus();
  if (!emulated && !cuda.available) {
    console.error(`no CUDA here: ${cuda.reason}; to fix: ${cuda.fix}`);
    process.exit(3);
  }
  const info = addon().cudaDriver();
  const gpu = emulated
    ? {
        index: 0,
        name: 'the emulated device (CPU)',
        computeCapability: '0.0',
        memoryBytes: 0,
        multiprocessors: 0,
        clockKHz: 0,
        memoryClockKHz: 0,
        memoryBusBits: 0,
        pciBusId: '',
      }
    : info.driver.devices[0];
  const onDevice = emulated ? { kernel: 'cuda-emulated' } : { device: 'cuda' };
  const peak = gpuPeak(gpu);
  const C = w.channels;
  const classes = 12;
  const head = { weight: randoms(classes * C, 30, 0.3), bias: randoms(classes, 31, 0.3) };
  console.log(
    `CReFF C=${C} K=${w.window} on ${gpu.name} (compute capability ${gpu.computeCapability}, driver ${info.driver.version}, ` +
      `kernels built with CUDA ${info.build.runtime}); peaks from the driver: ${peak.fp32Flops ? (peak.fp32Flops / 1e12).toFixed(1) + ' TFLOP/s FP32' : 'FP32 unknown'}, ` +
      `${peak.bandwidth ? (peak.bandwidth / 1e9).toFixed(0) + ' GB/s' : 'bandwidth unknown'} (${peak.how}); ${rounds} rounds (median)`,
  );
  const rows = [];
  console.log(
    '| size | CUDA kernel ms | GB/s (of peak) | GFLOP/s (of peak) | device path: fused frame to labels, ms | max / mean abs diff from the CPU kernel |',
  );
  console.log('|---|---|---|---|---|---|');
  for (const [H, W] of sizes) {
    const { h, wl, lr, key, motion } = problemAt(C, H, W);
    const cpu = await creff.run(lr, await creff.prepareKeyframe(key), motion);
    const first = await creff.run(lr, key, motion, onDevice);
    const ms = [];
    for (let r = 0; r < rounds; r++) ms.push((await creff.run(lr, key, motion, onDevice)).milliseconds);
    const kernelMs = median(ms);
    const flops = creffFlops(C, H, W, w.window);
    const bytes = 4 * (C * h * wl + C * H * W + 2 * H * W + C * H * W);
    const path = new (addon().NativeDevicePath)({
      backend,
      creff: creff.nativeHandle(),
      channels: C,
      headWeight: head.weight,
      headBias: head.bias,
    });
    await path.labels(key.data, H, W, { outHeight: H, outWidth: W, keyframe: 'exact' });
    const fuseMs = [];
    for (let r = 0; r < rounds + 1; r++) {
      const res = await path.fuse(lr.data, h, wl, motion.data, { outHeight: H, outWidth: W });
      if (r > 0) fuseMs.push(res.milliseconds);
    }
    path.dropKeyframe();
    const row = {
      height: H,
      width: W,
      channels: C,
      window: w.window,
      kernelMs,
      bytes,
      flops,
      bandwidth: bytes / (kernelMs / 1e3),
      flopRate: flops / (kernelMs / 1e3),
      peakBandwidth: peak.bandwidth,
      peakFlops: peak.fp32Flops,
      devicePathFuseMs: median(fuseMs),
      maxAbsDiff: Math.max(...first.data.map((v, i) => Math.abs(v - cpu.data[i]))),
    };
    rows.push(row);
    const pct = (x, p) => (p ? ` (${((100 * x) / p).toFixed(1)}%)` : '');
    console.log(
      `| ${H}x${W} | ${kernelMs.toFixed(3)} | ${(row.bandwidth / 1e9).toFixed(1)}${pct(row.bandwidth, peak.bandwidth)} | ` +
        `${(row.flopRate / 1e9).toFixed(0)}${pct(row.flopRate, peak.fp32Flops)} | ${row.devicePathFuseMs.toFixed(3)} | ${diff(first.data, cpu.data)} |`,
    );
  }
  if (jsonOut)
    fs.writeFileSync(
      jsonOut,
      JSON.stringify(
        { backend, gpu, driver: info.driver.version, cudaRuntime: info.build.runtime, peak, rounds, rows },
        null,
        2,
      ),
    );
}

(async () => {
  if (device === 'cuda' || device === 'cuda-emulated') return cudaBench(device);
  if (device !== 'cpu') throw new Error('--device must be cpu, cuda or cuda-emulated');
  const C = w.channels;
  const session = await ort.InferenceSession.create(model, {
    intraOpNumThreads: os.cpus().length,
    graphOptimizationLevel: 'all',
  });
  const cuda = CReFF.cudaStatus();
  console.log(
    `CReFF C=${C} K=${w.window}, ${rounds} rounds (median), threads: all ${os.cpus().length} cores; CUDA: ${cuda.available ? 'yes' : cuda.reason}`,
  );
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
      [
        'fused CPU (prepared, output buffer reused)',
        () => creff.run(lr, prepared, motion, { output: reused }).then((r) => r.data),
      ],
      ['ONNX Runtime graph (CPU)', () => session.run(feeds).then((r) => r.fused.data)],
    ];
    if (withReference)
      configs.push(['reference kernel', () => creff.run(lr, key, motion, { kernel: 'reference' }).then((r) => r.data)]);
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
      console.log(
        `| ${name} | ${ms.toFixed(1)} | ${(flops / ms / 1e6).toFixed(1)} | ${(ms / fusedMs).toFixed(2)}x | ${diff(outputs[i], outputs[0])} |`,
      );
    });
    if (cuda.available) {
      const gpu = await creff.run(lr, key, motion, { device: 'cuda' });
      const ms = [];
      for (let r = 0; r < rounds; r++) ms.push((await creff.run(lr, key, motion, { device: 'cuda' })).milliseconds);
      console.log(
        `| CUDA kernel (device time) | ${median(ms).toFixed(3)} | ${(flops / median(ms) / 1e6).toFixed(1)} | | ${diff(gpu.data, outputs[0])} |`,
      );
    }
  }
})().catch((err) => {
  console.error(err);
  process.exit(1);
});
