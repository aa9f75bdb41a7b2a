'use strict';
// Motion vectors and dense fields against clips with known motion (test/fixtures/README.md):
// the current frame at p matches the reference at p + d.
const test = require('ava');
const { openVideo, sampleMotion, resizeMotion, libavVersions } = require('../dist');
const { fixture, meta, collect, interior, median } = require('./helpers/fixtures');
const reference = require('./helpers/motion-reference');

const SHIFT = meta['translate-p.mp4'].motion; // dx 2.25, dy -1.5

function share(values, predicate) {
  return values.filter(predicate).length / values.length;
}

test('I-frames carry no vectors; P-frame vectors match the known shift', async (t) => {
  const frames = await collect(openVideo(fixture('translate-p.mp4'), { vectors: true }));
  for (const f of frames) {
    t.is(f.vectors.length % 10, 0);
    if (f.pictType === 'I') {
      t.is(f.vectors.length, 0, `I-frame ${f.index} has vectors`);
      continue;
    }
    const rows = f.vectors.length / 10;
    t.true(rows > 0);
    const dx = [],
      dy = [];
    for (let r = 0; r < rows; r++) {
      const v = f.vectors.subarray(r * 10, r * 10 + 10);
      t.is(v[0], -1, 'P-frames predict from the past');
      t.is(v[9], 4, 'H.264 vectors are in quarter pixels');
      t.is(v[3], v[5] + Math.trunc(v[7] / v[9]), 'src_x = dst_x + motion_x / motion_scale');
      dx.push(v[7] / v[9]);
      dy.push(v[8] / v[9]);
    }
    t.is(median(dx), SHIFT.dx, `frame ${f.index}`);
    t.is(median(dy), SHIFT.dy, `frame ${f.index}`);
  }
});

test('dense field to the reference matches the shift to a quarter pixel in the interior', async (t) => {
  const frames = await collect(openVideo(fixture('translate-p.mp4'), { motion: 'reference', stride: 4 }));
  for (const f of frames.filter((x) => x.pictType === 'P')) {
    t.is(f.motion.stride, 4);
    t.is(f.motion.width, 48);
    t.is(f.motion.height, 32);
    t.is(f.motion.mode, 'reference');
    const dx = interior(f.motion, 0, 3);
    const dy = interior(f.motion, 1, 3);
    const good = share(
      dx.map((v, i) => [v, dy[i]]),
      ([x, y]) => Math.abs(x - SHIFT.dx) <= 0.25 && Math.abs(y - SHIFT.dy) <= 0.25,
    );
    t.true(good >= 0.9, `frame ${f.index}: ${(good * 100).toFixed(1)}% of interior cells within 1/4 px`);
  }
});

for (const name of ['translate-p.mp4', 'translate-b.mp4']) {
  test(`${name}: the field accumulated over k frames is k times the shift within half a pixel`, async (t) => {
    const frames = await collect(openVideo(fixture(name), { motion: 'accumulated', stride: 8 }));
    for (const f of frames) {
      const k = f.index - f.keyframeIndex;
      t.is(f.keyframeIndex, Math.floor(f.index / 12) * 12);
      const dx = interior(f.motion, 0);
      const dy = interior(f.motion, 1);
      if (k === 0) {
        t.true(dx.every((v) => v === 0) && dy.every((v) => v === 0));
        continue;
      }
      const err = dx.map((v, i) => Math.max(Math.abs(v - k * SHIFT.dx), Math.abs(dy[i] - k * SHIFT.dy)));
      const good = share(err, (e) => e <= 0.5);
      t.true(
        good >= 0.95,
        `frame ${f.index} (k=${k}): ${(good * 100).toFixed(1)}% within 1/2 px, median error ${median(err)}`,
      );
      t.true(median(err) <= 0.25);
    }
  });
}

test('zoom: the accumulated field follows the radial motion', async (t) => {
  const m = meta['zoom.mp4'];
  const factor = m.motion.factor;
  const cx = (m.width - 1) / 2,
    cy = (m.height - 1) / 2;
  const frames = await collect(openVideo(fixture('zoom.mp4'), { motion: 'accumulated', stride: 8 }));
  for (const f of frames) {
    const k = f.index - f.keyframeIndex;
    const scale = Math.pow(factor, -k) - 1;
    const errs = [];
    const { width, height, stride, data } = f.motion;
    for (let i = 2; i < height - 2; i++)
      for (let j = 2; j < width - 2; j++) {
        const px = j * stride + (stride - 1) / 2,
          py = i * stride + (stride - 1) / 2;
        const ex = (px - cx) * scale,
          ey = (py - cy) * scale;
        errs.push(Math.hypot(data[i * width + j] - ex, data[width * height + i * width + j] - ey));
      }
    t.true(median(errs) <= 0.5, `frame ${f.index} (k=${k}): median error ${median(errs).toFixed(3)} px`);
  }
});

test('native composition equals the plain reference implementation', async (t) => {
  for (const [name, keyframes] of [
    ['translate-b.mp4', 'gop'],
    ['translate-b.mp4', 4],
    ['translate-p.mp4', 5],
    ['zoom.mp4', 'gop'],
    ['translate-refs.mp4', 'gop'],
    // exact references: B-pyramids, several references, HEVC (no open-GOP bridging here: an
    // interval that makes no I-frame a keyframe)
    ['x264-default.mp4', 'gop'],
    ['x264-default.mp4', 5],
    ['x265-p.mp4', 'gop'],
    ['x265-default.mp4', 7],
  ]) {
    if (meta[name].codec === 'hevc' && !libavVersions().exactReferences) continue;
    const frames = await collect(
      // The composition as the bitstream gives it: the motion fill's estimates (motionFill) are
      // checked against known motion in motion-exact.test.js, the estimator against its plain
      // reference in estimator.test.js.
      openVideo(fixture(name), { vectors: true, motion: 'accumulated', stride: 8, keyframes, motionFill: 'none' }),
    );
    const expected = reference.accumulate(frames, 8);
    let maxErr = 0;
    frames.forEach((f, i) => {
      t.is(f.keyframeIndex, expected[i].keyframeIndex);
      const n = f.motion.width * f.motion.height;
      for (let c = 0; c < n; c++) {
        maxErr = Math.max(
          maxErr,
          Math.abs(f.motion.data[c] - expected[i].dx[c]),
          Math.abs(f.motion.data[n + c] - expected[i].dy[c]),
        );
      }
    });
    t.true(maxErr < 1e-4, `${name} keyframes=${keyframes}: max difference ${maxErr}`);
  }
});

test('keyframe interval: every L-th frame, B-frame keyframes included', async (t) => {
  // translate-b with L = 4: keyframes 0, 4 (a B-frame), 8 (a B-frame)...; stay inside the first
  // GOP, where no I-frame intervenes (an I-frame has no motion to compose through).
  const frames = await collect(openVideo(fixture('translate-b.mp4'), { motion: 'accumulated', keyframes: 4 }));
  for (const f of frames.slice(0, 12)) {
    t.is(f.isKeyframe, f.index % 4 === 0);
    t.is(f.keyframeIndex, f.index - (f.index % 4));
    const k = f.index % 4;
    const dx = median(interior(f.motion, 0));
    const dy = median(interior(f.motion, 1));
    t.true(
      Math.abs(dx - k * SHIFT.dx) <= 0.5 && Math.abs(dy - k * SHIFT.dy) <= 0.5,
      `frame ${f.index}: (${dx}, ${dy})`,
    );
  }
  t.is(frames[4].pictType, 'B');
});

test('a keyframe interval longer than the GOP crosses I-frames with zero intra motion', async (t) => {
  const frames = await collect(openVideo(fixture('translate-p.mp4'), { motion: 'accumulated', keyframes: 30 }));
  t.deepEqual(
    frames.filter((f) => f.isKeyframe).map((f) => f.index),
    [0, 30],
  );
  // Frame 12 is an I-frame: no vectors, so its motion is that of frame 11 (intra = zero motion).
  t.deepEqual(Array.from(frames[12].motion.data), Array.from(frames[11].motion.data));
  const dx13 = median(interior(frames[13].motion, 0));
  t.true(Math.abs(dx13 - 12 * SHIFT.dx) <= 0.5, `frame 13 composes on top of frame 12: ${dx13}`);
});

test('mpeg4 and mpeg2 give exact vectors; HEVC gives vectors with the patched libav, else refuses motion', async (t) => {
  for (const name of ['mpeg4.mp4', 'mpeg2.mpg']) {
    const { dx, dy } = meta[name].motion;
    const frames = await collect(openVideo(fixture(name), { motion: 'accumulated' }));
    const f = frames[5];
    t.is(median(interior(f.motion, 0)), 5 * dx, name);
    t.is(median(interior(f.motion, 1)), 5 * dy, name);
  }
  const frames = await collect(openVideo(fixture('translate-vp9.webm')));
  t.is(frames.length, 24);
  for (const opts of [{ vectors: true }, { motion: 'reference' }, { motion: 'accumulated' }]) {
    await t.throwsAsync(collect(openVideo(fixture('translate-vp9.webm'), { ...opts, motionSource: 'bitstream' })), {
      code: 'ERR_NO_MOTION_VECTORS',
    });
    // HEVC: the patched libav's vectors, else estimated motion
    const hevc = await collect(openVideo(fixture('hevc.mp4'), opts));
    t.is(hevc.length, 12);
    t.is(hevc[5].motionSource, libavVersions().exactReferences ? 'bitstream' : 'estimated');
    if (opts.motion === 'accumulated') t.true(Math.abs(median(interior(hevc[5].motion, 0)) - 5 * SHIFT.dx) <= 0.25);
  }
});

test('sampleMotion and resizeMotion scale displacements to the new grid', async (t) => {
  const reader = openVideo(fixture('translate-p.mp4'), { motion: 'accumulated', stride: 8 });
  let f;
  for (let i = 0; i < 4; i++) f = await reader.read();
  reader.close();
  const [dx, dy] = sampleMotion(f.motion, 96, 64);
  t.true(Math.abs(dx - 3 * SHIFT.dx) <= 0.5 && Math.abs(dy - 3 * SHIFT.dy) <= 0.5);
  const half = resizeMotion(f.motion, 192, 128, 96, 64);
  t.is(half.length, 2 * 96 * 64);
  const mid = 32 * 96 + 48;
  t.true(Math.abs(half[mid] - 1.5 * SHIFT.dx) <= 0.25);
  t.true(Math.abs(half[96 * 64 + mid] - 1.5 * SHIFT.dy) <= 0.25);
  t.throws(() => resizeMotion(f.motion, 192, 128, 0, 64), { code: 'ERR_INVALID_ARG' });
});

test('adaptive keyframes: scene cuts, large motion and the maximum interval start new keyframes', async (t) => {
  const keys = async (file, keyframes) => {
    const out = [];
    for await (const f of openVideo(fixture(file), { motion: 'accumulated', keyframes })) {
      if (f.isKeyframe) out.push(f.index);
      t.is(f.keyframeIndex, out[out.length - 1]);
    }
    return out;
  };
  // scene-cut.mp4: content jumps at frame 18, mid-GOP (a P-frame coded mostly intra)
  const noMotionLimit = { policy: 'adaptive', maxMotion: 1e6, maxInterval: 100 };
  t.deepEqual(await keys('scene-cut.mp4', noMotionLimit), [0, 12, 18, 24]);
  t.deepEqual(await keys('scene-cut.mp4', 'gop'), [0, 12, 24]);
  t.deepEqual(
    await keys('scene-cut.mp4', { policy: 'adaptive', maxMotion: 1e6, maxInterval: 5 }),
    [0, 5, 10, 12, 17, 18, 23, 24, 29, 34],
  );
  // translate-p moves 2.7 px per frame: a 10 px limit trips every 4th frame after a keyframe
  t.deepEqual(
    await keys('translate-p.mp4', { policy: 'adaptive', maxMotion: 10, maxInterval: 100 }),
    [0, 4, 8, 12, 16, 20, 24, 28, 32],
  );
  // B-frames never become keyframes
  const b = [];
  for await (const f of openVideo(fixture('translate-b.mp4'), {
    motion: 'accumulated',
    keyframes: { policy: 'adaptive', maxMotion: 5 },
  }))
    if (f.isKeyframe) b.push(f.pictType);
  t.true(b.length > 3 && b.every((p) => p !== 'B'));
  // the field restarts at every adaptive keyframe
  for await (const f of openVideo(fixture('translate-p.mp4'), {
    motion: 'accumulated',
    keyframes: { policy: 'adaptive', maxMotion: 10, maxInterval: 100 },
  })) {
    const k = f.index - f.keyframeIndex;
    t.true(Math.abs(median(interior(f.motion, 0)) - k * SHIFT.dx) <= 0.5, `frame ${f.index}`);
  }
  t.throws(() => openVideo(fixture('translate-p.mp4'), { keyframes: 'adaptive' }), { code: 'ERR_INVALID_ARG' });
  t.throws(
    () =>
      openVideo(fixture('translate-p.mp4'), {
        motion: 'accumulated',
        keyframes: { policy: 'adaptive', intraShare: 2 },
      }),
    { code: 'ERR_INVALID_ARG' },
  );
  t.throws(() => openVideo(fixture('translate-p.mp4'), { motion: 'accumulated', keyframes: { policy: 'sometimes' } }), {
    code: 'ERR_INVALID_ARG',
  });
});

test('native resizeMotion equals a plain resampling through sampleMotion', async (t) => {
  const reader = openVideo(fixture('zoom.mp4'), { motion: 'accumulated', stride: 8 });
  let f;
  for (let i = 0; i < 6; i++) f = await reader.read();
  reader.close();
  for (const [W, H] of [
    [96, 64],
    [192, 128],
    [50, 37],
    [400, 300],
  ]) {
    const got = resizeMotion(f.motion, 192, 128, W, H);
    const sx = W / 192,
      sy = H / 128;
    let diff = 0;
    for (let i = 0; i < H; i++)
      for (let j = 0; j < W; j++) {
        const [dx, dy] = sampleMotion(f.motion, (j + 0.5) / sx - 0.5, (i + 0.5) / sy - 0.5);
        diff = Math.max(diff, Math.abs(got[i * W + j] - dx * sx), Math.abs(got[W * H + i * W + j] - dy * sy));
      }
    t.true(diff < 1e-4, `${W}x${H}: ${diff}`);
  }
});

// The official resizes (evaluation.py and train_pair.py) work on the per-pixel field: every pixel
// takes its cell's value. Plain reference: expand, then F.interpolate's rules (align_corners=True
// bilinear; nearest: source floor(x * in / out) in float32), both components times outH / frameH.
function officialResizeReference(field, frameW, frameH, outW, outH, mode) {
  const { width: gw, stride, data } = field;
  const pixel = (c, y, x) => data[c * gw * field.height + Math.floor(y / stride) * gw + Math.floor(x / stride)];
  const ratio = outH / frameH;
  const out = new Float64Array(2 * outW * outH);
  const ac = (i, inSize, outSize) => {
    const s = outSize > 1 ? (i * (inSize - 1)) / (outSize - 1) : 0;
    const i0 = Math.min(Math.floor(s), inSize - 1);
    return [i0, Math.min(i0 + 1, inSize - 1), s - i0];
  };
  const nearest = (i, inSize, outSize) => {
    if (inSize === outSize) return i;
    if (outSize === 2 * inSize) return i >> 1;
    return Math.min(Math.floor(Math.fround(i * Math.fround(inSize / outSize))), inSize - 1);
  };
  for (let c = 0; c < 2; c++)
    for (let i = 0; i < outH; i++)
      for (let j = 0; j < outW; j++) {
        let v;
        if (mode === 'nearest') v = pixel(c, nearest(i, frameH, outH), nearest(j, frameW, outW));
        else {
          const [y0, y1, ay] = ac(i, frameH, outH);
          const [x0, x1, ax] = ac(j, frameW, outW);
          v =
            (1 - ay) * ((1 - ax) * pixel(c, y0, x0) + ax * pixel(c, y0, x1)) +
            ay * ((1 - ax) * pixel(c, y1, x0) + ax * pixel(c, y1, x1));
        }
        out[c * outW * outH + i * outW + j] = v * ratio;
      }
  return out;
}

test('official motion resizes (align-corners, nearest) equal the per-pixel reference, any stride', async (t) => {
  for (const stride of [1, 4, 8]) {
    const reader = openVideo(fixture('zoom.mp4'), { motion: 'accumulated', stride });
    let f;
    for (let i = 0; i < 6; i++) f = await reader.read();
    reader.close();
    // the stride-8 feature of BiSeNet18, stride 1 of PSPNet18 (the identity), odd sizes, upsampling
    for (const [W, H] of [
      [24, 16],
      [192, 128],
      [25, 17],
      [50, 37],
      [400, 300],
      [384, 256],
    ]) {
      for (const mode of ['align-corners', 'nearest']) {
        const got = resizeMotion(f.motion, 192, 128, W, H, mode);
        const ref = officialResizeReference(f.motion, 192, 128, W, H, mode);
        let diff = 0;
        for (let k = 0; k < got.length; k++) diff = Math.max(diff, Math.abs(got[k] - ref[k]));
        t.true(diff < 1e-4, `stride ${stride}, ${W}x${H}, ${mode}: ${diff}`);
      }
    }
    // at the frame's own size both are the per-pixel field itself, exactly
    const same = resizeMotion(f.motion, 192, 128, 192, 128, 'align-corners');
    const expanded = officialResizeReference(f.motion, 192, 128, 192, 128, 'nearest');
    t.deepEqual(Array.from(same), Array.from(expanded, Math.fround), `stride ${stride}: identity`);
  }
});

test('the official resize scales both components by the height ratio; cell-centres by each axis', async (t) => {
  const field = { width: 1, height: 1, stride: 8, data: Float32Array.from([4, 2]), mode: 'accumulated' };
  const official = resizeMotion(field, 8, 8, 2, 4, 'align-corners');
  // an 8x8 frame to 2x4: the official code scales dx and dy by 4 / 8 (heights) ...
  t.deepEqual(Array.from(official), [...Array(8).fill(2), ...Array(8).fill(1)]);
  // ... this project's cell-centres mode dx by 2 / 8 (widths) and dy by 4 / 8
  const centres = resizeMotion(field, 8, 8, 2, 4);
  t.deepEqual(Array.from(centres), Array(16).fill(1));
  t.throws(() => resizeMotion(field, 8, 8, 2, 4, 'bicubic'), { code: 'ERR_INVALID_ARG' });
});
