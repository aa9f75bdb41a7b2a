'use strict';
// releaseMotion (lib/recycle.ts): a frame's motion arrays handed back before a garbage collection.
// The storage must come back at once, later frames must read exactly what a first reading gave
// on that reused storage, and nothing that is still in use (a caller's own array, an array a
// pending CReFF run reads) may be handed over.
const fs = require('node:fs');
const test = require('ava');
const { openVideo, createPacketReader, releaseMotion, CReFF } = require('../dist');
const { addon } = require('../dist/native');
const { fixture } = require('./helpers/fixtures');
const { randoms } = require('./helpers/random');

const OPTIONS = { vectors: true, motion: 'accumulated', stride: 8 };
const nextTurn = () => new Promise((resolve) => setImmediate(resolve)); // the buffers' finalisers run

function snapshot(f) {
  return {
    index: f.index,
    vectors: Array.from(f.vectors),
    vectorRefs: Array.from(f.vectorRefs),
    motion: Array.from(f.motion.data),
    motionSize: [f.motion.width, f.motion.height],
  };
}

for (const name of ['translate-b.mp4', 'x265-default.mp4']) {
  test(`${name}: releasing every frame gives what a first reading gave`, async (t) => {
    const first = [];
    for await (const f of openVideo(fixture(name), OPTIONS)) first.push(snapshot(f));
    t.true(first.length >= 24);
    let i = 0;
    let returned = 0;
    for await (const f of openVideo(fixture(name), OPTIONS)) {
      const got = snapshot(f);
      // A recycled array that kept its old elements would be longer, or hold another frame's.
      t.deepEqual(got, first[i++], `frame ${got.index}`);
      const arrays = [f.vectors, f.vectorRefs, f.motion.data];
      const before = addon().recycledStorageBytes();
      releaseMotion(f);
      t.false('vectors' in f || 'vectorRefs' in f || 'motion' in f, 'the frame no longer has them');
      for (const a of arrays) t.is(a.length, 0, 'a kept reference sees an empty (detached) array');
      await nextTurn();
      if (addon().recycledStorageBytes() > before) returned++;
    }
    t.is(i, first.length);
    // Every frame with any vectors hands storage back (the pool's size also falls as the reader
    // takes from it, so not necessarily at every frame): most do.
    t.true(returned >= first.length / 2, `storage came back after ${returned} of ${first.length} frames`);
  });
}

test('the storage is back in the pool after one turn, without a garbage collection', async (t) => {
  const reader = openVideo(fixture('translate-b.mp4'), { ...OPTIONS, ahead: 1 });
  await reader.read(); // the keyframe
  const frame = await reader.read();
  const bytes = frame.vectors.byteLength + frame.vectorRefs.byteLength + frame.motion.data.byteLength;
  t.true(bytes > 0);
  // Decoding ahead takes from the pool: wait for it to settle before measuring.
  await new Promise((resolve) => setTimeout(resolve, 200));
  const before = addon().recycledStorageBytes();
  releaseMotion(frame);
  await nextTurn();
  const after = addon().recycledStorageBytes();
  reader.close();
  // The pool holds capacities, at least the arrays' lengths.
  t.true(after - before >= bytes, `pool grew by ${after - before} bytes for ${bytes} bytes of arrays`);
});

test('a frame without motion, or released twice, is left as it is', async (t) => {
  const [plain] = await firstFrames('translate-b.mp4', {}, 1);
  t.notThrows(() => releaseMotion(plain));
  t.is(plain.index, 0);
  const [, second] = await firstFrames('translate-b.mp4', OPTIONS, 2);
  releaseMotion(second);
  t.notThrows(() => releaseMotion(second));
});

test("a caller's own arrays are never detached", (t) => {
  const vectors = new Int32Array(10).fill(7);
  const data = new Float32Array(8).fill(1.5);
  const frame = { index: 3, vectors, vectorRefs: new Int32Array(1), motion: { data, width: 2, height: 2, stride: 8 } };
  releaseMotion(frame);
  t.is(vectors.length, 10);
  t.is(vectors[9], 7);
  t.is(data[7], 1.5);
  t.is(addon().recycleArrays([vectors, data, new Uint8Array(4)]), 0, 'untagged buffers are skipped');
});

test('bad arguments fail with ERR_INVALID_ARG', (t) => {
  t.throws(() => releaseMotion(null), { code: 'ERR_INVALID_ARG' });
  t.throws(() => releaseMotion(7), { code: 'ERR_INVALID_ARG' });
  t.throws(() => addon().recycleArrays('vectors'), { code: 'ERR_INVALID_ARG' });
  t.throws(() => addon().recycleArrays(), { code: 'ERR_INVALID_ARG' });
  t.is(addon().recycleArrays([null, 1, 'x', {}]), 0, 'what is not a typed array is skipped');
});

test('packet reader frames are released the same way', async (t) => {
  const decoder = createPacketReader({ codec: 'h264', ...OPTIONS });
  const frames = [...(await decoder.decode(fs.readFileSync(fixture('translate-p.h264')))), ...(await decoder.flush())];
  decoder.close();
  t.true(frames.length > 2);
  const f = frames[2];
  const motion = f.motion.data;
  t.true(motion.length > 0);
  releaseMotion(f);
  t.is(motion.length, 0);
});

test('ERR_BUSY while a CReFF run reads the motion; released after it settles', async (t) => {
  const [, frame] = await firstFrames('translate-b.mp4', OPTIONS, 2);
  const { width: W, height: H, data: motion } = frame.motion;
  const C = 8;
  const conv = (s) => ({ weight: randoms(C * 9, s, 1 / 3), bias: randoms(C, s + 1, 1 / 3) });
  const creff = new CReFF({ channels: C, window: 3, q: conv(1), k: conv(3), v: conv(5) });
  const lr = {
    data: randoms(C * Math.ceil(H / 2) * Math.ceil(W / 2), 7, 1),
    dims: [1, C, Math.ceil(H / 2), Math.ceil(W / 2)],
  };
  const key = { data: randoms(C * H * W, 8, 1), dims: [1, C, H, W] };
  const expected = await creff.run(lr, key, { data: Float32Array.from(motion), dims: [2, H, W] });
  const pending = creff.run(lr, key, { data: motion, dims: [2, H, W] });
  const error = t.throws(() => releaseMotion(frame), { code: 'ERR_BUSY' });
  t.regex(error.message, /frame 1/);
  t.true('motion' in frame && 'vectors' in frame, 'nothing released');
  t.is(motion.length, 2 * H * W);
  const result = await pending;
  t.deepEqual(Array.from(result.data), Array.from(expected.data), 'the run read the motion intact');
  t.notThrows(() => releaseMotion(frame));
  t.is(motion.length, 0);
});

async function firstFrames(name, options, count) {
  const reader = openVideo(fixture(name), options);
  const frames = [];
  for (let i = 0; i < count; i++) frames.push(await reader.read());
  reader.close();
  return frames;
}
