'use strict';
// The packet API: Annex-B bytes in arbitrary chunks give the same frames as the file reader.
const fs = require('node:fs');
const test = require('ava');
const { openVideo, createPacketReader } = require('../dist');
const { fixture, collect } = require('./helpers/fixtures');

const stream = fs.readFileSync(fixture('translate-p.h264'));

function chunks(bytes, seed) {
  // deterministic chunk sizes from 1 byte to 4 KiB, not aligned to NAL units
  const out = [];
  let x = seed;
  for (let at = 0; at < bytes.length;) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    const n = 1 + (x % 4096);
    out.push(bytes.subarray(at, at + n));
    at += n;
  }
  return out;
}

async function decodeAll(decoder, parts) {
  const frames = [];
  for (const part of parts) frames.push(...(await decoder.decode(part)));
  frames.push(...(await decoder.flush()));
  return frames;
}

test('chunked Annex-B H.264 decodes to the same frames, vectors and motion as the file', async (t) => {
  const opts = { vectors: true, motion: 'accumulated', stride: 8, rgb: true };
  const expected = await collect(openVideo(fixture('translate-p.h264'), opts));
  t.is(expected.length, 36);
  for (const seed of [1, 2]) {
    const decoder = createPacketReader({ codec: 'h264', ...opts });
    const frames = await decodeAll(decoder, chunks(stream, seed));
    decoder.close();
    t.is(frames.length, expected.length);
    frames.forEach((f, i) => {
      t.is(f.index, i);
      t.is(f.pictType, expected[i].pictType);
      t.is(f.isKeyframe, expected[i].isKeyframe);
      t.deepEqual(Array.from(f.vectors), Array.from(expected[i].vectors));
      t.deepEqual(Array.from(f.motion.data), Array.from(expected[i].motion.data));
      t.true(Buffer.from(f.rgb).equals(Buffer.from(expected[i].rgb)));
    });
  }
});

test('calls may overlap without awaiting: they run in order', async (t) => {
  const decoder = createPacketReader({ codec: 'h264' });
  const pending = chunks(stream, 3).map((c) => decoder.decode(c));
  pending.push(decoder.flush());
  const frames = (await Promise.all(pending)).flat();
  t.deepEqual(
    frames.map((f) => f.index),
    [...Array(36).keys()],
  );
  decoder.close();
});

test('pts given with a chunk stamps the frames it starts', async (t) => {
  const decoder = createPacketReader({ codec: 'h264' });
  // one whole stream per call: the first packet gets pts 5.0
  const frames = [...(await decoder.decode(stream, 5)), ...(await decoder.flush())];
  t.is(frames[0].pts, 5);
  decoder.close();
});

test('bytes that hold no picture give no frames and no error', async (t) => {
  const decoder = createPacketReader({ codec: 'mpeg2video', vectors: true });
  const frames = [...(await decoder.decode(Buffer.from('not a bitstream at all'))), ...(await decoder.flush())];
  t.is(frames.length, 0);
});

test('packet decoder errors are coded', async (t) => {
  t.throws(() => createPacketReader(), { code: 'ERR_INVALID_ARG' });
  t.throws(() => createPacketReader({}), { code: 'ERR_INVALID_ARG' });
  t.throws(() => createPacketReader({ codec: 'nosuchcodec' }), { code: 'ERR_UNSUPPORTED_CODEC' });
  t.throws(() => createPacketReader({ codec: 'aac' }), { code: 'ERR_UNSUPPORTED_CODEC' });
  t.throws(() => createPacketReader({ codec: 'vp9', motion: 'accumulated', motionSource: 'bitstream' }), {
    code: 'ERR_NO_MOTION_VECTORS',
  });
  t.throws(() => createPacketReader({ codec: 'vp9', motion: 'accumulated', motionSource: 'vectors' }), {
    code: 'ERR_INVALID_ARG',
  });
  const vp9 = createPacketReader({ codec: 'vp9', motion: 'accumulated' }); // estimated instead
  t.is(vp9.motionSource, 'estimated');
  vp9.close();
  t.throws(() => createPacketReader({ codec: 'h264', stride: -1 }), { code: 'ERR_INVALID_ARG' });
  const decoder = createPacketReader({ codec: 'h264' });
  await t.throwsAsync(decoder.decode('bytes'), { code: 'ERR_INVALID_ARG' });
  await t.throwsAsync(decoder.decode(new Float32Array(4)), { code: 'ERR_INVALID_ARG' });
  await t.throwsAsync(decoder.decode(new Uint8Array(4), Infinity), { code: 'ERR_INVALID_ARG' });
  await decoder.flush();
  await t.throwsAsync(decoder.decode(new Uint8Array(4)), { code: 'ERR_CLOSED' });
  decoder.close();
  await t.throwsAsync(decoder.flush(), { code: 'ERR_CLOSED' });
});

test('waitForKeyframe: a stream joined mid-GOP starts at its next keyframe; the packets before it are counted, not errors', async (t) => {
  const { splitAccessUnits } = require('./helpers/annexb');
  const units = splitAccessUnits(stream);
  const file = await collect(openVideo(fixture('translate-p.h264'), { motion: 'accumulated', stride: 8 }));
  for (const [waitForKeyframe, accessUnits] of [
    [true, true],
    [true, false],
  ]) {
    const decoder = createPacketReader({
      codec: 'h264',
      motion: 'accumulated',
      stride: 8,
      waitForKeyframe,
      accessUnits,
    });
    const frames = await decodeAll(decoder, units.slice(5));
    t.is(frames.length, 24);
    t.is(frames[0].pictType, 'I');
    t.is(frames[0].index, 0);
    t.deepEqual(decoder.stats(), { decodeErrors: 0, skippedBeforeKeyframe: 7 });
    // from there on, the same frames as the file from its second keyframe
    for (let i = 0; i < 24; i++) t.deepEqual(frames[i].motion.data, file[12 + i].motion.data, `frame ${i}`);
    decoder.close();
  }
  t.throws(() => createPacketReader({ codec: 'h264', waitForKeyframe: 1 }), { code: 'ERR_INVALID_ARG' });
  t.throws(() => createPacketReader({ codec: 'h264', accessUnits: 'yes' }), { code: 'ERR_INVALID_ARG' });
});

test('accessUnits: each access unit gives its frame at once, not when the next one starts', async (t) => {
  const { splitAccessUnits } = require('./helpers/annexb');
  const units = splitAccessUnits(stream);
  for (const accessUnits of [false, true]) {
    const decoder = createPacketReader({ codec: 'h264', accessUnits });
    const counts = [];
    for (const u of units.slice(0, 6)) counts.push((await decoder.decode(u)).length);
    if (accessUnits) t.deepEqual(counts, [1, 1, 1, 1, 1, 1]);
    else t.is(counts[0], 0, 'the parser holds a unit until the next one starts');
    decoder.close();
  }
});
