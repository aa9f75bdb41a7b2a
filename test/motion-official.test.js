'use strict';
// The official AR-Seg motion composition (composition: 'official', keyframe_composer.h) against
// a transcription of the official code's mergeMotion run on the same vectors
// (python/tools/merge_motion_golden.py, golden files in test/fixtures/official/): the integer
// fields must be equal, pixel for pixel.
const fs = require('node:fs');
const path = require('node:path');
const test = require('ava');
const { openVideo, libavVersions } = require('../dist');
const { fixture, collect, readNpy, FIXTURES } = require('./helpers/fixtures');

const GOLDEN = path.join(FIXTURES, 'official');

/** .npy int16 (the golden's dtype), as Int16Array. */
function readInt16(file) {
  const buf = fs.readFileSync(file);
  const headerLen = buf.readUInt16LE(8);
  const header = buf.toString('latin1', 10, 10 + headerLen);
  if (!header.includes("'<i2'")) throw new Error(`${file}: not int16`);
  const shape = /'shape': \(([^)]*)\)/
    .exec(header)[1]
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map(Number);
  return { shape, data: new Int16Array(new Uint8Array(buf.subarray(10 + headerLen)).buffer) };
}

const exactBuild = Boolean(libavVersions().exactReferences);

test('official composition equals the transcription of mergeMotion, pixel for pixel', async (t) => {
  if (!exactBuild) {
    t.log('skipped: HEVC vectors need the patched libav (scripts/build-libav.sh); this build has the system one');
    t.pass();
    return;
  }
  const frames = await collect(
    openVideo(fixture('hevc-zoom.mp4'), { vectors: true, motion: 'accumulated', composition: 'official', stride: 1 }),
  );
  const goldenFrames = fs.readdirSync(GOLDEN).filter((f) => /^golden-\d+\.npy$/.test(f)).length;
  t.true(goldenFrames >= 11, `${goldenFrames} golden frames`);
  for (let i = 1; i <= goldenFrames; i++) {
    const f = frames[i];
    t.is(f.keyframeIndex, 0);
    // The transcription's input is what this decoder exports: check it has not changed.
    t.deepEqual(
      Array.from(f.vectors),
      Array.from(readNpy(path.join(GOLDEN, `vectors-${i}.npy`)).data),
      `frame ${i} vectors`,
    );
    t.deepEqual(
      Array.from(f.vectorRefs),
      Array.from(readNpy(path.join(GOLDEN, `refs-${i}.npy`)).data),
      `frame ${i} references`,
    );
    const golden = readInt16(path.join(GOLDEN, `golden-${i}.npy`));
    const [h, w] = golden.shape;
    t.is(f.motion.width, w);
    t.is(f.motion.height, h);
    const n = w * h;
    let differ = 0;
    for (let p = 0; p < n; p++) {
      // golden: H x W x 2 quarter pixels (x, y); ours: 2 x H x W whole pixels
      if (golden.data[2 * p] !== 4 * f.motion.data[p] || golden.data[2 * p + 1] !== 4 * f.motion.data[n + p]) differ++;
    }
    t.is(differ, 0, `frame ${i}: ${differ} of ${n} pixels differ`);
  }
});

test('official composition at a stride takes the pixel at each cell centre', async (t) => {
  const file = fixture(exactBuild ? 'hevc-zoom.mp4' : 'zoom.mp4');
  const full = await collect(openVideo(file, { motion: 'accumulated', composition: 'official', stride: 1 }));
  const coarse = await collect(openVideo(file, { motion: 'accumulated', composition: 'official', stride: 8 }));
  for (let i = 0; i < full.length; i++) {
    const a = full[i].motion,
      b = coarse[i].motion;
    for (let r = 0; r < b.height; r++)
      for (let c = 0; c < b.width; c++) {
        const y = Math.min(r * 8 + 3, a.height - 1),
          x = Math.min(c * 8 + 3, a.width - 1);
        t.is(b.data[r * b.width + c], a.data[y * a.width + x]);
        t.is(b.data[b.width * b.height + r * b.width + c], a.data[a.width * a.height + y * a.width + x]);
      }
  }
});
