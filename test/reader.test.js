'use strict';
// The file/URL reader: stream facts, frame order and types, pixels and tensors.
const test = require('ava');
const { openVideo, libavVersions } = require('../dist');
const { texture } = require('./fixtures/render');
const { fixture, meta, collect } = require('./helpers/fixtures');

for (const name of [
  'translate-p.mp4',
  'translate-b.mp4',
  'translate-refs.mp4',
  'zoom.mp4',
  'mpeg4.mp4',
  'mpeg2.mpg',
  'hevc.mp4',
]) {
  test(`${name}: every frame in presentation order with the encoder's picture types`, async (t) => {
    const m = meta[name];
    const reader = openVideo(fixture(name));
    const info = await reader.open();
    t.is(info.width, m.width);
    t.is(info.height, m.height);
    t.is(Math.round(info.fps), m.fps);
    const frames = await collect(reader);
    t.is(frames.length, m.frames);
    t.is(frames.map((f) => f.pictType).join(''), m.pictTypes);
    frames.forEach((f, i) => {
      t.is(f.index, i);
      t.is(f.width, m.width);
      t.is(f.height, m.height);
      t.false(f.corrupt);
      t.is(f.isKeyframe, f.pictType === 'I');
    });
    // pts increase by one frame period
    for (let i = 1; i < frames.length; i++) t.true(Math.abs(frames[i].pts - frames[i - 1].pts - 1 / m.fps) < 1e-3);
  });
}

test('info reports codec, container, duration and motion-vector support', async (t) => {
  const info = await openVideo(fixture('translate-b.mp4')).open();
  t.is(info.codec, 'h264');
  t.regex(info.format, /mp4/);
  t.is(info.frameCount, 36);
  t.true(Math.abs(info.duration - 36 / 25) < 1e-6);
  t.true(info.motionVectors);
  const hevc = await openVideo(fixture('hevc.mp4')).open();
  t.is(hevc.codec, 'hevc');
  // HEVC vectors come from the patched libav (patches/ffmpeg/) only
  t.is(hevc.motionVectors, Boolean(libavVersions().exactReferences));
});

test('RGB pixels match the rendered texture (colour conversion is right)', async (t) => {
  const reader = openVideo(fixture('translate-p.mp4'), { rgb: true });
  const frame = await reader.read();
  reader.close();
  const { width, height, rgb } = frame;
  t.is(rgb.length, width * height * 3);
  let err = 0;
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++) {
      const [r, g, b] = texture(x, y);
      const k = (y * width + x) * 3;
      err += Math.abs(rgb[k] - r) + Math.abs(rgb[k + 1] - g) + Math.abs(rgb[k + 2] - b);
    }
  const mae = err / (width * height * 3);
  t.true(mae < 4, `mean absolute error ${mae.toFixed(2)} grey levels`);
});

test('tensors at several sizes in one pass: NCHW, normalised, channel order honoured', async (t) => {
  const mean = [0.485, 0.456, 0.406];
  const std = [0.229, 0.224, 0.225];
  const reader = openVideo(fixture('zoom.mp4'), {
    rgb: true,
    tensors: [
      { width: 192, height: 128, mean, std },
      { width: 96, height: 64 },
      { width: 192, height: 128, mean, std, channelOrder: 'bgr' },
    ],
  });
  const f = await reader.read();
  reader.close();
  t.is(f.tensors.length, 3);
  t.deepEqual(f.tensors[0].dims, [1, 3, 128, 192]);
  t.deepEqual(f.tensors[1].dims, [1, 3, 64, 96]);
  t.is(f.tensors[1].data.length, 3 * 64 * 96);
  const plane = 128 * 192;
  let maxErr = 0;
  for (let i = 0; i < plane; i++)
    for (let c = 0; c < 3; c++) {
      const expected = (f.rgb[i * 3 + c] / 255 - mean[c]) / std[c];
      maxErr = Math.max(maxErr, Math.abs(f.tensors[0].data[c * plane + i] - expected));
      // bgr: plane 0 holds blue
      maxErr = Math.max(maxErr, Math.abs(f.tensors[2].data[(2 - c) * plane + i] - expected));
    }
  t.true(maxErr < 1e-5, `max error ${maxErr}`);
  // the half-size tensor is unnormalised: values in [0, 1], mean close to the full frame's
  const small = f.tensors[1].data;
  t.true(small.every((v) => v >= 0 && v <= 1));
  const avgSmall = small.reduce((a, b) => a + b, 0) / small.length;
  const avgRgb = f.rgb.reduce((a, b) => a + b, 0) / f.rgb.length / 255;
  t.true(Math.abs(avgSmall - avgRgb) < 0.01);
});

// The official AR-Seg's LR input: the normalised HR tensor resized with align_corners=True to
// int(H * s) x int(W * s), natively; reference: the same resize in float64, PyTorch's rules.
function alignCornersReference(src, channels, h, w, outH, outW) {
  const out = new Float64Array(channels * outH * outW);
  const tap = (i, inSize, outSize) => {
    const s = outSize > 1 ? (i * (inSize - 1)) / (outSize - 1) : 0;
    const i0 = Math.min(Math.floor(s), inSize - 1);
    return [i0, Math.min(i0 + 1, inSize - 1), s - i0];
  };
  for (let c = 0; c < channels; c++)
    for (let y = 0; y < outH; y++) {
      const [y0, y1, ay] = tap(y, h, outH);
      for (let x = 0; x < outW; x++) {
        const [x0, x1, ax] = tap(x, w, outW);
        const at = (yy, xx) => src[c * h * w + yy * w + xx];
        out[c * outH * outW + y * outW + x] =
          (1 - ay) * ((1 - ax) * at(y0, x0) + ax * at(y0, x1)) + ay * ((1 - ax) * at(y1, x0) + ax * at(y1, x1));
      }
    }
  return out;
}

test('a tensor resized from an earlier one (the official LR input): floor sizes, align-corners values', async (t) => {
  const mean = [0.39068785, 0.40521392, 0.41434407];
  const std = [0.29652068, 0.30514979, 0.30080369];
  const reader = openVideo(fixture('zoom.mp4'), {
    tensors: [
      { scale: 1, multiple: 1, mean, std },
      { from: 0, scale: 0.5 },
      { from: 0, scale: 0.3 },
      { from: 1, scale: 2 },
    ],
  });
  const f = await reader.read();
  reader.close();
  // 192x128: 0.5 -> 96x64; 0.3 -> floor(57.6) x floor(38.4) = 57x38; 2 x the 0.5 one -> 192x128
  t.deepEqual(
    f.tensors.map((x) => x.dims),
    [
      [1, 3, 128, 192],
      [1, 3, 64, 96],
      [1, 3, 38, 57],
      [1, 3, 128, 192],
    ],
  );
  for (const [k, source] of [
    [1, 0],
    [2, 0],
    [3, 1],
  ]) {
    const [, , h, w] = f.tensors[source].dims;
    const [, , outH, outW] = f.tensors[k].dims;
    const ref = alignCornersReference(f.tensors[source].data, 3, h, w, outH, outW);
    let diff = 0;
    for (let i = 0; i < ref.length; i++) diff = Math.max(diff, Math.abs(f.tensors[k].data[i] - ref[i]));
    t.true(diff < 1e-5, `tensors[${k}]: ${diff}`);
  }
});

test('a tensor resized from another: bad specs are refused with ERR_INVALID_ARG', (t) => {
  const bad = [
    [{ from: 0, scale: 0.5 }],
    [{ scale: 1 }, { from: 1, scale: 0.5 }],
    [{ scale: 1 }, { from: 0 }],
    [{ scale: 1 }, { from: 0, scale: 0.5, mean: [0, 0, 0] }],
    [{ scale: 1 }, { from: 0, scale: 0.5, multiple: 16 }],
    [{ scale: 1 }, { from: 0, width: 10, height: 10 }],
    [{ scale: 1 }, { from: -1, scale: 0.5 }],
  ];
  for (const tensors of bad)
    t.throws(() => openVideo(fixture('zoom.mp4'), { tensors }), { code: 'ERR_INVALID_ARG' }, JSON.stringify(tensors));
});

test('typed arrays are views over native memory, not copies (one buffer per output)', async (t) => {
  const reader = openVideo(fixture('translate-p.mp4'), { rgb: true, vectors: true, motion: 'reference' });
  await reader.read();
  const f = await reader.read();
  reader.close();
  t.is(f.rgb.byteOffset, 0);
  t.is(f.rgb.buffer.byteLength, f.rgb.byteLength);
  t.is(f.vectors.buffer.byteLength, f.vectors.byteLength);
  t.is(f.motion.data.buffer.byteLength, f.motion.data.byteLength);
});

test('decoding stays a bounded number of frames ahead of a slow consumer', async (t) => {
  const reader = openVideo(fixture('translate-p.mp4'), { ahead: 2 });
  await reader.read();
  await new Promise((r) => setTimeout(r, 300));
  const delivered = reader.stats().framesDelivered;
  t.true(delivered <= 1 + 2, `${delivered} frames decoded while the consumer took 1`);
  const rest = [];
  let f;
  while ((f = await reader.read())) rest.push(f);
  t.is(rest.length, 35);
  t.is(await reader.read(), null, 'read() after the end keeps returning null');
  reader.close();
});

test('breaking out of for-await closes the reader', async (t) => {
  const reader = openVideo(fixture('translate-p.mp4'));
  for await (const f of reader) if (f.index === 3) break;
  await t.throwsAsync(reader.read(), { code: 'ERR_CLOSED' });
});

test('vectors are identical with any thread count, even with many readers at once', async (t) => {
  // Regression: libavcodec's frame threading exported wrong vectors under load; the decoder
  // now uses slice threading whenever motion is asked for.
  const expected = (await collect(openVideo(fixture('translate-b.mp4'), { vectors: true, threads: 1 }))).map((f) =>
    Array.from(f.vectors),
  );
  for (let round = 0; round < 3; round++) {
    const runs = await Promise.all(
      Array.from({ length: 6 }, () => collect(openVideo(fixture('translate-b.mp4'), { vectors: true, threads: 4 }))),
    );
    for (const frames of runs) {
      t.is(frames.length, expected.length);
      frames.forEach((f, i) => t.deepEqual(Array.from(f.vectors), expected[i], `frame ${i}`));
    }
  }
});

test('the native readers refuse to start without the function that builds their frames', (t) => {
  const { addon } = require('../dist/native');
  const { NativeVideoReader, NativePacketReader } = addon();
  for (const makeFrame of [undefined, null, {}, 'makeFrame']) {
    t.throws(() => new NativeVideoReader(fixture('zoom.mp4'), {}, makeFrame), { code: 'ERR_INVALID_ARG' });
    t.throws(() => new NativePacketReader('h264', {}, makeFrame), { code: 'ERR_INVALID_ARG' });
  }
  t.throws(() => new NativeVideoReader(fixture('zoom.mp4')), { code: 'ERR_INVALID_ARG', message: /makeFrame/ });
});

test('a frame builder that throws rejects the read, and the reader goes on', async (t) => {
  const { addon } = require('../dist/native');
  let calls = 0;
  const reader = new (addon().NativeVideoReader)(fixture('zoom.mp4'), {}, (index) => {
    if (++calls === 1) throw new Error('no frame today');
    return { index };
  });
  await reader.open();
  await t.throwsAsync(reader.read(), { message: 'no frame today' });
  t.deepEqual(await reader.read(), { index: 1 });
  reader.close();
});
