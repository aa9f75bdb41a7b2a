'use strict';
// Reaching older keyframes: composeMotion against a plain reference, and the keyframe table's
// bridges on a stream whose motion is known (translate-p: content moves by d per frame).
const test = require('ava');
const { composeMotion, sampleMotion, openVideo, ErrorCodes } = require('../dist');
const { KeyframeTable } = require('../dist/keyframe-table');
const { fixture, collect } = require('./helpers/fixtures');
const { randoms } = require('./helpers/random');

let seed = 1;
function randomField(width, height, stride, scale) {
  return { data: randoms(2 * width * height, seed++, scale), width, height, stride, mode: 'accumulated' };
}

test('composeMotion is first(p) + second(p + first(p)), sampled as sampleMotion samples', (t) => {
  for (const [w, h, stride] of [
    [24, 16, 8],
    [7, 5, 4],
    [1, 1, 16],
  ]) {
    const a = randomField(w, h, stride, 3 * stride);
    const b = randomField(w, h, stride, 2 * stride);
    const c = composeMotion(a, b);
    t.is(c.width, w);
    t.is(c.stride, stride);
    const plane = w * h;
    let worst = 0;
    for (let i = 0; i < h; i++)
      for (let j = 0; j < w; j++) {
        const k = i * w + j;
        const x = j * stride + (stride - 1) / 2;
        const y = i * stride + (stride - 1) / 2;
        const [bx, by] = sampleMotion(b, x + a.data[k], y + a.data[plane + k]);
        worst = Math.max(
          worst,
          Math.abs(c.data[k] - (a.data[k] + bx)),
          Math.abs(c.data[plane + k] - (a.data[plane + k] + by)),
        );
      }
    t.true(worst < 1e-4, `${w}x${h}/${stride}: off by ${worst}`);
  }
});

test('composeMotion: zero fields compose to the other; grids must match', (t) => {
  const a = randomField(6, 4, 8, 10);
  const zero = { data: new Float32Array(48), width: 6, height: 4, stride: 8, mode: 'accumulated' };
  t.deepEqual(composeMotion(a, zero).data, a.data);
  // a constant second field is added wherever the first lands (clamped at the border)
  const shift = { data: new Float32Array(48).fill(2.5), width: 6, height: 4, stride: 8, mode: 'accumulated' };
  const c = composeMotion(a, shift);
  for (let i = 0; i < 48; i++) t.true(Math.abs(c.data[i] - (a.data[i] + 2.5)) < 1e-5);
  const err = t.throws(() => composeMotion(a, { ...zero, width: 5, data: new Float32Array(40) }));
  t.is(err.code, ErrorCodes.SHAPE);
});

/** Median of the interior cells of one plane. */
function interiorMedian(field, plane, margin = 3) {
  const values = [];
  for (let i = margin; i < field.height - margin; i++)
    for (let j = margin; j < field.width - margin; j++)
      values.push(field.data[plane * field.width * field.height + i * field.width + j]);
  values.sort((a, b) => a - b);
  return values[values.length >> 1];
}

test('a frame reaches the keyframe before its own across an I-frame: its field plus the bridge (the frame before the keyframe), one step short', async (t) => {
  // translate-p: GOP 12, I-frames at 0, 12, 24; frame f matches frame f-1 at p + d, d = (2.25, -1.5).
  const frames = await collect(openVideo(fixture('translate-p.h264'), { motion: 'accumulated', stride: 8 }));
  const table = new KeyframeTable();
  for (const f of frames) table.observe(f);
  t.is(table.size, 3);
  table.setReady(0, { feature: { data: new Float32Array(1), dims: [1, 1, 1, 1] }, prepared: null });
  const entry12 = table.get(12);
  t.is(entry12.previous.index, 0);
  t.is(entry12.bridge, frames[11].motion, "keyframe 12's bridge is frame 11's field to keyframe 0");
  for (const f of [12, 15, 20]) {
    const choice = await table.choose(frames[f]);
    t.is(choice.entry.index, 0);
    t.is(choice.distance, f);
    // Exact would be f * d; the step from 12 back to 11 has no vectors (12 is an I-frame) and is taken as still.
    const steps = f - 1;
    t.true(
      Math.abs(interiorMedian(choice.motion, 0) - 2.25 * steps) < 0.6,
      `frame ${f}: dx ${interiorMedian(choice.motion, 0)} vs ${2.25 * steps}`,
    );
    t.true(
      Math.abs(interiorMedian(choice.motion, 1) + 1.5 * steps) < 0.6,
      `frame ${f}: dy ${interiorMedian(choice.motion, 1)} vs ${-1.5 * steps}`,
    );
  }
  // 'zero-motion' keeps the field to the own keyframe; 'lr' declines to cross
  const zero = await table.choose(frames[15], { across: 'zero-motion' });
  t.is(zero.motion, frames[15].motion);
  t.is(await table.choose(frames[15], { across: 'lr' }), null);
  // its own keyframe once ready: the frame's own field, untouched
  table.setReady(12, { feature: { data: new Float32Array(1), dims: [1, 1, 1, 1] }, prepared: null });
  const own = await table.choose(frames[15]);
  t.is(own.entry.index, 12);
  t.is(own.motion, frames[15].motion);
  // never a keyframe later than the frame, even when it is ready
  table.setReady(24, { feature: { data: new Float32Array(1), dims: [1, 1, 1, 1] }, prepared: null });
  t.is((await table.choose(frames[23])).entry.index, 12);
});

test('with a delay, a frame waits for the newest keyframe at least that old, and encoding goes one keyframe at a time', async (t) => {
  const frames = await collect(
    openVideo(fixture('translate-p.h264'), { motion: 'accumulated', stride: 8, tensors: [{ width: 16, height: 16 }] }),
  );
  const started = [];
  const release = new Map();
  const table = new KeyframeTable({
    encode: (entry) => {
      started.push(entry.index);
      return new Promise((resolve) =>
        release.set(entry.index, () =>
          resolve({ feature: { data: new Float32Array([entry.index]), dims: [1, 1, 1, 1] }, prepared: null }),
        ),
      );
    },
  });
  for (const f of frames.slice(0, 16)) table.observe(f);
  t.deepEqual(started, [0], 'one keyframe encodes at a time');
  let settled = false;
  const waiting = table.choose(frames[14], { delay: 2 }).then((c) => ((settled = true), c));
  await new Promise((r) => setTimeout(r, 20));
  t.false(settled, 'frame 14 waits: keyframe 12 serves frames from 14 on');
  release.get(0)();
  await new Promise((r) => setTimeout(r, 20));
  t.deepEqual(started, [0, 12]);
  t.false(settled);
  release.get(12)();
  const c = await waiting;
  t.is(c.entry.index, 12);
  // frame 13 (before 12 + 2) takes keyframe 0 along the bridge
  t.is((await table.choose(frames[13], { delay: 2 })).entry.index, 0);
  // an encoder failure reaches every waiting frame with its code
  const failing = new KeyframeTable({
    encode: () => Promise.reject(Object.assign(new Error('boom'), { code: 'ERR_CUDA' })),
  });
  failing.observe(frames[0]);
  const err = await t.throwsAsync(failing.choose(frames[1], { delay: 0 }));
  t.is(err.code, ErrorCodes.CUDA);
  // close() releases a waiting frame with ERR_CLOSED
  const stuck = new KeyframeTable({ encode: () => new Promise(() => {}) });
  stuck.observe(frames[0]);
  const pending = stuck.choose(frames[2], { delay: 0 });
  stuck.close();
  t.is((await t.throwsAsync(pending)).code, ErrorCodes.CLOSED);
});

test('supersede: a keyframe still waiting when a newer one arrives is skipped', async (t) => {
  const frames = await collect(
    openVideo(fixture('translate-p.h264'), { motion: 'accumulated', stride: 8, tensors: [{ width: 16, height: 16 }] }),
  );
  const started = [];
  const release = [];
  const table = new KeyframeTable({
    supersede: true,
    encode: (entry) => {
      started.push(entry.index);
      return new Promise((resolve) =>
        release.push(() => resolve({ feature: { data: new Float32Array(1), dims: [1, 1, 1, 1] }, prepared: null })),
      );
    },
  });
  for (const f of frames) table.observe(f); // 0 starts; 12 waits; 24 arrives: 12 is skipped
  t.deepEqual(started, [0]);
  release[0]();
  await new Promise((r) => setTimeout(r, 10));
  t.deepEqual(started, [0, 24]);
  t.is(table.get(12).state, 'skipped');
  release[1]();
  await new Promise((r) => setTimeout(r, 10));
  // frame 20 (keyframe 12, skipped) reaches keyframe 0 across 12
  t.is((await table.choose(frames[20])).entry.index, 0);
  t.is((await table.choose(frames[30])).entry.index, 24);
});

test('maxDistance: a frame whose newest ready keyframe is too far back waits for the one being encoded', async (t) => {
  const frames = await collect(
    openVideo(fixture('translate-p.h264'), { motion: 'accumulated', stride: 8, tensors: [{ width: 16, height: 16 }] }),
  );
  const release = new Map();
  const table = new KeyframeTable({
    encode: (entry) =>
      new Promise((resolve) =>
        release.set(entry.index, () =>
          resolve({ feature: { data: new Float32Array(1), dims: [1, 1, 1, 1] }, prepared: null }),
        ),
      ),
  });
  for (const f of frames) table.observe(f);
  const settledFlag = (p) => {
    const state = { done: false };
    p.then(() => (state.done = true));
    return state;
  };
  // none ready yet: frame 2 waits for keyframe 0
  const first = table.choose(frames[2], { maxDistance: 5 });
  const firstState = settledFlag(first);
  await new Promise((r) => setTimeout(r, 20));
  t.false(firstState.done);
  release.get(0)();
  t.is((await first).entry.index, 0);
  // keyframe 0 is 15 frames back from 15: within 20, no wait
  t.is((await table.choose(frames[15], { maxDistance: 20 })).entry.index, 0);
  // 25 frames back from 25: beyond 20, so frame 25 waits for keyframe 24 (after 12)
  const late = table.choose(frames[25], { maxDistance: 20 });
  const lateState = settledFlag(late);
  await new Promise((r) => setTimeout(r, 20));
  t.false(lateState.done);
  release.get(12)();
  await new Promise((r) => setTimeout(r, 20));
  t.false(lateState.done, 'keyframe 12 would be 13 back: it waits for 24, the newest being encoded');
  release.get(24)();
  t.is((await late).entry.index, 24);
  // without a bound it takes what is ready
  t.is((await table.choose(frames[35])).entry.index, 24);
});
