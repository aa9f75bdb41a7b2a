'use strict';
// Interlaced video (H.264 MBAFF from x264 --interlaced, of content whose bottom field is half a
// frame later than its top field: test/fixtures/README.md, h264-mbaff.mp4). Field macroblocks'
// vectors are in field lines and may point into the opposite field, half a frame away, so
// composing them as frame motion would be silently wrong: motion is refused with a coded
// error; decoding, and the raw vectors, still work.
const test = require('ava');
const { openVideo } = require('../dist');
const { fixture, meta, collect } = require('./helpers/fixtures');

const FILE = fixture('h264-mbaff.mp4');

test('motion on an interlaced stream fails with ERR_NO_MOTION_VECTORS before any frame', async (t) => {
  for (const motion of ['accumulated', 'reference']) {
    for (const composition of ['bilinear', 'official']) {
      const reader = openVideo(FILE, { motion, composition });
      const err = await t.throwsAsync(collect(reader), { code: 'ERR_NO_MOTION_VECTORS' });
      t.regex(err.message, /interlaced/);
      t.is(err.framesDecoded, 0);
    }
  }
});

test('an interlaced stream decodes without motion, and its raw vectors are exported', async (t) => {
  const frames = await collect(openVideo(FILE, { vectors: true, rgb: true }));
  t.is(frames.length, meta['h264-mbaff.mp4'].frames);
  t.false(frames.some((f) => f.corrupt));
  const p = frames.filter((f) => f.pictType === 'P');
  t.true(p.length > 0 && p.every((f) => f.vectors.length > 0));
  // Why motion is refused: as frame motion the vectors are wrong. The clip moves by exactly
  // (2.25, -1.5) per frame, yet many vertical components differ from -1.5 (field units, and
  // fields half a frame apart).
  let off = 0;
  let all = 0;
  for (const f of p)
    for (let r = 0; r < f.vectors.length / 10; r++) {
      all++;
      if (Math.abs(f.vectors[r * 10 + 8] / f.vectors[r * 10 + 9] + 1.5) >= 0.25) off++;
    }
  t.true(off / all > 0.2, `${off} of ${all} vectors are off the frame motion`);
});
