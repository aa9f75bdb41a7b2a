'use strict';
// The motion estimator (native/motion/estimator.h): the vectorised code against its plain
// reference on every SIMD path, known motion on synthetic pictures and on the fixtures, the
// reader's motionSource ('auto' estimates where the codec has no vectors, 'estimate' forces
// it, 'bitstream' refuses), and mode 'ar' end to end on codecs without vectors.
const fs = require('node:fs');
const path = require('node:path');
const { execFileSync } = require('node:child_process');
const test = require('ava');
const { ArSeg, openVideo, createPacketReader, estimateMotion } = require('../dist');
const { texture } = require('./fixtures/render');
const { FIXTURES, fixture, meta, collect, tmpDir } = require('./helpers/fixtures');

/** 8-bit luma of the fixtures' texture, sampled at map(x, y). */
function picture(width, height, map) {
  const out = new Uint8Array(width * height);
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++) {
      const [r, g, b] = texture(...map(x, y));
      out[y * width + x] = Math.round(0.299 * r + 0.587 * g + 0.114 * b);
    }
  return out;
}

/** Mean Euclidean error of a field against truth(px, py), over cells `margin` cells inside. */
function fieldError(field, truth, margin = 2) {
  const { width, height, stride, data } = field;
  let sum = 0;
  let n = 0;
  for (let i = margin; i < height - margin; i++)
    for (let j = margin; j < width - margin; j++) {
      const [tx, ty] = truth(j * stride + (stride - 1) / 2, i * stride + (stride - 1) / 2);
      sum += Math.hypot(data[i * width + j] - tx, data[width * height + i * width + j] - ty);
      n++;
    }
  return sum / n;
}

test('sub-pixel translation and zoom between two pictures', async (t) => {
  const W = 160;
  const H = 112;
  const prev = picture(W, H, (x, y) => [x, y]);
  for (const [dx, dy] of [
    [0.4, -0.3],
    [2.25, -1.5],
    [-7.6, 5.2],
    [13.3, 9.7],
  ]) {
    const cur = picture(W, H, (x, y) => [x + dx, y + dy]);
    const r = await estimateMotion(prev, cur, W, H, { stride: 8 });
    t.is(r.mode, 'reference');
    t.deepEqual([r.width, r.height, r.stride], [20, 14, 8]);
    // Cells whose content the previous picture holds: within 0.1 px on average, all matched.
    const m = Math.ceil(Math.max(Math.abs(dx), Math.abs(dy)) / 8) + 1;
    const err = fieldError(r, () => [dx, dy], m);
    t.true(err < 0.1, `(${dx}, ${dy}): mean error ${err.toFixed(3)} px`);
    for (let i = m; i < r.height - m; i++)
      for (let j = m; j < r.width - m; j++) t.is(r.matched[i * r.width + j], 1, `cell ${j}, ${i} matched`);
  }
  const c = [(W - 1) / 2, (H - 1) / 2];
  const zoomed = picture(W, H, (x, y) => [c[0] + (x - c[0]) / 1.03, c[1] + (y - c[1]) / 1.03]);
  const z = await estimateMotion(prev, zoomed, W, H, { stride: 4 });
  const err = fieldError(z, (x, y) => [(x - c[0]) * (1 / 1.03 - 1), (y - c[1]) * (1 / 1.03 - 1)], 3);
  t.true(err < 0.15, `zoom: mean error ${err.toFixed(3)} px`);
  // Same picture: no motion; a picture of something else: nothing matches.
  const still = await estimateMotion(prev, prev, W, H);
  t.true(still.data.every((v) => Math.abs(v) < 1e-3));
  const other = picture(W, H, (x, y) => [x + 3000, y - 7000]);
  const cut = await estimateMotion(prev, other, W, H);
  const share = cut.matched.reduce((a, b) => a + b, 0) / cut.matched.length;
  t.true(share < 0.2, `a different picture: ${(100 * share).toFixed(0)}% of cells matched`);
});

test('a prior (the last field) lets the coarsest level start from large motion', async (t) => {
  const W = 128;
  const H = 96;
  const prev = picture(W, H, (x, y) => [x, y]);
  const cur = picture(W, H, (x, y) => [x + 41.5, y - 3.25]);
  const prior = { width: 16, height: 12, stride: 8, mode: 'reference', data: new Float32Array(2 * 16 * 12) };
  prior.data.fill(40, 0, 16 * 12);
  prior.data.fill(-3, 16 * 12);
  const withPrior = await estimateMotion(prev, cur, W, H, { stride: 8, prior });
  // Interior cells whose content was in the previous picture (x + 41.5 < W).
  const { width, data } = withPrior;
  const errs = [];
  for (let i = 2; i < 10; i++)
    for (let j = 1; j < 8; j++)
      errs.push(Math.hypot(data[i * width + j] - 41.5, data[width * 12 + i * width + j] + 3.25));
  const mean = errs.reduce((a, b) => a + b, 0) / errs.length;
  t.true(mean < 0.2, `with the prior: mean error ${mean.toFixed(3)} px`);
});

// The vectorised estimator is compiled for AVX-512, AVX2 + FMA and baseline x86-64; each path
// this CPU has runs in a child process with the level capped by ARSEG_SIMD, against the plain
// reference: odd sizes (partial vectors in the pyramid rows), every finest level, strides 1 to
// 16, a prior, and motion that leaves the picture (clamped offsets). They differ by float
// rounding only (sums in another order, fused multiply-adds).
test('every SIMD path this CPU has gives the reference result', async (t) => {
  const CASES = [
    // width, height, dx, dy, options
    [96, 64, 2.25, -1.5, { stride: 8 }],
    [101, 77, -3.6, 1.2, { stride: 4, finestLevel: 0 }],
    [150, 90, 6.3, 4.1, { stride: 5, finestLevel: 2, patchStride: 3 }],
    [64, 48, 0.7, 0.2, { stride: 1, iterations: 3 }],
    [130, 98, 9.5, -7.25, { stride: 16, prior: true }],
  ];
  const script = `
    const { addon } = require(${JSON.stringify(path.join(__dirname, '..', 'dist', 'native'))});
    const { texture } = require(${JSON.stringify(path.join(__dirname, 'fixtures', 'render'))});
    ${picture.toString()}
    (async () => {
      const out = [];
      for (const [W, H, dx, dy, o] of ${JSON.stringify(CASES)}) {
        const prev = picture(W, H, (x, y) => [x, y]);
        const cur = picture(W, H, (x, y) => [x + dx, y + dy]);
        const options = { ...o };
        if (o.prior) {
          const gw = Math.ceil(W / 8), gh = Math.ceil(H / 8);
          const data = new Float32Array(2 * gw * gh).fill(dx, 0, gw * gh).fill(dy, gw * gh);
          options.prior = { data, width: gw, height: gh, stride: 8 };
        }
        const fast = await addon().estimateMotion(prev, cur, W, H, options);
        const ref = await addon().estimateMotion(prev, cur, W, H, { ...options, kernel: 'reference' });
        let worst = 0;
        for (let i = 0; i < ref.data.length; i++) worst = Math.max(worst, Math.abs(fast.data[i] - ref.data[i]));
        const sameMatched = fast.matched.every((m, i) => m === ref.matched[i]);
        out.push({ worst, sameMatched, cells: ref.width * ref.height, size: [fast.width, fast.height, ref.width, ref.height] });
      }
      process.stdout.write(JSON.stringify({ level: addon().simdLevel(), out }));
    })();`;
  const run = (level) =>
    JSON.parse(
      execFileSync(process.execPath, ['-e', script], {
        env: { ...process.env, ARSEG_SIMD: level ?? '' },
        maxBuffer: 1 << 26,
      }).toString(),
    );
  const levels = ['avx512', 'avx2', 'baseline'];
  const best = run(undefined).level;
  t.log(`this CPU: ${best}`);
  for (const level of levels.slice(levels.indexOf(best))) {
    const { level: ran, out } = run(level);
    t.is(ran, level);
    out.forEach((r, i) => {
      t.deepEqual(r.size.slice(0, 2), r.size.slice(2), `${level} case ${i}: grid`);
      t.true(r.worst < 1e-3, `${level} case ${i}: max difference ${r.worst} px from the reference`);
      t.true(r.sameMatched, `${level} case ${i}: matched cells`);
    });
  }
});

test('estimateMotion checks its arguments', async (t) => {
  const a = new Uint8Array(64 * 48);
  await t.throwsAsync(estimateMotion(a, new Uint8Array(10), 64, 48), { code: 'ERR_SHAPE' });
  await t.throwsAsync(estimateMotion(a, new Float32Array(64 * 48), 64, 48), { code: 'ERR_INVALID_ARG' });
  await t.throwsAsync(estimateMotion(a, a, 0, 48), { code: 'ERR_INVALID_ARG' });
  await t.throwsAsync(estimateMotion(a, a, 64, 48, { stride: 0 }), { code: 'ERR_INVALID_ARG' });
  await t.throwsAsync(estimateMotion(a, a, 64, 48, { kernel: 'fast' }), { code: 'ERR_INVALID_ARG' });
  await t.throwsAsync(estimateMotion(a, a, 64, 48, { patchStride: 9 }), { code: 'ERR_INVALID_ARG' });
  await t.throwsAsync(estimateMotion(a, a, 32, 48, { linesize: 16 }), { code: 'ERR_INVALID_ARG' });
  const prior = { data: new Float32Array(2 * 8 * 6), width: 8, height: 5, stride: 8, mode: 'reference' };
  await t.throwsAsync(estimateMotion(a, a, 64, 48, { prior }), { code: 'ERR_SHAPE' });
  await t.throwsAsync(estimateMotion(a, a, 64, 48, null), { code: 'ERR_INVALID_ARG' });
  // A picture too small for one patch at half resolution: a zero field, nothing matched.
  const tiny = await estimateMotion(new Uint8Array(12 * 40), new Uint8Array(12 * 40), 12, 40, { stride: 4 });
  t.deepEqual([tiny.width, tiny.height], [3, 10]);
  t.true(tiny.data.every((v) => v === 0) && tiny.matched.every((m) => m === 0));
  // Rows with padding (linesize > width) read the same picture.
  const W = 70;
  const H = 50;
  const p0 = picture(W, H, (x, y) => [x, y]);
  const p1 = picture(W, H, (x, y) => [x + 1.5, y]);
  const padded = (p) => {
    const out = new Uint8Array(80 * H).fill(255);
    for (let y = 0; y < H; y++) out.set(p.subarray(y * W, y * W + W), y * 80);
    return out;
  };
  const plain = await estimateMotion(p0, p1, W, H);
  const withPadding = await estimateMotion(padded(p0), padded(p1), W, H, { linesize: 80 });
  t.deepEqual(Array.from(withPadding.data), Array.from(plain.data));
});

/** Mean error of the accumulated field against the fixture's known motion, over non-keyframes. */
async function accumulatedError(name, options) {
  const m = meta[name];
  const stride = 8;
  const truth = (px, py, k) => {
    if (m.motion.type === 'translate') return [k * m.motion.dx, k * m.motion.dy];
    const c = [(m.width - 1) / 2, (m.height - 1) / 2];
    const s = Math.pow(m.motion.factor, -k) - 1;
    return [(px - c[0]) * s, (py - c[1]) * s];
  };
  let sum = 0;
  let n = 0;
  const sources = new Set();
  const reader = openVideo(fixture(name), { motion: 'accumulated', stride, keyframes: 12, ...options });
  const info = await reader.open();
  for await (const f of reader) {
    sources.add(f.motionSource);
    const k = f.index - f.keyframeIndex;
    if (k === 0) continue;
    sum += fieldError(f.motion, (x, y) => truth(x, y, k));
    n++;
  }
  return { error: sum / n, sources: [...sources], info };
}

for (const [name, source, bound] of [
  ['translate-vp9.webm', 'auto', 0.5],
  ['translate-mjpeg.avi', 'auto', 0.5],
  ['translate-p.mp4', 'estimate', 0.5],
  ['translate-b.mp4', 'estimate', 0.5],
  ['zoom.mp4', 'estimate', 0.5],
]) {
  test(`known motion accumulated over the GOP: ${name}, motionSource '${source}'`, async (t) => {
    const { error, sources, info } = await accumulatedError(name, { motionSource: source });
    t.deepEqual(sources, ['estimated']);
    t.is(info.motionSource, 'estimated');
    t.true(error <= bound, `mean error ${error.toFixed(3)} px (bound ${bound})`);
    t.log(`${name}: ${error.toFixed(3)} px`);
  });
}

test('motionSource: auto reads the bitstream where there are vectors; bitstream refuses codecs without', async (t) => {
  const h264 = await accumulatedError('translate-p.mp4', {});
  t.deepEqual(h264.sources, ['bitstream']);
  t.is(h264.info.motionSource, 'bitstream');
  t.true(h264.info.motionVectors);
  const vp9 = await openVideo(fixture('translate-vp9.webm'), { motion: 'accumulated' }).open();
  t.false(vp9.motionVectors);
  t.is(vp9.motionSource, 'estimated');
  t.is((await openVideo(fixture('translate-vp9.webm')).open()).motionSource, null);
  for (const options of [{ motion: 'accumulated' }, { vectors: true }, { motion: 'reference' }]) {
    const err = await t.throwsAsync(
      collect(openVideo(fixture('translate-vp9.webm'), { ...options, motionSource: 'bitstream' })),
      { code: 'ERR_NO_MOTION_VECTORS' },
    );
    t.regex(err.message, /vp9.*'estimate'/);
  }
  t.throws(() => openVideo(fixture('translate-p.mp4'), { motionSource: 'guess' }), { code: 'ERR_INVALID_ARG' });
  t.throws(() => openVideo(fixture('translate-p.mp4'), { motionSource: 3 }), { code: 'ERR_INVALID_ARG' });
  t.throws(() => createPacketReader({ codec: 'vp9', vectors: true, motionSource: 'bitstream' }), {
    code: 'ERR_NO_MOTION_VECTORS',
  });
});

test('estimated vectors: one block per cell against the previous picture', async (t) => {
  const frames = await collect(
    openVideo(fixture('translate-vp9.webm'), { vectors: true, motion: 'reference', stride: 8 }),
  );
  t.is(frames.length, 24);
  t.is(frames[0].vectors.length, 0, 'the first picture has nothing to refer to');
  for (const f of frames.slice(1)) {
    t.is(f.motionSource, 'estimated');
    const rows = f.vectors.length / 10;
    t.is(rows, 24 * 16, `frame ${f.index}: one block per cell`);
    const dx = [];
    for (let r = 0; r < rows; r++) {
      const [source, w, h, srcX, srcY, dstX, dstY, mx, my, scale] = f.vectors.subarray(r * 10, r * 10 + 10);
      t.true(source === -1 && w === 8 && h === 8 && scale === 64 && (dstX - 4) % 8 === 0 && (dstY - 4) % 8 === 0);
      t.true(
        Math.abs(srcX - dstX - Math.round(mx / scale)) <= 1 && Math.abs(srcY - dstY - Math.round(my / scale)) <= 1,
      );
      dx.push(mx / scale);
    }
    dx.sort((a, b) => a - b);
    t.true(Math.abs(dx[dx.length >> 1] - 2.25) < 0.1, `frame ${f.index}: median dx ${dx[dx.length >> 1]}`);
    // mode 'reference': the field to the previous picture
    const { width, height, data } = f.motion;
    t.true(Math.abs(data[(height >> 1) * width + (width >> 1)] - 2.25) < 0.25);
  }
});

/** RGB frames of the fixtures' texture moving by (2.25, -1.5) per frame. */
function rgbFrames(width, height, count) {
  const frames = [];
  for (let t = 0; t < count; t++) {
    const rgb = new Uint8Array(width * height * 3);
    for (let y = 0; y < height; y++)
      for (let x = 0; x < width; x++) rgb.set(texture(x + 2.25 * t, y - 1.5 * t), 3 * (y * width + x));
    frames.push(rgb);
  }
  return frames;
}

test('raw video (.y4m) and an image sequence (frame%03d.ppm) get estimated motion', async (t) => {
  const W = 96;
  const H = 64;
  const frames = rgbFrames(W, H, 12);
  const dir = tmpDir('arseg-raw-');
  // YUV4MPEG2, 4:4:4 (BT.601 luma; the chroma planes are not read by the estimator)
  const parts = [Buffer.from(`YUV4MPEG2 W${W} H${H} F25:1 Ip A1:1 C444\n`)];
  for (const rgb of frames) {
    const yuv = Buffer.alloc(3 * W * H, 128);
    for (let i = 0; i < W * H; i++)
      yuv[i] = Math.round(16 + (219 / 255) * (0.299 * rgb[3 * i] + 0.587 * rgb[3 * i + 1] + 0.114 * rgb[3 * i + 2]));
    parts.push(Buffer.from('FRAME\n'), yuv);
  }
  fs.writeFileSync(path.join(dir, 'clip.y4m'), Buffer.concat(parts));
  // PPM (binary RGB): an image format every libav build here decodes (no zlib needed)
  frames.forEach((rgb, i) =>
    fs.writeFileSync(
      path.join(dir, `frame${String(i).padStart(3, '0')}.ppm`),
      Buffer.concat([Buffer.from(`P6\n${W} ${H}\n255\n`), Buffer.from(rgb)]),
    ),
  );
  for (const source of ['clip.y4m', 'frame%03d.ppm']) {
    const reader = openVideo(path.join(dir, source), { motion: 'accumulated', stride: 8, keyframes: 12 });
    const info = await reader.open();
    t.is(info.motionSource, 'estimated', source);
    const got = await collect(reader);
    t.is(got.length, 12, source);
    // frame 6: 13.5 px from the keyframe, so that cells 3 inside still see content it holds
    const err = fieldError(got[6].motion, () => [6 * 2.25, -6 * 1.5], 3);
    t.true(err < 0.5, `${source} (${info.codec}): frame 6, mean error ${err.toFixed(3)} px`);
    t.log(`${source} (${info.codec}): ${err.toFixed(3)} px`);
  }
  await t.throwsAsync(collect(openVideo(path.join(dir, 'none%03d.ppm'))), { code: 'ERR_NOT_FOUND' });
});

test('adaptive keyframes on estimated motion: the scene cut starts a keyframe', async (t) => {
  const frames = await collect(
    openVideo(fixture('scene-cut.mp4'), {
      motion: 'accumulated',
      motionSource: 'estimate',
      keyframes: { policy: 'adaptive', maxMotion: 1e6 },
    }),
  );
  t.deepEqual(
    frames.filter((f) => f.isKeyframe).map((f) => f.index),
    [0, 12, 18, 24],
  );
});

let seg;
test.before(async () => {
  seg = await ArSeg.load(path.join(FIXTURES, 'bundles', 'tiny-psp18'));
});
test.after.always(async () => {
  await seg?.close();
});

function relative(a, b) {
  let d = 0;
  let n = 0;
  for (let i = 0; i < a.length; i++) {
    d += (a[i] - b[i]) ** 2;
    n += b[i] ** 2;
  }
  return Math.sqrt(d / n);
}

// The VP9 and MJPEG fixtures hold the first 24 pictures of translate-p.mp4 (the same rendered
// frames): their AR frames, fused along estimated motion, must come out as the H.264 clip's do
// along its bitstream vectors, where the LR branch alone is far from it.
for (const clip of ['translate-vp9.webm', 'translate-mjpeg.avi']) {
  test(`mode 'ar' end to end on ${clip}: estimated motion, the result of the bitstream's`, async (t) => {
    const h264 = await collect(seg.segment(fixture('translate-p.mp4'), { logits: true, keyframes: 12 }));
    const ar = await collect(seg.segment(fixture(clip), { logits: true, keyframes: 12 }));
    const lr = await collect(seg.segment(fixture(clip), { logits: true, keyframes: 12, mode: 'lr' }));
    t.is(ar.length, 24);
    t.deepEqual(
      ar.map((r) => r.branch),
      ar.map((r) => (r.index % 12 === 0 ? 'hr' : 'ar')),
    );
    t.true(ar.every((r) => r.motionSource === 'estimated'));
    t.true(h264.every((r) => r.motionSource === 'bitstream'));
    for (const r of ar.filter((x) => x.branch === 'ar')) {
      const fused = relative(r.logits.data, h264[r.index].logits.data);
      const alone = relative(lr[r.index].logits.data, h264[r.index].logits.data);
      t.true(
        fused < 0.01 && alone > 0.5,
        `frame ${r.index}: AR ${fused.toFixed(4)}, LR ${alone.toFixed(4)} from the H.264 AR logits`,
      );
    }
  });
}

test("forcing the estimator on H.264 gives the bitstream's result in mode 'ar'", async (t) => {
  const bitstream = await collect(seg.segment(fixture('translate-b.mp4'), { logits: true, keyframes: 12 }));
  const estimated = await collect(
    seg.segment(fixture('translate-b.mp4'), { logits: true, keyframes: 12, motionSource: 'estimate' }),
  );
  t.true(estimated.every((r) => r.motionSource === 'estimated'));
  for (const r of estimated.filter((x) => x.branch === 'ar')) {
    const d = relative(r.logits.data, bitstream[r.index].logits.data);
    t.true(d < 0.01, `frame ${r.index}: ${d.toFixed(4)}`);
  }
  t.throws(() => seg.segment(fixture('translate-b.mp4'), { motionSource: 'vectors' }), { code: 'ERR_INVALID_ARG' });
  await t.throwsAsync(collect(seg.segment(fixture('translate-vp9.webm'), { motionSource: 'bitstream' })), {
    code: 'ERR_NO_MOTION_VECTORS',
  });
  // modes that read no motion ignore where it would come from
  const hr = await collect(seg.segment(fixture('translate-vp9.webm'), { mode: 'hr', motionSource: 'bitstream' }));
  t.is(hr.length, 24);
  t.is(hr[1].motionSource, undefined);
});
