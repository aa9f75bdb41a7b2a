'use strict';
// Checking options (docs/architecture.md, "Checking options"): lib/options.ts's helpers, and each
// option checked once, by the layer that consumes it, with a message that names it.
const path = require('node:path');
const test = require('ava');
const { ArSeg, Bundle, openVideo, createPacketReader } = require('../dist');
const { integerIn, nonEmptyString, numberIn, oneOf, optionsObject, show } = require('../dist/options');
const { fixture } = require('./helpers/fixtures');

const BUNDLE = path.join(__dirname, 'fixtures', 'bundles', 'tiny-psp18');
const invalid = (message) => ({ code: 'ERR_INVALID_ARG', message });

test('optionsObject: undefined is {}, objects pass, anything else is refused', (t) => {
  t.deepEqual(optionsObject(undefined), {});
  const o = { a: 1 };
  t.is(optionsObject(o), o);
  for (const bad of [null, [], 'x', 3, true])
    t.throws(() => optionsObject(bad, 'options.head'), invalid(/^options\.head must be an object, got /));
});

test('oneOf: listed values, the fallback for undefined, a message listing the choices', (t) => {
  t.is(oneOf('mode', undefined, ['ar', 'hr', 'lr'], 'ar'), 'ar');
  t.is(oneOf('mode', 'lr', ['ar', 'hr', 'lr'], 'ar'), 'lr');
  t.throws(
    () => oneOf('mode', 'fast', ['ar', 'hr', 'lr'], 'ar'),
    invalid("option 'mode' must be 'ar', 'hr' or 'lr', got 'fast'"),
  );
  t.throws(
    () => oneOf('decoder', null, ['auto', 'onnx'], 'auto'),
    invalid("option 'decoder' must be 'auto' or 'onnx', got null"),
  );
});

test('integerIn and numberIn: ranges, open ends, fallbacks, non-numbers', (t) => {
  t.is(integerIn('ahead', undefined, 1, 64, 4), 4);
  t.is(integerIn('ahead', 64, 1, 64, 4), 64);
  for (const bad of [0, 65, 1.5, '8', NaN, null])
    t.throws(() => integerIn('ahead', bad, 1, 64, 4), invalid(/^option 'ahead' must be an integer from 1 to 64, got /));
  t.is(integerIn('threads', 1e6, 1, Infinity), 1e6);
  t.throws(() => integerIn('threads', 0, 1, Infinity), invalid("option 'threads' must be a positive integer, got 0"));
  t.throws(() => integerIn('threads', undefined, 1, Infinity), invalid(/got undefined/));
  t.throws(() => integerIn('n', -1, 0, Infinity), invalid(/an integer of at least 0/));
  t.is(numberIn('scale', undefined, 0, 1, 0.5, { lowOpen: true }), 0.5);
  t.is(numberIn('scale', 1, 0, 1, 0.5, { lowOpen: true }), 1);
  t.throws(
    () => numberIn('scale', 0, 0, 1, 0.5, { lowOpen: true }),
    invalid("option 'scale' must be a number in (0, 1], got 0"),
  );
  t.is(numberIn('share', 0, 0, 1), 0);
  for (const bad of [1.01, Infinity, NaN, '0.5'])
    t.throws(() => numberIn('share', bad, 0, 1), invalid(/^option 'share' must be a number in \[0, 1\]/));
});

test('nonEmptyString and show', (t) => {
  t.is(nonEmptyString('the bundle directory', 'dir', 'a path'), 'dir');
  t.throws(
    () => nonEmptyString('the bundle directory', '', 'a path'),
    invalid("the bundle directory must be a path, got ''"),
  );
  t.is(show({ a: [1] }), '{"a":[1]}');
  t.is(show(undefined), 'undefined');
  const cyclic = {};
  cyclic.self = cyclic;
  t.is(show(cyclic), '[object Object]');
});

test('segment(): the pipeline names its own options; the reader checks those it passes on', async (t) => {
  const seg = await ArSeg.load(BUNDLE);
  try {
    const clip = fixture('tiny.h264');
    for (const [option, bad] of [
      ['mode', 'fast'],
      ['scale', 2],
      ['motionStride', 0],
      ['creffMode', 'x'],
      ['decoder', 'native'],
    ])
      t.throws(() => seg.segment(clip, { [option]: bad }), invalid(new RegExp(`^option '${option}' must be`)), option);
    // keyframes, ahead and formatOptions go to the reader unchanged: the same error as openVideo's
    for (const options of [
      { keyframes: 0 },
      { keyframes: 'every' },
      { keyframes: { policy: 'sometimes' } },
      { ahead: 0 },
      { formatOptions: 'tcp' },
    ]) {
      const viaPipeline = t.throws(() => seg.segment(clip, options));
      const viaReader = t.throws(() => openVideo(clip, { motion: 'accumulated', ...options }));
      t.is(viaPipeline.code, 'ERR_INVALID_ARG');
      t.is(viaPipeline.message, viaReader.message, JSON.stringify(options));
    }
  } finally {
    await seg.close();
  }
});

test('the bundle options are checked before the bundle is read', async (t) => {
  const missing = path.join(__dirname, 'no-such-bundle');
  await t.throwsAsync(
    Bundle.load(missing, { device: 'tpu' }),
    invalid("option 'device' must be 'cpu', 'cuda' or 'cuda-emulated', got 'tpu'"),
  );
  await t.throwsAsync(Bundle.load(missing, { decoder: 'native' }), invalid(/^option 'decoder'/));
  await t.throwsAsync(Bundle.load(missing, { threads: 0 }), invalid(/^option 'threads' must be a positive integer/));
  await t.throwsAsync(Bundle.load(missing, null), invalid(/^options must be an object/));
  await t.throwsAsync(Bundle.load(missing), { code: 'ERR_BUNDLE' }); // with good options, the missing bundle
});

test('the packet reader: codec, packets and pts are checked natively, with the same codes', async (t) => {
  t.throws(() => createPacketReader({ codec: '' }), invalid(/^option 'codec' must be a codec name/));
  t.throws(() => createPacketReader({ codec: 7 }), invalid(/^option 'codec'/));
  t.throws(() => createPacketReader(null), invalid(/^options \(an object with a codec\) must be an object/));
  const reader = createPacketReader({ codec: 'h264' });
  try {
    await t.throwsAsync(reader.decode('bytes'), invalid('packet must be a Uint8Array or Buffer'));
    await t.throwsAsync(reader.decode(new Uint8Array(4), NaN), invalid('pts must be a finite number of seconds'));
    t.deepEqual(await reader.decode(new Uint8Array(0)), []);
  } finally {
    reader.close();
  }
});
