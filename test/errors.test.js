'use strict';
// Bad input gets a clear, coded error, never a crash; damaged streams give what came before.
const fs = require('node:fs');
const path = require('node:path');
const test = require('ava');
const { openVideo, createPacketReader, ArSegError, ErrorCodes } = require('../dist');
const { fixture, tmpDir, collect } = require('./helpers/fixtures');

const dir = tmpDir();
const original = fs.readFileSync(fixture('translate-b.mp4'));

function write(name, bytes) {
  const file = path.join(dir, name);
  fs.writeFileSync(file, bytes);
  return file;
}

function pseudoRandomBytes(n, seed) {
  const out = Buffer.alloc(n);
  let x = seed >>> 0;
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

test('a missing file: ERR_NOT_FOUND, an ArSegError', async (t) => {
  const err = await t.throwsAsync(collect(openVideo(path.join(dir, 'nope.mp4'))), { code: 'ERR_NOT_FOUND' });
  t.true(err instanceof ArSegError);
  t.is(err.code, ErrorCodes.NOT_FOUND);
});

test('an empty file: ERR_EMPTY_INPUT', async (t) => {
  await t.throwsAsync(collect(openVideo(write('empty.mp4', Buffer.alloc(0)))), { code: 'ERR_EMPTY_INPUT' });
});

test('a directory: ERR_INVALID_ARG', async (t) => {
  await t.throwsAsync(collect(openVideo(dir)), { code: 'ERR_INVALID_ARG' });
});

test('random bytes: a coded input error', async (t) => {
  // Weak format probes may take noise for a stream (then it fails on reading) or reject it.
  for (const seed of [1, 7, 42]) {
    const err = await t.throwsAsync(collect(openVideo(write(`random-${seed}.bin`, pseudoRandomBytes(8000, seed)))));
    t.true(['ERR_INVALID_DATA', 'ERR_NO_VIDEO_STREAM', 'ERR_READ'].includes(err.code), `seed ${seed}: ${err.code}`);
  }
});

test('an audio-only file: ERR_NO_VIDEO_STREAM', async (t) => {
  await t.throwsAsync(collect(openVideo(fixture('audio-only.m4a'))), { code: 'ERR_NO_VIDEO_STREAM' });
});

test('an unknown URL scheme: ERR_UNSUPPORTED_PROTOCOL', async (t) => {
  await t.throwsAsync(collect(openVideo('nosuchproto://x/y.mp4')), { code: 'ERR_UNSUPPORTED_PROTOCOL' });
});

test('a file cut mid-GOP: the frames before the cut, then ERR_TRUNCATED with the count', async (t) => {
  const cut = write('cut.mp4', original.subarray(0, Math.floor(original.length * 0.5)));
  const frames = [];
  const reader = openVideo(cut, { vectors: true, motion: 'accumulated' });
  const err = await t.throwsAsync(async () => {
    for await (const f of reader) frames.push(f);
  });
  t.is(err.code, 'ERR_TRUNCATED');
  t.true(frames.length > 3 && frames.length < 36, `${frames.length} frames before the cut`);
  t.is(err.framesDecoded, frames.length);
  t.regex(err.message, new RegExp(`${frames.length} of 36 frames`));
  frames.forEach((f, i) => t.is(f.index, i));
});

test('corrupt packets: decoding goes on, damaged frames are flagged; strict mode stops with ERR_DECODE or finishes', async (t) => {
  const damaged = Buffer.from(original);
  for (let i = 8000; i < damaged.length - 2000; i += 997) damaged[i] ^= 0xff;
  const file = write('corrupt.mp4', damaged);
  const reader = openVideo(file, { vectors: true, motion: 'accumulated' });
  const frames = await collect(reader);
  t.is(frames.length, 36);
  t.true(
    frames.some((f) => f.corrupt),
    'some frames are flagged corrupt',
  );
  // strict: either the decoder rejected a packet (coded error) or it concealed everything
  try {
    await collect(openVideo(file, { strict: true }));
    t.pass();
  } catch (err) {
    t.is(err.code, 'ERR_DECODE');
    t.true(err.framesDecoded >= 0);
  }
});

test('bitstream motion on a codec that exports none: ERR_NO_MOTION_VECTORS, never zeros', async (t) => {
  // VP9 exports no vectors in any libav; HEVC none without ar-seg-native's patch.
  const err = await t.throwsAsync(
    collect(openVideo(fixture('translate-vp9.webm'), { motion: 'accumulated', motionSource: 'bitstream' })),
    { code: 'ERR_NO_MOTION_VECTORS' },
  );
  t.regex(err.message, /vp9/);
  t.throws(() => createPacketReader({ codec: 'vp9', vectors: true, motionSource: 'bitstream' }), {
    code: 'ERR_NO_MOTION_VECTORS',
  });
  // By default such a codec gets estimated motion (test/estimator.test.js).
  t.notThrows(() => createPacketReader({ codec: 'vp9', vectors: true }).close());
  if (require('../dist').libavVersions().exactReferences) {
    t.truthy(createPacketReader({ codec: 'hevc', vectors: true, motionSource: 'bitstream' }));
    return;
  }
  const hevc = await t.throwsAsync(
    collect(openVideo(fixture('hevc.mp4'), { motion: 'accumulated', motionSource: 'bitstream' })),
    { code: 'ERR_NO_MOTION_VECTORS' },
  );
  t.regex(hevc.message, /hevc.*patch/);
  t.throws(() => createPacketReader({ codec: 'hevc', vectors: true, motionSource: 'bitstream' }), {
    code: 'ERR_NO_MOTION_VECTORS',
  });
  t.is(createPacketReader({ codec: 'hevc', vectors: true }).motionSource, 'estimated');
});

test('wrong arguments from JavaScript: ERR_INVALID_ARG, thrown at once', (t) => {
  const bad = [
    [undefined, {}],
    [42, {}],
    ['', {}],
    ['x.mp4', null],
    ['x.mp4', []],
    ['x.mp4', { rgb: 'yes' }],
    ['x.mp4', { tensors: {} }],
    ['x.mp4', { tensors: [{ width: -4, height: 10 }] }],
    ['x.mp4', { tensors: [{ width: 10.5, height: 10 }] }],
    ['x.mp4', { tensors: [{ width: 0, height: 10 }] }],
    ['x.mp4', { tensors: [{ width: 1e9, height: 1e9 }] }],
    ['x.mp4', { tensors: [{ width: 8, height: 8, mean: [0, 0] }] }],
    ['x.mp4', { tensors: [{ width: 8, height: 8, std: [1, 0, 1] }] }],
    ['x.mp4', { tensors: [{ width: 8, height: 8, channelOrder: 'rbg' }] }],
    ['x.mp4', { tensors: ['8x8'] }],
    ['x.mp4', { motion: 'dense' }],
    ['x.mp4', { motion: true }],
    ['x.mp4', { stride: 0 }],
    ['x.mp4', { stride: -8 }],
    ['x.mp4', { stride: 1000 }],
    ['x.mp4', { stride: '8' }],
    ['x.mp4', { keyframes: 0 }],
    ['x.mp4', { keyframes: 'every' }],
    ['x.mp4', { keyframes: NaN }],
    ['x.mp4', { threads: -1 }],
    ['x.mp4', { ahead: 0 }],
    ['x.mp4', { ahead: 1.5 }],
    ['x.mp4', { formatOptions: 'tcp' }],
    ['x.mp4', { formatOptions: { timeout: {} } }],
  ];
  for (const [source, options] of bad) {
    const err = t.throws(() => openVideo(source, options), undefined, JSON.stringify([source, options]));
    t.is(err.code, 'ERR_INVALID_ARG', `${JSON.stringify([source, options])}: ${err.message}`);
  }
});

test('a closed reader: ERR_CLOSED on open and read; close is idempotent', async (t) => {
  const reader = openVideo(fixture('translate-p.mp4'));
  await reader.read();
  reader.close();
  reader.close();
  await t.throwsAsync(reader.read(), { code: 'ERR_CLOSED' });
  await t.throwsAsync(reader.open(), { code: 'ERR_CLOSED' });
  const never = openVideo(fixture('translate-p.mp4'));
  never.close();
  await t.throwsAsync(never.read(), { code: 'ERR_CLOSED' });
});

test('closing while reads are in flight settles them without a crash', async (t) => {
  for (let i = 0; i < 20; i++) {
    const reader = openVideo(fixture('translate-b.mp4'), { rgb: true, motion: 'accumulated', ahead: 8 });
    await reader.read();
    const pending = reader.read();
    reader.close();
    try {
      const f = await pending;
      t.true(f === null || typeof f.index === 'number');
    } catch (err) {
      t.is(err.code, 'ERR_CLOSED');
    }
  }
});

test('a network source that never answers is interrupted by close()', async (t) => {
  const net = require('node:net');
  const server = net.createServer(() => {}); // accepts, never responds
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address();
  const reader = openVideo(`http://127.0.0.1:${port}/stream.mp4`);
  const opening = reader.open();
  await new Promise((r) => setTimeout(r, 300));
  const started = Date.now();
  reader.close();
  const err = await t.throwsAsync(opening);
  t.true(['ERR_ABORTED', 'ERR_CLOSED'].includes(err.code), err.code);
  t.true(Date.now() - started < 3000, 'close() interrupted the blocked open');
  server.close();
});
