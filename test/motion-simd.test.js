'use strict';
// The composition step of the accumulated field (native/motion/compose_step.cc) is vectorised
// per SIMD level and must give the plain loop's fields bit for bit (native/tests/selftest.cc
// checks that on synthetic grids): here every path this CPU has, capped by ARSEG_SIMD in a
// child process, composes the same streams (P-only, several references, B-pyramids with open
// GOPs, zoom, HEVC) to byte-identical fields, keyframes and vectors.
const path = require('node:path');
const { execFileSync } = require('node:child_process');
const test = require('ava');
const { libavVersions } = require('../dist');
const { fixture } = require('./helpers/fixtures');

const FILES = ['translate-p.mp4', 'translate-refs.mp4', 'x264-default.mp4', 'zoom.mp4', 'mpeg4.mp4'];
if (libavVersions().exactReferences) FILES.push('x265-default.mp4', 'hevc-zoom.mp4');
// Strides around the vector widths, the official composition (per pixel), adaptive keyframes
// (keyframes inside a chain: the solve against a keyframe field).
// motionFill 'none': the motion fill's estimates are not bit-identical across SIMD levels (the
// estimator is checked against its plain reference within a tolerance, estimator.test.js).
const CONFIGS = [
  { motion: 'accumulated', stride: 8, vectors: true, motionFill: 'none' },
  { motion: 'accumulated', stride: 3, motionFill: 'none' },
  {
    motion: 'accumulated',
    stride: 5,
    keyframes: { policy: 'adaptive', maxInterval: 5, maxMotion: 3 },
    motionFill: 'none',
  },
  { motion: 'accumulated', stride: 4, composition: 'official' },
];

const script = `
  const crypto = require('node:crypto');
  const { openVideo } = require(${JSON.stringify(path.join(__dirname, '..', 'dist'))});
  const { addon } = require(${JSON.stringify(path.join(__dirname, '..', 'dist', 'native'))});
  (async () => {
    const out = {};
    for (const file of ${JSON.stringify(FILES.map(fixture))}) {
      for (const [i, options] of ${JSON.stringify(CONFIGS)}.entries()) {
        const h = crypto.createHash('sha256');
        let frames = 0, moving = 0;
        for await (const f of openVideo(file, options)) {
          frames++;
          h.update(f.index + ' ' + f.keyframeIndex + ' ' + f.motion.width + 'x' + f.motion.height + ';');
          h.update(new Uint8Array(f.motion.data.buffer, f.motion.data.byteOffset, f.motion.data.byteLength));
          if (f.vectors) h.update(new Uint8Array(f.vectorRefs.buffer));
          if (f.motion.data.some((v) => v !== 0)) moving++;
        }
        out[require('node:path').basename(file) + ' #' + i] = { frames, moving, hash: h.digest('hex') };
      }
    }
    process.stdout.write(JSON.stringify({ level: addon().simdLevel(), out }));
  })().catch((err) => { console.error(err); process.exit(1); });`;

function run(level) {
  const env = { ...process.env, ARSEG_SIMD: level };
  return JSON.parse(execFileSync(process.execPath, ['-e', script], { env, maxBuffer: 1 << 26 }).toString());
}

test('every SIMD path composes the same accumulated fields', (t) => {
  const best = run('');
  const avx2 = run('avx2');
  const baseline = run('baseline');
  t.is(baseline.level, 'baseline');
  t.log(`levels run: ${[best.level, avx2.level, baseline.level].join(', ')}`);
  t.is(Object.keys(best.out).length, FILES.length * CONFIGS.length);
  for (const [key, r] of Object.entries(baseline.out)) {
    t.true(r.frames >= 12, key);
    t.true(r.moving >= r.frames / 2, `${key}: the fields hold motion`);
    t.deepEqual(best.out[key], r, `${key}: ${best.level} and baseline`);
    t.deepEqual(avx2.out[key], r, `${key}: ${avx2.level} and baseline`);
  }
});
