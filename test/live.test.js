'use strict';
// Live sources: packet sources (one access unit per message, as ROS 2 and Foxglove carry them),
// dropping frames when inference falls behind, a source that stops, and close() mid-stream.
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const test = require('ava');
const { ArSeg, ArSegError, ErrorCodes, PacketQueue } = require('../dist');
const { FIXTURES, fixture, collect } = require('./helpers/fixtures');
const { splitAccessUnits } = require('./helpers/annexb');

const BUNDLE = path.join(FIXTURES, 'bundles', 'tiny-psp18');
// translate-p.h264: 36 frames, I-frames at 0, 12, 24, no B-frames.
const AUS = splitAccessUnits(fs.readFileSync(fixture('translate-p.h264')));

let seg;
test.before(async () => {
  seg = await ArSeg.load(BUNDLE);
});
test.after.always(async () => {
  await seg?.close();
});

const packets = (from = 0, to = AUS.length) =>
  AUS.slice(from, to).map((data, i) => ({ data, pts: 1000 + (from + i) / 25, meta: { seq: from + i } }));

/** Waits until `cond()` holds (polling), or fails after `ms`. */
async function until(cond, ms = 20000) {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 5));
  }
}

test('the splitter gives one access unit per frame', (t) => {
  t.is(AUS.length, 36);
});

test('a packet source gives the same labels as the file; timestamps and meta are carried through', async (t) => {
  const file = await collect(seg.segment(fixture('translate-p.h264')));
  const live = await collect(seg.segment(packets()));
  t.is(live.length, 36);
  for (let i = 0; i < 36; i++) {
    t.is(live[i].index, i);
    t.is(live[i].pts, 1000 + i / 25, 'the packet timestamp itself, not a rounded copy');
    t.deepEqual(live[i].meta, { seq: i });
    t.is(live[i].skipped, 0);
    t.is(typeof live[i].receivedAt, 'number');
    t.deepEqual(live[i].labels, file[i].labels, `frame ${i}`);
  }
});

test('a stream joined mid-GOP waits for its first keyframe: the packets before it are skipped and counted, not errors', async (t) => {
  const segmentation = seg.segment(packets(5));
  const results = await collect(segmentation);
  t.is(results.length, 36 - 12);
  t.is(results[0].index, 0);
  t.is(results[0].pictType, 'I');
  t.is(results[0].skipped, 7, 'packets 5..11 came before the keyframe at 12');
  t.deepEqual(results[0].meta, { seq: 12 });
  t.is(results[0].pts, 1000 + 12 / 25);
  t.true(results.slice(1).every((r) => r.skipped === 0));
  const stats = segmentation.stats();
  t.is(stats.skippedBeforeKeyframe, 7);
  t.is(stats.decodeErrors, 0);
  t.is(stats.framesDecoded, 24);
});

test('a synchronous iterable works too, and packets without timestamps keep their order', async (t) => {
  const results = await collect(
    seg.segment(
      AUS.map((data) => ({ data })),
      { mode: 'lr' },
    ),
  );
  t.is(results.length, 36);
  t.true(results.every((r, i) => r.index === i && r.pts === null));
});

test('a live source that fails ends with the frames it had, then a coded error', async (t) => {
  async function* broken() {
    for (const p of packets(0, 20)) yield p;
    throw new Error('link down');
  }
  const got = [];
  const err = await t.throwsAsync(async () => {
    for await (const r of seg.segment(broken(), { keyframeLatency: 'async' })) got.push(r.index);
  });
  t.true(err instanceof ArSegError);
  t.is(err.code, ErrorCodes.READ);
  t.regex(err.message, /link down/);
  t.is(err.framesDecoded, 20);
  t.deepEqual(
    got,
    Array.from({ length: 20 }, (_, i) => i),
    'every frame decoded before the failure was segmented',
  );

  // PacketQueue.fail(): the same; an ArSegError thrown by the source keeps its code
  const q = new PacketQueue();
  for (const p of packets(0, 5)) q.push(p);
  q.fail(new ArSegError(ErrorCodes.ABORTED, 'the camera driver stopped'));
  t.false(q.push(packets(5, 6)[0]), 'a push after fail() is refused, not thrown');
  const seen = [];
  const e2 = await t.throwsAsync(async () => {
    for await (const r of seg.segment(q)) seen.push(r.index);
  });
  t.is(e2.code, ErrorCodes.ABORTED);
  t.deepEqual(seen, [0, 1, 2, 3, 4]);

  // a malformed packet is the caller's error, after the frames before it
  const malformed = [...packets(0, 3), { data: 'not bytes' }];
  const seen3 = [];
  const e3 = await t.throwsAsync(async () => {
    for await (const r of seg.segment(malformed)) seen3.push(r.index);
  });
  t.is(e3.code, ErrorCodes.INVALID_ARG);
  t.regex(e3.message, /packet 3/);
  t.deepEqual(seen3, [0, 1, 2]);
});

test('a live source that ends mid-GOP ends normally with all its frames', async (t) => {
  const results = await collect(seg.segment(packets(0, 17), { keyframeLatency: 'async', keyframeDelay: 0 }));
  t.deepEqual(
    results.map((r) => r.index),
    Array.from({ length: 17 }, (_, i) => i),
  );
});

test('packet source options are checked', (t) => {
  for (const [options, re] of [
    [{ drop: 'oldest' }, /drop/],
    [{ codec: '' }, /codec/],
    [{ accessUnits: 'yes' }, /accessUnits/],
  ]) {
    const err = t.throws(() => seg.segment(packets(), options));
    t.is(err.code, ErrorCodes.INVALID_ARG);
    t.regex(err.message, re);
  }
  t.is(t.throws(() => seg.segment({ notASource: true })).code, ErrorCodes.INVALID_ARG);
  const err = t.throws(() => new PacketQueue().push({ data: [1, 2] }));
  t.is(err.code, ErrorCodes.INVALID_ARG);
});

/**
 * Drives a drop-'latest' segmentation by hand: pushes packets while the consumer is busy, waits
 * until the intake has decoded them, then takes the next result (the newest frame).
 */
async function dropScenario(options, batches) {
  const q = new PacketQueue();
  const segmentation = seg.segment(q, { drop: 'latest', ...options });
  const it = segmentation[Symbol.asyncIterator]();
  const results = [];
  let pushed = 0;
  for (const [to, takes] of batches) {
    for (; pushed < to; pushed++) q.push(packets(pushed, pushed + 1)[0]);
    // The first next() starts the intake; later ones wait until it has decoded what was pushed.
    if (pushed > batches[0][0]) await until(() => segmentation.stats().framesDecoded >= to);
    const next = it.next();
    results.push((await next).value);
    for (let k = 1; k < takes; k++) results.push((await it.next()).value);
  }
  q.end();
  for (;;) {
    const r = await it.next();
    if (r.done) break;
    results.push(r.value);
  }
  return { results, stats: segmentation.stats() };
}

test("drop 'latest', synchronous keyframes: only the newest frame is segmented, the newest keyframe is kept, labels as without dropping", async (t) => {
  const all = await collect(seg.segment(packets()));
  // 0 alone; then 1..14 arrive while busy: keyframe 12 is kept, 14 is the newest; then the rest.
  const { results, stats } = await dropScenario({}, [
    [1, 1],
    [15, 2],
    [36, 2],
  ]);
  // keyframe 24 falls between 14 and 35: the synchronous schedule keeps it too
  t.deepEqual(
    results.map((r) => [r.index, r.skipped, r.branch]),
    [
      [0, 0, 'hr'],
      [12, 11, 'hr'],
      [14, 1, 'ar'],
      [24, 9, 'hr'],
      [35, 10, 'ar'],
    ],
  );
  t.is(
    results.reduce((s, r) => s + r.skipped, 0) + results.length,
    36,
    'every frame is segmented or counted as skipped',
  );
  t.is(stats.framesDecoded, 36, 'every frame was decoded');
  t.is(stats.framesSkipped, 31);
  for (const r of results) t.deepEqual(r.labels, all[r.index].labels, `frame ${r.index}`);
});

test("drop 'latest', synchronous keyframes: a keyframe is dropped once a newer one has arrived", async (t) => {
  const all = await collect(seg.segment(packets()));
  // 1..30 arrive while busy: keyframe 12 is superseded by 24; 24 and the newest, 30, remain
  const { results } = await dropScenario({}, [
    [1, 1],
    [31, 2],
    [36, 1],
  ]);
  t.deepEqual(
    results.map((r) => [r.index, r.skipped, r.branch]),
    [
      [0, 0, 'hr'],
      [24, 23, 'hr'],
      [30, 5, 'ar'],
      [35, 4, 'ar'],
    ],
  );
  for (const r of results) t.deepEqual(r.labels, all[r.index].labels, `frame ${r.index}`);
});

test("drop 'latest', asynchronous keyframes: a dropped frame's motion still bridges to the older keyframe", async (t) => {
  const options = { keyframeLatency: 'async', keyframeDelay: 3 };
  const all = await collect(seg.segment(packets(), options));
  // 0; then 1..14 arrive while busy (11, the bridge of keyframe 12, is dropped); 14 < 12 + 3
  // must be fused with keyframe 0 along 11's field.
  const { results } = await dropScenario(options, [
    [1, 1],
    [15, 1],
    [36, 1],
  ]);
  t.deepEqual(
    results.map((r) => [r.index, r.skipped, r.usedKeyframe]),
    [
      [0, 0, null],
      [14, 13, 0],
      [35, 20, 24],
    ],
  );
  for (const r of results)
    t.deepEqual(r.labels, all[r.index].labels, `frame ${r.index}: the same labels as without dropping`);
});

/** Runs a script in a child process: it must finish by itself (no handle left open) in time. */
function runChild(script, ms = 60000) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', script], {
      cwd: path.join(__dirname, '..'),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`the child did not exit within ${ms} ms (a handle left open?)\n${out}\n${err}`));
    }, ms);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, out, err });
    });
  });
}

for (const [name, options] of [
  ['synchronous', {}],
  ['asynchronous, a keyframe encoding', { keyframeLatency: 'async' }],
  ['asynchronous, waiting for a keyframe', { keyframeLatency: 'async', keyframeDelay: 30 }],
  ["drop 'latest'", { drop: 'latest' }],
]) {
  test(`close() during a live run (${name}) settles everything: the loop ends with ERR_CLOSED, nothing is left running`, async (t) => {
    const script = `
      const fs = require('node:fs');
      const { ArSeg, PacketQueue } = require('./dist');
      const { splitAccessUnits } = require('./test/helpers/annexb');
      const aus = splitAccessUnits(fs.readFileSync('test/fixtures/translate-p.h264'));
      (async () => {
        const seg = await ArSeg.load('test/fixtures/bundles/tiny-psp18');
        const q = new PacketQueue();
        for (let i = 0; i < 14; i++) q.push({ data: aus[i], pts: i / 25 }); // and then nothing more: a stalled camera
        const got = [];
        let closing = null;
        let error = null;
        try {
          for await (const r of seg.segment(q, ${JSON.stringify(options)})) {
            got.push(r.index);
            if (got.length === 3) closing = seg.close();
          }
        } catch (err) {
          error = err;
        }
        await closing;
        await seg.close(); // idempotent
        let after = null;
        try { seg.segment(q); } catch (err) { after = err.code; }
        console.log(JSON.stringify({ got, code: error && error.code, after, pushAccepted: q.push({ data: aus[14] }) }));
      })().catch((err) => { console.error(err); process.exit(3); });
    `;
    const { code, signal, out, err } = await runChild(script);
    t.is(signal, null, err);
    t.is(code, 0, err);
    const r = JSON.parse(out.trim().split('\n').pop());
    t.is(r.code, ErrorCodes.CLOSED);
    t.is(r.after, ErrorCodes.CLOSED);
    t.true(r.got.length >= 1 && r.got.length <= 3, JSON.stringify(r.got));
    t.false(r.pushAccepted, 'the source was stopped');
  });
}

test('breaking out of a live run stops its intake; the ArSeg stays usable', async (t) => {
  const q = new PacketQueue();
  for (const p of packets(0, 10)) q.push(p);
  for await (const r of seg.segment(q, { keyframeLatency: 'async' })) if (r.index === 2) break;
  t.false(q.push(packets(10, 11)[0]), 'the source was released');
  const again = await collect(seg.segment(packets(0, 13), { keyframeLatency: 'async', keyframeDelay: 0 }));
  t.is(again.length, 13);
});

test('close() also ends a segmentation that was never iterated: its source is released, its loop ends with ERR_CLOSED', async (t) => {
  const own = await ArSeg.load(BUNDLE);
  const q = new PacketQueue();
  t.true(q.push(packets(0, 1)[0]));
  const segmentation = own.segment(q, { keyframeLatency: 'async' });
  await own.close();
  t.false(q.push(packets(1, 2)[0]), 'the source was released by close()');
  const err = await t.throwsAsync(async () => {
    for await (const r of segmentation) t.fail(`frame ${r.index} after close()`);
  });
  t.is(err.code, ErrorCodes.CLOSED);
});
