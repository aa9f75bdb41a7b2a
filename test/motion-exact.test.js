'use strict';
// Exact references (patches/ffmpeg/, native/motion/reference_resolver.h) and the composition
// that follows them, on clips with known motion encoded as real encoders do by default:
// several reference frames, B-pyramids, open GOPs, HEVC (test/fixtures/README.md).
const test = require('ava');
const { openVideo, libavVersions, VECTOR_REF_NONE, VECTOR_REF_UNKNOWN } = require('../dist');
const { fixture, meta, collect } = require('./helpers/fixtures');

const exactBuild = Boolean(libavVersions().exactReferences);
const TRANSLATION = [
  'translate-refs.mp4',
  'x264-default.mp4',
  'x265-default.mp4',
  'x265-p.mp4',
  'hevc-main10.mp4',
  'hevc-wpp.mp4',
  'hevc-tiles.mp4',
];

/** Test only what the build can do: the patched libav (prebuild, scripts/setup.sh) or not. */
function patchedOnly(title, fn) {
  if (exactBuild) test(title, fn);
  else
    test(title, (t) => {
      t.log('skipped: this build links a libav without patches/ffmpeg/ (scripts/build-libav.sh builds it)');
      t.pass();
    });
}

patchedOnly('every vector names its exact reference; the vector is that many frames of the known shift', async (t) => {
  for (const name of TRANSLATION) {
    const { dx, dy } = meta[name].motion;
    const reader = openVideo(fixture(name), { vectors: true });
    const frames = await collect(reader);
    t.true(reader.motionExact, name);
    t.is(frames.length, meta[name].frames, name);
    const byDistance = new Map();
    let placeholders = 0;
    for (const f of frames) {
      const rows = f.vectors.length / 10;
      t.is(f.vectorRefs.length, rows);
      if (f.pictType === 'I') t.is(rows, 0, `${name} I-frame ${f.index} has vectors`);
      for (let r = 0; r < rows; r++) {
        const d = f.vectorRefs[r];
        if (d === VECTOR_REF_NONE) {
          placeholders++;
          continue;
        }
        t.not(d, VECTOR_REF_UNKNOWN, `${name} frame ${f.index} row ${r}: reference unknown`);
        // the reference is a frame of the clip, past or future, never the frame itself
        t.true(f.index - d >= 0 && f.index - d < frames.length, `${name} frame ${f.index}: reference ${f.index - d}`);
        if (f.pictType === 'P') t.true(d > 0, `${name}: P-frame ${f.index} predicts from the future (${d})`);
        const v = f.vectors.subarray(r * 10, r * 10 + 10);
        // blocks at the edge predict content partly outside their reference: guesses
        if (v[5] < 24 || v[6] < 24 || v[5] > meta[name].width - 24 || v[6] > meta[name].height - 24) continue;
        const list = byDistance.get(d) ?? [];
        list.push([v[7] / v[9], v[8] / v[9]]);
        byDistance.set(d, list);
      }
    }
    if (meta[name].codec === 'hevc') t.is(placeholders, 0, `${name}: HEVC exports no placeholders`);
    t.true(byDistance.size >= 2, `${name}: references at ${[...byDistance.keys()]}`);
    for (const [d, vs] of byDistance) {
      if (vs.length < 12) continue; // too few to take a median of
      const med = (c) => vs.map((v) => v[c]).sort((a, b) => a - b)[vs.length >> 1];
      // A vector against a reference d frames back describes d steps of the shift.
      t.true(
        Math.abs(med(0) - d * dx) <= 0.25 && Math.abs(med(1) - d * dy) <= 0.25,
        `${name}, distance ${d}: median vector (${med(0)}, ${med(1)}), expected (${d * dx}, ${d * dy})`,
      );
    }
  }
});

patchedOnly("references include B-frames (pyramids) and, in x265's open GOPs, the next GOP's I-frame", async (t) => {
  const frames = await collect(openVideo(fixture('x264-default.mp4'), { vectors: true }));
  const fromB = frames.some((f) =>
    Array.from(f.vectorRefs).some((d) => d !== VECTOR_REF_NONE && d !== 0 && frames[f.index - d].pictType === 'B'),
  );
  t.true(fromB, 'x264 defaults (b-pyramid normal) predict from B-frames');
  const hevc = await collect(openVideo(fixture('x265-default.mp4'), { vectors: true }));
  const leading = hevc.filter(
    (f) => f.pictType === 'B' && Array.from(f.vectorRefs).some((d) => d < 0 && hevc[f.index - d].pictType === 'I'),
  );
  t.true(leading.length > 0, 'some B-frames before an I-frame predict from it (open GOP)');
  for (const f of leading) t.false(f.isKeyframe);
});

/** Per distance to the keyframe: mean error and share of interior cells within 0.5 px. */
async function accuracy(name, options) {
  const m = meta[name];
  const stride = options.stride ?? 8;
  const perDistance = new Map();
  for await (const f of openVideo(fixture(name), { motion: 'accumulated', ...options })) {
    const k = f.index - f.keyframeIndex;
    if (k === 0) continue;
    const { width, height, data } = f.motion;
    const s = perDistance.get(k) ?? { sum: 0, within: 0, n: 0 };
    for (let i = 2; i < height - 2; i++)
      for (let j = 2; j < width - 2; j++) {
        const e = Math.hypot(
          data[i * width + j] - k * m.motion.dx,
          data[width * height + i * width + j] - k * m.motion.dy,
        );
        s.sum += e;
        s.within += e <= 0.5;
        s.n++;
      }
    perDistance.set(k, s);
  }
  void stride;
  return [...perDistance].map(([k, s]) => ({ k, mean: s.sum / s.n, within: s.within / s.n }));
}

patchedOnly(
  'accumulated to the keyframe: mean error <= 0.1 px and >= 98% of cells within 0.5 px at every distance',
  async (t) => {
    // bench/motion-accuracy.js prints the same figures (BENCHMARKS.md). The open GOP's leading
    // pictures (x265 defaults, distances 9-11) go through the estimate of where the next I-frame
    // sits (keyframe_composer.h, bridging).
    for (const name of TRANSLATION) {
      for (const { k, mean, within } of await accuracy(name, { stride: 8 })) {
        t.true(mean <= 0.1, `${name} distance ${k}: mean error ${mean.toFixed(3)} px`);
        t.true(within >= 0.98, `${name} distance ${k}: ${(100 * within).toFixed(1)}% within 0.5 px`);
      }
    }
  },
);

patchedOnly('HEVC: vectors from P and B slices; frame threads export the same vectors as one thread', async (t) => {
  for (const name of ['x265-default.mp4', 'hevc-main10.mp4', 'hevc-wpp.mp4', 'x264-default.mp4']) {
    const one = await collect(openVideo(fixture(name), { vectors: true, threads: 1 }));
    t.true(
      one.some((f) => f.pictType === 'B' && f.vectors.length > 0),
      `${name}: B-frames carry vectors`,
    );
    t.true(
      one.some((f) => f.pictType === 'P' && f.vectors.length > 0),
      `${name}: P-frames carry vectors`,
    );
    for (let round = 0; round < 2; round++) {
      const runs = await Promise.all(
        Array.from({ length: 4 }, () => collect(openVideo(fixture(name), { vectors: true, threads: 4 }))),
      );
      for (const frames of runs) {
        t.is(frames.length, one.length);
        frames.forEach((f, i) => {
          t.deepEqual(Array.from(f.vectors), Array.from(one[i].vectors), `${name} frame ${i}`);
          t.deepEqual(Array.from(f.vectorRefs), Array.from(one[i].vectorRefs), `${name} frame ${i} references`);
        });
      }
    }
  }
});

patchedOnly("HEVC vectors are the decoder's prediction units, squares of identical motion merged", async (t) => {
  // patches/ffmpeg/0002: one vector per prediction unit and list, recorded as decoded, four
  // sibling squares with the same motion merged into one; CTBs in raster order. x265's defaults
  // code square units only; rect=1:amp=1 (encoded here) adds 2NxN, Nx2N and AMP rectangles,
  // which come out whole (a quadtree over the 4x4 units cut them into squares down to 4x4).
  const { execFileSync } = require('node:child_process');
  const fs = require('node:fs');
  const os = require('node:os');
  const path = require('node:path');
  const shapes = new Set(['4x8', '8x4']);
  for (let s = 8; s <= 64; s *= 2) {
    shapes
      .add(`${s}x${s}`)
      .add(`${s}x${s / 2}`)
      .add(`${s / 2}x${s}`);
    if (s >= 16) for (const q of [s / 4, (3 * s) / 4]) shapes.add(`${s}x${q}`).add(`${q}x${s}`);
  }
  const clips = [
    [fixture('x265-default.mp4'), 64],
    [fixture('x265-p.mp4'), 64],
    [fixture('hevc-wpp.mp4'), 32],
    [fixture('hevc-zoom.mp4'), 64],
    [fixture('hevc-main10.mp4'), 64],
  ];
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'arseg-hevc-rect-'));
  const rect = path.join(dir, 'rect.mp4');
  // ffmpeg with libx265 comes with scripts/setup.sh: a failed encode fails the test
  execFileSync('ffmpeg', [
    ...['-v', 'error', '-y', '-i', fixture('zoom.mp4'), '-c:v', 'libx265', '-preset', 'medium', '-crf', '22'],
    ...['-x265-params', 'rect=1:amp=1:keyint=12:pools=none:frame-threads=1:log-level=error', rect],
  ]);
  clips.push([rect, 64]);
  try {
    for (const [file, ctb] of clips) {
      const name = path.basename(file);
      const frames = await collect(openVideo(file, { vectors: true, threads: 1 }));
      let blocks = 0;
      let rectangles = 0;
      for (const f of frames) {
        const ctbWidth = Math.ceil(f.width / ctb);
        const cells = (f.width / 4) * (f.height / 4);
        const covered = [new Uint8Array(cells), new Uint8Array(cells)];
        const motion = new Map(); // block -> its vectors and references, both lists
        let lastCtb = -1;
        const bad = [];
        for (let r = 0; r < f.vectors.length / 10; r++) {
          const [source, w, h, , , dstX, dstY, mx, my] = f.vectors.subarray(r * 10, r * 10 + 9);
          const x0 = dstX - w / 2;
          const y0 = dstY - h / 2;
          const ctbIndex = Math.floor(y0 / ctb) * ctbWidth + Math.floor(x0 / ctb);
          if (!shapes.has(`${w}x${h}`) || x0 % 4 || y0 % 4) bad.push(`shape ${w}x${h} at ${x0},${y0}`);
          if (
            Math.floor((x0 + w - 1) / ctb) !== Math.floor(x0 / ctb) ||
            Math.floor((y0 + h - 1) / ctb) !== Math.floor(y0 / ctb)
          )
            bad.push(`${w}x${h} at ${x0},${y0} crosses a CTB edge`);
          if (ctbIndex < lastCtb) bad.push(`CTB ${ctbIndex} after CTB ${lastCtb}`);
          lastCtb = ctbIndex;
          const list = source < 0 ? 0 : 1;
          for (let y = y0; y < y0 + h; y += 4)
            for (let x = x0; x < x0 + w; x += 4)
              if (covered[list][(y / 4) * (f.width / 4) + x / 4]++)
                bad.push(`list ${list}: ${w}x${h} at ${x0},${y0} overlaps`);
          const key = `${x0},${y0},${w},${h}`;
          motion.set(key, `${motion.get(key) || ''}${list}:${mx},${my},${f.vectorRefs[r]};`);
          blocks++;
          if (w !== h) rectangles++;
        }
        // no square block is the last of four sibling squares that all move alike
        for (const [key, m] of motion) {
          const [x0, y0, w, h] = key.split(',').map(Number);
          if (w !== h || w >= ctb || !(x0 & w) || !(y0 & w)) continue;
          const px = x0 - w;
          const py = y0 - w;
          const siblings = [`${px},${py}`, `${x0},${py}`, `${px},${y0}`].map((p) => motion.get(`${p},${w},${w}`));
          if (siblings.every((s) => s === m)) bad.push(`four ${w}x${w} squares at ${px},${py} move alike, unmerged`);
        }
        t.deepEqual(bad.slice(0, 3), [], `${name} frame ${f.index}`);
      }
      t.true(blocks > 100, `${name}: ${blocks} blocks`);
      if (file === rect) t.true(rectangles > 100, `${name}: ${rectangles} of ${blocks} blocks are rectangles`);
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

patchedOnly(
  'HEVC wavefronts under slice threads (a packet reader of access units): the same vectors as one thread',
  async (t) => {
    // A packet reader given access units decodes with slice threads (each frame out at once), so
    // several threads decode the CTB rows of hevc-wpp.mp4's pictures at once (wavefront), each
    // recording its own CTBs' prediction units.
    const fs = require('node:fs');
    const os = require('node:os');
    const path = require('node:path');
    const { createPacketReader } = require('../dist');
    const { splitHevcAccessUnits, hevcAnnexB } = require('./helpers/annexb');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'arseg-hevc-wpp-'));
    const raw = path.join(dir, 'hevc-wpp.hevc');
    try {
      hevcAnnexB(fixture('hevc-wpp.mp4'), raw);
      const units = splitHevcAccessUnits(fs.readFileSync(raw));
      const file = await collect(openVideo(fixture('hevc-wpp.mp4'), { vectors: true, threads: 1 }));
      t.is(units.length, file.length);
      for (const threads of [1, 4, 4]) {
        const decoder = createPacketReader({ codec: 'hevc', vectors: true, accessUnits: true, threads });
        const frames = [];
        for (const unit of units) frames.push(...(await decoder.decode(unit)));
        frames.push(...(await decoder.flush()));
        decoder.close();
        t.is(frames.length, file.length);
        frames.forEach((f, i) => {
          t.deepEqual(Array.from(f.vectors), Array.from(file[i].vectors), `threads ${threads} frame ${i}`);
          t.deepEqual(
            Array.from(f.vectorRefs),
            Array.from(file[i].vectorRefs),
            `threads ${threads} frame ${i} references`,
          );
        });
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  },
);

patchedOnly('HEVC Main10 decodes to 8-bit outputs with motion', async (t) => {
  const frames = await collect(openVideo(fixture('hevc-main10.mp4'), { rgb: true, motion: 'accumulated' }));
  t.is(frames.length, meta['hevc-main10.mp4'].frames);
  t.is(frames[0].rgb.length, 192 * 128 * 3);
  t.false(frames.some((f) => f.corrupt));
});

test('the reader says whether motion is exact, and a packet reader does too', async (t) => {
  const reader = openVideo(fixture('translate-b.mp4'), { motion: 'accumulated' });
  t.is(reader.motionExact, undefined, 'unknown before opening');
  const info = await reader.open();
  t.is(info.motionExact, exactBuild);
  t.is(reader.motionExact, exactBuild);
  reader.close();
  const mpeg = openVideo(fixture('mpeg2.mpg'), { motion: 'accumulated' });
  await mpeg.open();
  t.true(mpeg.motionExact, 'MPEG-2 references are always the nearest anchors');
  mpeg.close();
  const { createPacketReader } = require('../dist');
  t.is(createPacketReader({ codec: 'h264', vectors: true }).motionExact, exactBuild);
  t.is(createPacketReader({ codec: 'hevc' }).motionExact, exactBuild);
});

test('MPEG-2 vectors name the nearest anchors exactly, also without the patch', async (t) => {
  const frames = await collect(openVideo(fixture('mpeg2.mpg'), { vectors: true }));
  for (const f of frames.filter((g) => g.pictType === 'P'))
    t.true(
      Array.from(f.vectorRefs).every((d) => d === 1),
      `frame ${f.index}`,
    );
});

test("composition: 'official' gives whole pixels; an unknown composition is refused", async (t) => {
  const frames = await collect(
    openVideo(fixture('translate-p.mp4'), { motion: 'accumulated', composition: 'official', stride: 4 }),
  );
  for (const f of frames.slice(0, 12)) {
    t.true(
      f.motion.data.every((v) => Number.isInteger(v)),
      `frame ${f.index}`,
    );
    t.is(f.motion.width, 48);
  }
  t.throws(() => openVideo(fixture('translate-p.mp4'), { motion: 'accumulated', composition: 'nearest' }), {
    code: 'ERR_INVALID_ARG',
  });
});

patchedOnly("HEVC with tiles: every block's vector and reference as written, with frame threads too", async (t) => {
  // hevc-tiles.mp4 (test/fixtures/hevc-writer.js): three tile columns, P pictures in two slices;
  // tiles 0-1 predict from the previous picture, tile 2 (x >= 512) from the one before once the
  // GOP has it. A CTB given another slice's reference list (tile scan vs raster) shows here.
  const m = meta['hevc-tiles.mp4'];
  const split = (m.width / m.tiles.columns) * 2;
  for (const threads of [1, 4]) {
    const frames = await collect(openVideo(fixture('hevc-tiles.mp4'), { vectors: true, threads }));
    t.is(frames.length, m.frames);
    for (const f of frames) {
      const rows = f.vectors.length / 10;
      const inGop = f.index % m.gop;
      if (inGop === 0) {
        t.is(rows, 0);
        continue;
      }
      t.is(rows, (m.width / 64) * (m.height / 64), `frame ${f.index}: one vector per 64x64 CTB`);
      for (let r = 0; r < rows; r++) {
        const v = f.vectors.subarray(r * 10, r * 10 + 10);
        const d = v[5] >= split ? Math.min(inGop, 2) : 1;
        const where = `frame ${f.index} (threads ${threads}) block at ${v[5]},${v[6]}`;
        t.is(f.vectorRefs[r], d, where);
        t.deepEqual(
          [v[0], v[1], v[2], v[7] / v[9], v[8] / v[9]],
          [-1, 64, 64, d * m.motion.dx, d * m.motion.dy],
          where,
        );
      }
    }
  }
});

// Intra cells of inter pictures (FrameOptions.motionFill, issue 13): in object-intra.mp4 the
// first GOP's P-frames, four pictures from their reference, code most of a moving square intra.
// The fallback (zero motion relative to the reference) says the square stood still for those
// four pictures, and the B-frames predicting from the P-frame inherit it; the estimate finds it.
patchedOnly("motionFill 'estimate' recovers the motion of intra-coded cells that 'none' loses", async (t) => {
  const name = 'object-intra.mp4';
  const ob = meta[name].motion.object;
  const errorsOf = async (motionFill) => {
    const frames = await collect(
      openVideo(fixture(name), { motion: 'accumulated', stride: 4, vectors: true, motionFill }),
    );
    const out = [];
    for (const f of frames.slice(0, 24)) {
      const d = f.index - f.keyframeIndex;
      const x0 = ob.x - Math.round(f.index * ob.dx);
      const m = f.motion;
      const n = m.width * m.height;
      let sum = 0;
      let cells = 0;
      for (let i = 0; i < m.height; i++)
        for (let j = 0; j < m.width; j++) {
          const cx = j * 4 + 1.5;
          const cy = i * 4 + 1.5;
          if (cx < x0 + 8 || cx > x0 + ob.size - 8 || cy < ob.y + 8 || cy > ob.y + ob.size - 8) continue;
          sum += Math.hypot(m.data[i * m.width + j] - d * ob.dx, m.data[n + i * m.width + j] - d * ob.dy);
          cells++;
        }
      out.push({ type: f.pictType, d, error: sum / cells, frame: f });
    }
    return out;
  };
  // The first GOP (its P-frames intra over the square) for the figures below; the second one's
  // P-frames predict the square, and the fill has a few B-frame cells to do there.
  const estimateAll = await errorsOf('estimate');
  const estimate = estimateAll.slice(0, 12);
  const none = (await errorsOf('none')).slice(0, 12);
  // The fixture does what it is for: the square of the first P-frame is mostly intra.
  const p4 = none.find((e) => e.d === 4);
  t.is(p4.type, 'P');
  const rows = p4.frame.vectors.length / 10;
  const covered = new Set();
  const x0 = ob.x - Math.round(4 * ob.dx);
  for (let r = 0; r < rows; r++) {
    const v = p4.frame.vectors.subarray(r * 10, r * 10 + 10);
    const [bx, by] = [v[5], v[6]];
    if (bx > x0 && bx < x0 + ob.size && by > ob.y && by < ob.y + ob.size) covered.add(`${bx},${by}`);
  }
  t.true(covered.size * 16 * 16 < 0.5 * ob.size * ob.size, `inter blocks over the square: ${covered.size}`);
  const mean = (list) => list.reduce((s, e) => s + e.error, 0) / list.length;
  const moving = (list) => list.filter((e) => e.d > 0);
  t.log(
    `square, mean error over the first GOP: estimate ${mean(moving(estimate)).toFixed(2)} px, none ${mean(moving(none)).toFixed(2)} px`,
  );
  t.true(p4.error > 12, `'none' at the P-frame: ${p4.error}`);
  t.true(estimate.find((e) => e.d === 4).error < 4, 'estimate at the P-frame');
  t.true(mean(moving(estimate)) < 0.4 * mean(moving(none)));
  // Each moving picture on its own too, not only the mean: a fill matched against the wrong
  // picture (say a stale pyramid of the fill's cache, native/motion/pyramid_cache.h; the
  // selftest compares each fill with one from pyramids built afresh) is off by a step or more.
  for (const e of moving(estimate)) {
    const n = none.find((x) => x.d === e.d);
    t.true(
      e.error < 0.35 * n.error,
      `${e.type} d=${e.d}: estimate ${e.error.toFixed(2)} px, none ${n.error.toFixed(2)} px`,
    );
  }
  t.is(estimateAll.length, 24);
  for (const e of estimateAll.slice(12))
    t.true(e.error < 0.5, `second GOP, ${e.type} d=${e.d}: ${e.error.toFixed(2)} px`);
  // The keyframe's own field stays zero, and bad values are refused.
  t.is(estimate[0].error, 0);
  t.throws(() => openVideo(fixture(name), { motion: 'accumulated', motionFill: 'fallback' }), {
    code: 'ERR_INVALID_ARG',
    message: /motionFill/,
  });
});
