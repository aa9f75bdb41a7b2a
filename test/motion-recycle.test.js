'use strict';
// The per-frame motion arrays (vectors, vectorRefs, motion.data) reuse the storage of earlier
// frames' arrays once JavaScript has let go of them (native/common/recycled_storage.h). Reading
// with a garbage collection after every frame, so that each frame's arrays come from recycled
// storage, must give exactly what a first reading gave: the same lengths, the same values.
const v8 = require('node:v8');
const vm = require('node:vm');
const test = require('ava');
const { openVideo } = require('../dist');
const { fixture } = require('./helpers/fixtures');

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc');

const OPTIONS = { vectors: true, motion: 'accumulated', stride: 8 };

function snapshot(f) {
  return {
    index: f.index,
    vectors: f.vectors ? Array.from(f.vectors) : null,
    vectorRefs: f.vectorRefs ? Array.from(f.vectorRefs) : null,
    motion: f.motion ? Array.from(f.motion.data) : null,
    motionSize: f.motion ? [f.motion.width, f.motion.height] : null,
  };
}

for (const name of ['translate-b.mp4', 'x265-default.mp4']) {
  test(`${name}: arrays on recycled storage equal a first reading`, async (t) => {
    const first = [];
    for await (const f of openVideo(fixture(name), OPTIONS)) first.push(snapshot(f));
    t.true(first.length >= 24);
    for (let pass = 0; pass < 2; pass++) {
      let i = 0;
      for await (const f of openVideo(fixture(name), OPTIONS)) {
        const want = first[i++];
        const got = snapshot(f);
        t.is(got.index, want.index);
        t.deepEqual(got.motionSize, want.motionSize);
        // Lengths first: a recycled array that kept its old elements would be longer.
        t.is(got.motion.length, 2 * want.motionSize[0] * want.motionSize[1], `frame ${got.index}: motion length`);
        t.is(got.vectors.length, want.vectors.length, `frame ${got.index}: vector rows`);
        t.is(got.vectorRefs.length, got.vectors.length / 10, `frame ${got.index}: one reference per row`);
        t.deepEqual(got, want, `frame ${got.index}`);
        gc(); // the arrays of this frame are unreachable now: their storage goes back for later frames
        await new Promise((resolve) => setImmediate(resolve)); // finalisers run
      }
      t.is(i, first.length);
    }
  });
}
