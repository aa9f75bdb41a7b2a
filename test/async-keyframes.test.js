'use strict';
// The asynchronous keyframe schedule (keyframeLatency 'async'): the synchronous schedule's
// labels when keyframes are ready in time; stale fusion exactly as its parts compute it; never a
// keyframe later than the frame.
const path = require('node:path');
const test = require('ava');
const ort = require('onnxruntime-node');
const { ArSeg, ErrorCodes, openVideo, composeMotion, resizeMotion, PacketQueue } = require('../dist');
const { FIXTURES, fixture, collect } = require('./helpers/fixtures');
const { splitAccessUnits } = require('./helpers/annexb');
const fs = require('node:fs');

const BUNDLE = path.join(FIXTURES, 'bundles', 'tiny-psp18');

let seg;
test.before(async () => {
  seg = await ArSeg.load(BUNDLE);
});
test.after.always(async () => {
  await seg?.close();
});

const run = (source, options) => collect(seg.segment(source, options));

function maxRelDiff(a, b) {
  let scale = 0;
  let diff = 0;
  for (let i = 0; i < a.length; i++) {
    scale = Math.max(scale, Math.abs(a[i]));
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
  }
  return diff / scale;
}

for (const video of ['translate-p.h264', 'translate-b.mp4', 'tiny.h264']) {
  test(`${video}: async with keyframes ready in time (keyframeDelay 0) gives the synchronous labels`, async (t) => {
    const sync = await run(fixture(video), { logits: true });
    const async0 = await run(fixture(video), { keyframeLatency: 'async', keyframeDelay: 0, logits: true });
    t.is(async0.length, sync.length);
    for (let i = 0; i < sync.length; i++) {
      const s = sync[i];
      const a = async0[i];
      t.is(a.index, s.index);
      t.is(a.branch, s.branch, `frame ${i}`);
      t.is(a.usedKeyframe, s.keyframeIndex);
      t.is(s.usedKeyframe, s.keyframeIndex);
      t.is(a.keyframeDistance, s.index - s.keyframeIndex);
      // The keyframe thread's session is another session of the same graph: same logits within
      // float rounding, and the same labels.
      t.true(maxRelDiff(s.logits.data, a.logits.data) < 1e-5, `frame ${i}`);
      t.deepEqual(a.labels, s.labels, `frame ${i}`);
    }
  });
}

test('with keyframeDelay S, frames before K + S are fused with the keyframe before K, exactly as CReFF computes it along the bridged field', async (t) => {
  const S = 3;
  const results = await run(fixture('translate-p.h264'), { keyframeLatency: 'async', keyframeDelay: S, logits: true });
  t.is(results.length, 36);
  for (const r of results) {
    const own = r.keyframeIndex;
    if (r.index - own >= S) {
      t.is(r.usedKeyframe, own);
      t.is(r.branch, r.isKeyframe ? 'hr' : 'ar');
    } else if (own === 0) {
      t.is(r.usedKeyframe, null, 'no keyframe before the first: LR alone');
      t.is(r.branch, 'lr');
    } else {
      t.is(r.usedKeyframe, own - 12);
      t.is(r.keyframeDistance, r.index - own + 12);
      t.is(r.branch, 'ar');
    }
    t.true(r.usedKeyframe === null || r.usedKeyframe <= r.index);
  }

  // The same fusion by hand, from the public parts: the frames as the pipeline reads them, the
  // bundle's graphs, CReFF with the native head, the field composed across keyframe 12.
  const m = seg.bundle.manifest;
  const norm = {
    mean: m.input.mean,
    std: m.input.std,
    channelOrder: m.input.channelOrder,
    multiple: m.input.sizeMultiple ?? 8,
  };
  const frames = await collect(
    openVideo(fixture('translate-p.h264'), {
      tensors: [
        { scale: 1, ...norm },
        { scale: m.lrScale, ...norm },
      ],
      motion: 'accumulated',
      stride: 4,
    }),
  );
  const encode = async (session, tensor) => {
    const out = await session.run({ [session.inputNames[0]]: new ort.Tensor('float32', tensor.data, tensor.dims) });
    const o = out[session.outputNames[0]];
    return { data: o.data, dims: o.dims };
  };
  const key = await seg.bundle.creff.prepareKeyframe(await encode(seg.bundle.hrEncoder, frames[0].tensors[0]));
  const head = seg.bundle.head;
  for (const f of [12, 13, 14]) {
    const lr = await encode(seg.bundle.lrEncoder, frames[f].tensors[1]);
    const field = composeMotion(frames[f].motion, frames[11].motion);
    const motion = resizeMotion(field, frames[f].width, frames[f].height, key.width, key.height);
    const expected = await seg.bundle.creff.run(
      lr,
      key,
      { data: motion, dims: [2, key.height, key.width] },
      { sampling: m.creff.sampling ?? 'exact', head: { weight: head.weight, bias: head.bias } },
    );
    const got = results[f].logits;
    t.deepEqual(got.dims, expected.dims);
    t.true(maxRelDiff(expected.data, got.data) < 1e-5, `frame ${f}: ${maxRelDiff(expected.data, got.data)}`);
  }
});

test('async without a delay, from a paced live source: every frame uses a keyframe no later than itself, and no later than its own', async (t) => {
  const aus = splitAccessUnits(fs.readFileSync(fixture('translate-p.h264')));
  const q = new PacketQueue();
  const segmentation = seg.segment(q, { keyframeLatency: 'async' });
  let i = 0;
  // Paced like a camera, except that the second GOP waits for the first keyframe's HR feature:
  // on a loaded machine the keyframe thread (nice 10) may not finish within a paced stream of
  // this length, and the frames after it must find it ready for the test to see fused frames.
  const timer = setInterval(() => {
    if (i === 14 && segmentation.stats().keyframesEncoded < 1) return;
    if (i < aus.length) (q.push({ data: aus[i], pts: i / 25 }), i++);
    else (clearInterval(timer), q.end());
  }, 8);
  const results = await collect(segmentation);
  clearInterval(timer);
  t.is(results.length, aus.length);
  let fused = 0;
  for (const r of results) {
    t.true(
      r.usedKeyframe === null || (r.usedKeyframe <= r.index && r.usedKeyframe <= r.keyframeIndex),
      `frame ${r.index} used ${r.usedKeyframe}`,
    );
    t.is(r.keyframeDistance, r.usedKeyframe === null ? null : r.index - r.usedKeyframe);
    t.is(r.branch === 'lr', r.usedKeyframe === null);
    t.is(r.branch === 'hr', r.usedKeyframe === r.index);
    if (r.branch === 'ar') fused++;
    t.true([0, 12, 24].includes(r.usedKeyframe) || r.usedKeyframe === null);
  }
  t.true(fused > 0, 'some frames were fused with a keyframe');
  t.log(results.map((r) => `${r.index}:${r.usedKeyframe ?? '-'}`).join(' '));
});

test('maxKeyframeDistance 0: every frame waits for its own keyframe, as the synchronous schedule does', async (t) => {
  const sync = await run(fixture('translate-p.h264'), {});
  const bounded = await run(fixture('translate-p.h264'), { keyframeLatency: 'async', maxKeyframeDistance: 0 });
  t.is(bounded.length, sync.length);
  for (let i = 0; i < sync.length; i++) {
    t.is(bounded[i].usedKeyframe, sync[i].keyframeIndex, `frame ${i}`);
    t.deepEqual(bounded[i].labels, sync[i].labels, `frame ${i}`);
  }
});

test('async options are checked', (t) => {
  const bad = [
    [{ mode: 'hr', keyframeLatency: 'async' }, /applies to mode 'ar'/],
    [{ keyframeLatency: 'later' }, /keyframeLatency/],
    [{ keyframeDelay: 2 }, /needs keyframeLatency 'async'/],
    [{ keyframeLatency: 'async', keyframeDelay: -1 }, /keyframeDelay' must be an integer of at least 0/],
    [{ keyframeLatency: 'async', keyframeDelay: 1.5 }, /keyframeDelay' must be an integer/],
    [{ keyframeLatency: 'async', acrossKeyframes: 'guess' }, /acrossKeyframes/],
    [{ maxKeyframeDistance: 12 }, /maxKeyframeDistance' needs keyframeLatency 'async'/],
    [{ keyframeLatency: 'async', keyframeDelay: 1, maxKeyframeDistance: 12 }, /without keyframeDelay/],
    [{ keyframeLatency: 'async', maxKeyframeDistance: -3 }, /maxKeyframeDistance/],
  ];
  for (const [options, message] of bad) {
    const err = t.throws(() => seg.segment(fixture('tiny.h264'), options));
    t.is(err.code, ErrorCodes.INVALID_ARG);
    t.regex(err.message, message);
  }
});

test('keyframeThreads and keyframeNice are checked at load', async (t) => {
  for (const options of [
    { keyframeThreads: 0 },
    { keyframeNice: 20 },
    { keyframeNice: -1 },
    { keyframeThreads: 1.5 },
  ]) {
    const err = await t.throwsAsync(ArSeg.load(BUNDLE, options));
    t.is(err.code, ErrorCodes.INVALID_ARG);
  }
});

/** Nice values of this process's threads (Linux). */
function threadNices() {
  return fs.readdirSync(`/proc/${process.pid}/task`).map((tid) => {
    const stat = fs.readFileSync(`/proc/${process.pid}/task/${tid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]);
  });
}

test('the keyframe thread and its ONNX Runtime threads run at the raised nice value; the rest do not', async (t) => {
  const base = require('node:os').getPriority(0);
  const by = Math.min(7, 19 - base);
  if (by < 1) {
    t.log(`this process already runs at nice ${base}: no room to raise it`);
    t.pass();
    return;
  }
  const before = threadNices().filter((n) => n === base + by).length;
  const own = await ArSeg.load(BUNDLE, { keyframePriority: 'nice', keyframeNice: by, keyframeThreads: 2 });
  try {
    const results = await collect(own.segment(fixture('tiny.h264'), { keyframeLatency: 'async', keyframeDelay: 0 }));
    t.is(results.length, 24);
    const raised = threadNices().filter((n) => n === base + by).length - before;
    // the worker thread and the intra-op pool thread ONNX Runtime made for 2 threads
    t.is(raised, 2, `threads at nice ${base + by}: ${raised}`);
  } finally {
    await own.close();
  }
});
