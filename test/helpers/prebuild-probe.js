'use strict';
// Run in a child process by test/prebuild-install.test.js, once in a project that installed the
// packed tarball and once against the repository's from-source build:
//   node prebuild-probe.js PACKAGE_DIR CLIP BUNDLE LABELS_OUT
// loads ar-seg-native from PACKAGE_DIR, segments CLIP (mode 'ar', CPU), writes every frame's
// labels one after the other to LABELS_OUT, runs the CReFF CUDA kernel against the CPU one when
// a GPU is usable, and prints a JSON report: which .node files the process loaded (require.cache
// and /proc/self/maps), the frames, the libav and CUDA status.
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');

const [pkgDir, clip, bundle, labelsOut] = process.argv.slice(2);

/** Deterministic values in [-1, 1) (xorshift32): the same inputs for both kernels. */
function randomArray(n, seed) {
  const a = new Float32Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    a[i] = ((s >>> 0) / 2 ** 32) * 2 - 1;
  }
  return a;
}

async function cudaAgainstCpu(arseg) {
  const status = arseg.CReFF.cudaStatus();
  if (!status.available) return { available: false, reason: status.reason };
  const C = 16;
  const K = 7;
  const [H, W, h, w] = [48, 64, 24, 32];
  const conv = (seed) => ({
    weight: randomArray(C * 9, seed).map((x) => x * 0.3),
    bias: randomArray(C, seed + 1).map((x) => x * 0.1),
  });
  const creff = new arseg.CReFF({ channels: C, window: K, q: conv(11), k: conv(21), v: conv(31) });
  const lr = { data: randomArray(C * h * w, 41), dims: [1, C, h, w] };
  const key = { data: randomArray(C * H * W, 51), dims: [1, C, H, W] };
  const motion = { data: randomArray(2 * H * W, 61).map((x) => x * 6), dims: [2, H, W] };
  const cpu = await creff.run(lr, key, motion, { device: 'cpu' });
  const gpu = await creff.run(lr, key, motion, { device: 'cuda' });
  let maxAbsDiff = 0;
  for (let i = 0; i < cpu.data.length; i++) maxAbsDiff = Math.max(maxAbsDiff, Math.abs(cpu.data[i] - gpu.data[i]));
  // The device path of the packed install: keyframe kept on the GPU, a fused frame to labels,
  // against the CPU's head and labels of the CPU's fused feature.
  const { addon } = require(path.join(pkgDir, 'dist', 'native'));
  const classes = 8;
  const headWeight = randomArray(classes * C, 71).map((x) => x * 0.5);
  const headBias = randomArray(classes, 81).map((x) => x * 0.2);
  const dp = new (addon().NativeDevicePath)({
    backend: 'cuda',
    creff: creff.nativeHandle(),
    channels: C,
    headWeight,
    headBias,
  });
  const out = { outHeight: 2 * H, outWidth: 2 * W };
  await dp.labels(key.data, H, W, { ...out, keyframe: 'exact' });
  const fused = await dp.fuse(lr.data, h, w, motion.data, { ...out, logits: true });
  const cpuLogits = await addon().pointwiseHead(cpu.data, C, H, W, headWeight, headBias, classes);
  const cpuLabels = await addon().labelsFromLogits(cpuLogits, classes, H, W, out.outHeight, out.outWidth);
  const ownLabels = await addon().labelsFromLogits(fused.logits, classes, H, W, out.outHeight, out.outWidth);
  let labelsDiffer = 0;
  for (let i = 0; i < cpuLabels.length; i++) labelsDiffer += cpuLabels[i] !== fused.labels[i];
  const devicePath = {
    labelsDiffer,
    pixels: cpuLabels.length,
    sameAsOwnLogits: Buffer.compare(Buffer.from(ownLabels), Buffer.from(fused.labels)) === 0,
  };
  return { available: true, reason: status.reason, shape: [C, H, W, K], maxAbsDiff, devicePath };
}

async function main() {
  const arseg = require(pkgDir);
  const seg = await arseg.ArSeg.load(bundle, { device: 'cpu' });
  const frames = [];
  const hash = crypto.createHash('sha256');
  const out = fs.openSync(labelsOut, 'w');
  try {
    for await (const r of seg.segment(clip, { mode: 'ar' })) {
      const bytes = Buffer.from(r.labels.buffer, r.labels.byteOffset, r.labels.byteLength);
      fs.writeSync(out, bytes);
      hash.update(bytes);
      frames.push({ index: r.index, pictType: r.pictType, branch: r.branch, bytes: bytes.length });
    }
  } finally {
    fs.closeSync(out);
    await seg.close();
  }
  const loaded = Object.keys(require.cache).filter((f) => f.endsWith('.node'));
  const maps = [
    ...new Set(
      fs
        .readFileSync('/proc/self/maps', 'utf8')
        .split('\n')
        .map((line) => line.trim().split(/\s+/).slice(5).join(' '))
        .filter((p) => p.endsWith('.node')),
    ),
  ];
  const report = {
    loaded,
    maps,
    frames,
    labelsSha256: hash.digest('hex'),
    libav: arseg.libavVersions(),
    cuda: await cudaAgainstCpu(arseg),
  };
  process.stdout.write(JSON.stringify(report) + '\n');
}

main().catch((err) => {
  console.error(err && err.stack ? err.stack : String(err));
  process.exit(1);
});
