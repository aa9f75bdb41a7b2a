'use strict';
// Distributed evaluation: clips evaluated by separate workers (a process and the typed API's
// Worker in this process), their confusion matrices summed by `results`, must give exactly the
// report of `ar-seg eval` / evaluate() on one machine, to the last digit.
const fs = require('node:fs');
const path = require('node:path');
const test = require('ava');
const { encode } = require('fast-png');
const { ArSeg, submit, Worker, status, results, waitForRun, evaluate } = require('../dist');
const { FIXTURES, fixture, tmpDir } = require('./helpers/fixtures');
const { startRedis, startWorker, cli, cleanup } = require('./helpers/queue');

const BUNDLE = path.join(FIXTURES, 'bundles', 'tiny-psp18');
const pad = (i) => String(i).padStart(6, '0');

/**
 * Copies `video` into `dir` as `name` and writes labels/ from the tiny bundle's predictions in
 * `mode`, edited pixel by pixel so that the IoUs are fractions (some pixels another class, some
 * ignored).
 */
async function labelledClip(seg, video, dir, name, mode, edit) {
  fs.mkdirSync(path.join(dir, 'labels'), { recursive: true });
  const file = path.join(dir, name);
  fs.copyFileSync(video, file);
  for await (const r of seg.segment(file, { mode, keyframes: 12 })) {
    const labels = Uint8Array.from(r.labels, (v, i) => edit(v, i, r.index));
    fs.writeFileSync(
      path.join(dir, 'labels', `${pad(r.index)}.png`),
      encode({ width: r.width, height: r.height, data: labels, depth: 8, channels: 1 }),
    );
  }
  return file;
}

/** A dataset (splits.json, two clips in split 'test', a declared GOP that differs from L) and a single labelled video. */
let made;
function clips() {
  made ??= (async () => {
    const root = tmpDir('arseg-qeval-');
    const seg = await ArSeg.load(BUNDLE);
    const ds = path.join(root, 'ds');
    fs.mkdirSync(ds);
    fs.writeFileSync(path.join(ds, 'splits.json'), JSON.stringify({ test: ['a', 'b'], gop: 10 }));
    await labelledClip(seg, fixture('translate-p.mp4'), path.join(ds, 'test', 'a'), 'video.mp4', 'hr', (v, i) =>
      i % 17 === 0 ? 255 : i % 5 === 0 ? (v + 1) % 11 : v,
    );
    await labelledClip(seg, fixture('zoom.mp4'), path.join(ds, 'test', 'b'), 'video.mp4', 'ar', (v, i, f) =>
      i % 7 === 0 ? 11 : (i + f) % 3 === 0 ? 0 : v,
    );
    const tiny = await labelledClip(seg, fixture('tiny.h264'), path.join(root, 'tiny'), 'tiny.h264', 'lr', (v, i) =>
      i % 4 === 0 ? 3 : v,
    );
    await seg.close();
    return { root, inputs: [ds, tiny] };
  })();
  return made;
}

function withoutSeconds(report) {
  const { seconds: _seconds, ...rest } = report;
  return rest;
}

test.serial(
  'distributed eval (two workers) equals ar-seg eval on one machine exactly: JSON report and Markdown table',
  async (t) => {
    const { root, inputs } = await clips();
    const own = cleanup(t);
    const redis = own(await startRedis());
    const out = path.join(root, 'out-cli');
    const single = await cli([
      'eval',
      ...inputs,
      '--model',
      BUNDLE,
      '--json',
      '--no-progress',
      '--out',
      path.join(root, 'single.md'),
    ]);
    t.is(single.code, 0, single.stderr);

    const s = await cli([
      'queue',
      'submit',
      '--eval',
      ...inputs,
      '--redis',
      redis.url,
      '--out',
      out,
      '--model',
      BUNDLE,
    ]);
    t.is(s.code, 0, s.stderr);
    const run = s.stdout.trim().split('\n').pop();
    t.regex(run, /^run-[0-9a-f]{20}$/);
    const early = await cli(['queue', 'results', run, '--redis', redis.url, '--json']);
    t.is(early.code, 11, 'unfinished: exit 11');
    t.is(JSON.parse(early.stdout).error.code, 'ERR_RUN_UNFINISHED');

    // One worker process and one Worker of the typed API in this process.
    const proc = own(startWorker(redis.url));
    const events = [];
    const api = await Worker.start({ redis: redis.url, onEvent: (e) => events.push(e) });
    own({ stop: () => api.close({ grace: 0, closeTimeout: 2000 }) });
    await waitForRun(run, { redis: redis.url }, { interval: 200 });
    await api.close();
    proc.signal('SIGTERM');
    t.is(await proc.exited, 0);
    const done = [...events.filter((e) => e.type === 'done'), ...proc.events.filter((e) => e.type === 'done')];
    t.is(done.length, 3, 'three clips, each evaluated once');

    const merged = await cli([
      'queue',
      'results',
      run,
      '--redis',
      redis.url,
      '--json',
      '--out',
      path.join(root, 'merged.md'),
    ]);
    t.is(merged.code, 0, merged.stderr);
    const a = JSON.parse(single.stdout);
    const b = JSON.parse(merged.stdout);
    t.deepEqual(withoutSeconds(b), withoutSeconds(a));
    t.is(b.modes.ar.mean, a.modes.ar.mean);
    t.true(a.modes.ar.mean > 0 && a.modes.ar.mean < 1, 'fractional IoUs: the comparison is not of 0s and 1s');
    t.is(a.warnings.length, 1, "the dataset's GOP 10 against L = 12");
    t.is(fs.readFileSync(path.join(root, 'merged.md'), 'utf8'), fs.readFileSync(path.join(root, 'single.md'), 'utf8'));
    t.is(merged.stderr, single.stderr, 'the same warnings');
    t.regex(single.stderr, /GOP is 10/);
  },
);

test.serial(
  'the typed API: submit, Worker, status, results with options (modes, interval) equal evaluate()',
  async (t) => {
    const { root, inputs } = await clips();
    const own = cleanup(t);
    const redis = own(await startRedis());
    const target = { redis: redis.url, queue: 'api-test' };
    const o = { modes: ['ar', 'hr'], interval: 6 };
    const r = await submit(inputs, { ...target, out: path.join(root, 'out-api'), model: BUNDLE, eval: true, ...o });
    t.like(r, { kind: 'eval', clips: 3, jobs: 3, added: 3 });
    await t.throwsAsync(results(r.run, target), { code: 'ERR_RUN_UNFINISHED' });
    const worker = await Worker.start({ ...target, concurrency: 2 });
    own({ stop: () => worker.close({ grace: 0, closeTimeout: 2000 }) });
    const st = await waitForRun(r.run, target, { interval: 100 });
    t.like(st.counts, { completed: 3, failed: 0 });
    t.is(st.fraction, 1);
    const merged = await results(r.run, target);
    t.is(merged.kind, 'eval');
    const single = await evaluate(inputs, { model: BUNDLE, ...o });
    t.deepEqual(Object.keys(merged.report.modes), ['hr', 'ar']);
    t.is(merged.report.interval, 6);
    t.deepEqual(
      withoutSeconds(JSON.parse(JSON.stringify(merged.report))),
      withoutSeconds(JSON.parse(JSON.stringify(single))),
    );
    // Another queue on the same Redis does not see this run.
    await t.throwsAsync(status(r.run, { redis: redis.url }), { code: 'ERR_RUN_NOT_FOUND' });
    await worker.close();
  },
);
