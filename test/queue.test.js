'use strict';
// The job queue (lib/queue/, ar-seg queue and worker) on a private redis-server per test: several
// worker processes, a worker killed mid-job, SIGTERM hand-back, Redis restarted mid-run,
// resubmission, bad jobs. Distributed evaluation is in queue-eval.test.js.
const fs = require('node:fs');
const path = require('node:path');
const test = require('ava');
const { decode } = require('fast-png');
const { spawnSync } = require('node:child_process');
const { ArSegError, DistanceMetrics, status, submit, Worker, waitForRun } = require('../dist');
const { jobId } = require('../dist/queue/jobs');
const { hashFile, hashBundle } = require('../dist/queue/content-hash');
const { checkTarget, redactRedisUrl } = require('../dist/queue/connection');
const { encodeFailure, decodeFailure, isInputError } = require('../dist/queue/retry-policy');
const { FIXTURES, fixture, tmpDir } = require('./helpers/fixtures');
const { startRedis, startWorker, cli, until, outputEntries, sleep, cleanup } = require('./helpers/queue');

const BUNDLE = path.join(FIXTURES, 'bundles', 'tiny-psp18');
const DEMO = path.join(__dirname, '..', 'models', 'demo', 'video.mp4');
// Short locks, so that a dead worker's job is taken over within seconds (only where a worker dies:
// on a loaded machine a 2 s lock may also expire under a live worker, which runs a job twice).
const FAST = ['--lock-duration', '2000', '--stalled-interval', '1000'];

function copy(src, dir, name = path.basename(src)) {
  const dst = path.join(dir, name);
  fs.copyFileSync(src, dst);
  return dst;
}

const starts = (w, id) => w.events.filter((e) => e.type === 'start' && (id === undefined || e.jobId === id));

function lastLine(s) {
  return s.trim().split('\n').pop();
}

function checkResultDir(t, dir, frames, { overlays = false, width, height } = {}) {
  const m = JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8'));
  t.is(m.result.frames, frames);
  const labels = fs.readdirSync(path.join(dir, 'labels')).sort();
  t.is(labels.length, frames, `${dir}: one label PNG per frame`);
  t.is(labels[0], '000000.png');
  for (const name of [labels[0], labels[labels.length - 1]]) {
    const png = decode(fs.readFileSync(path.join(dir, 'labels', name)));
    t.is(png.width, width ?? m.result.width);
    t.is(png.height, height ?? m.result.height);
  }
  if (overlays) t.is(fs.readdirSync(path.join(dir, 'overlays')).length, frames);
  const summary = JSON.parse(fs.readFileSync(path.join(dir, 'summary.json'), 'utf8'));
  t.is(summary.frames, frames);
  t.is(summary.out, dir, 'summary.json names the published directory, not the temporary one');
  return m;
}

test('job ids come from content and options; bundles hash what their manifest names; URLs and failures are checked', async (t) => {
  const dir = tmpDir('arseg-q-ids-');
  const a = copy(fixture('translate-p.mp4'), dir, 'a.mp4');
  const b = copy(fixture('translate-p.mp4'), dir, 'b.mp4');
  const c = copy(fixture('zoom.mp4'), dir, 'c.mp4');
  t.is(await hashFile(a), await hashFile(b));
  const bundle = await hashBundle(BUNDLE);
  const job = async (video, options = {}) =>
    jobId({
      kind: 'segment',
      model: { dir: BUNDLE, hash: bundle.hash },
      clip: { name: video, video, hash: await hashFile(video) },
      options: { mode: 'ar', keyframes: 12, overlay: false, flops: false, scale: 0.5, ...options },
    });
  const id = await job(a);
  t.regex(id, /^segment-[0-9a-f]{32}$/);
  t.is(await job(b), id, 'the same content under another name is the same job');
  t.not(await job(c), id);
  t.not(await job(a, { mode: 'hr' }), id);
  t.not(await job(a, { overlay: true }), id);
  await t.throwsAsync(hashFile(path.join(dir, 'nope.mp4')), { code: 'ERR_NOT_FOUND' });

  const copyDir = tmpDir('arseg-q-bundle-');
  fs.cpSync(BUNDLE, copyDir, { recursive: true });
  fs.writeFileSync(path.join(copyDir, 'NOTES.md'), 'not part of the model\n');
  t.is((await hashBundle(copyDir)).hash, bundle.hash, 'files the manifest does not name do not count');
  const bias = path.join(copyDir, 'creff', 'q_bias.npy');
  const bytes = fs.readFileSync(bias);
  bytes[bytes.length - 1] ^= 1;
  fs.writeFileSync(bias, bytes);
  t.not((await hashBundle(copyDir)).hash, bundle.hash);
  fs.rmSync(path.join(copyDir, 'arseg.json'));
  await t.throwsAsync(hashBundle(copyDir), { code: 'ERR_BUNDLE' });

  t.throws(() => checkTarget({ redis: 'http://127.0.0.1:6379' }), { code: 'ERR_INVALID_ARG' });
  t.throws(() => checkTarget({ redis: 'not a url' }), { code: 'ERR_INVALID_ARG' });
  t.throws(() => checkTarget({ redis: 'redis://127.0.0.1', queue: 'a b' }), { code: 'ERR_INVALID_ARG' });
  t.is(checkTarget({ redis: 'rediss://user:secret@redis.example:6380/2' }).queue, 'ar-seg');
  t.is(redactRedisUrl('rediss://user:s3:cr%40t@redis.example:6380/2'), 'rediss://user:***@redis.example:6380/2');
  t.is(redactRedisUrl('redis://:secret@127.0.0.1:6379'), 'redis://:***@127.0.0.1:6379');
  t.is(redactRedisUrl('redis://127.0.0.1:6379'), 'redis://127.0.0.1:6379');

  const notFound = new ArSegError('ERR_NOT_FOUND', '/x.mp4: no such file');
  t.is(encodeFailure(notFound), 'ERR_NOT_FOUND: /x.mp4: no such file');
  t.deepEqual(decodeFailure(encodeFailure(notFound)), { code: 'ERR_NOT_FOUND', message: '/x.mp4: no such file' });
  t.deepEqual(decodeFailure('job stalled more than allowable limit'), {
    code: null,
    message: 'job stalled more than allowable limit',
  });
  const enospc = Object.assign(new Error('no space left on device'), { code: 'ENOSPC' });
  t.is(encodeFailure(enospc), 'ENOSPC: no space left on device');
  t.true(isInputError(notFound));
  for (const code of ['ERR_INVALID_DATA', 'ERR_BUNDLE', 'ERR_LABELS', 'ERR_UNSUPPORTED_CODEC'])
    t.true(isInputError(new ArSegError(code, '')), code);
  for (const e of [new ArSegError('ERR_OPEN', ''), new ArSegError('ERR_CUDA_UNAVAILABLE', ''), enospc])
    t.false(isInputError(e), e.code);

  // Confusion matrices survive JSON exactly; malformed counts are refused.
  const m = new DistanceMetrics(3, 2, { ignore: [2] });
  m.add(0, [0, 1, 2, 255], [0, 0, 1, 1]).add(1, [1, 1], [1, 0]);
  const back = DistanceMetrics.fromJSON(JSON.parse(JSON.stringify(m.toJSON())));
  t.deepEqual(back.report(), m.report());
  t.throws(
    () => DistanceMetrics.fromJSON({ ...m.toJSON(), counts: [[1.5, 0, 0, 0, 0, 0, 0, 0, 0], m.toJSON().counts[1]] }),
    { code: 'ERR_INVALID_ARG' },
  );
});

test('submit refuses at once what it cannot queue: a missing file, a URL, a bad Redis URL, an unreachable Redis', async (t) => {
  const out = tmpDir('arseg-q-refuse-');
  const base = ['queue', 'submit', '--out', out, '--model', BUNDLE];
  let r = await cli([...base, path.join(out, 'nope.mp4'), '--redis', 'redis://127.0.0.1:1']);
  t.is(r.code, 3, r.stderr);
  t.regex(r.stderr, /ERR_NOT_FOUND/);
  r = await cli([...base, 'http://example.com/a.mp4', '--redis', 'redis://127.0.0.1:1']);
  t.is(r.code, 2, r.stderr);
  r = await cli([...base, fixture('tiny.h264'), '--redis', 'http://127.0.0.1:1']);
  t.is(r.code, 2, r.stderr);
  // Port 1 on 127.0.0.1: nothing listens; a few quick retries, then ERR_QUEUE (exit 10).
  r = await cli([...base, fixture('tiny.h264'), '--redis', 'redis://:secret@127.0.0.1:1', '--json']);
  t.is(r.code, 10, r.stdout + r.stderr);
  const j = JSON.parse(r.stdout);
  t.is(j.error.code, 'ERR_QUEUE');
  t.notRegex(j.error.message, /secret/, 'the password is not printed');
  r = await cli([
    'queue',
    'submit',
    fixture('tiny.h264'),
    '--out',
    out,
    '--model',
    BUNDLE,
    '--redis',
    'redis://127.0.0.1:1',
    '--eval',
  ]);
  t.is(r.code, 7, 'evaluation without labels: ERR_LABELS before anything is queued');
});

test.serial(
  'several worker processes segment a set of clips: every result once, as ar-seg segment writes it; resubmitting recomputes nothing',
  async (t) => {
    const own = cleanup(t);
    const redis = own(await startRedis());
    const dir = tmpDir('arseg-q-many-');
    const names = ['translate-p.mp4', 'translate-b.mp4', 'zoom.mp4', 'scene-cut.mp4', 'tiny.h264', 'mpeg4.mp4'];
    const clips = names.map((n) => copy(fixture(n), dir));
    const out = path.join(dir, 'out');
    const workers = [own(startWorker(redis.url)), own(startWorker(redis.url))];
    await Promise.all(workers.map((w) => w.waitFor((e) => e.type === 'ready')));

    const submitted = await cli([
      'queue',
      'submit',
      ...clips,
      '--redis',
      redis.url,
      '--out',
      out,
      '--model',
      BUNDLE,
      '--json',
    ]);
    t.is(submitted.code, 0, submitted.stderr);
    const s = JSON.parse(submitted.stdout);
    t.like(s, { ok: true, kind: 'segment', clips: 6, jobs: 6, added: 6, completed: 0 });
    const text = await cli(['queue', 'submit', ...clips, '--redis', redis.url, '--out', out, '--model', BUNDLE]);
    t.is(lastLine(text.stdout), s.run, 'the run id on the last line; the same submission is the same run');

    const done = await cli(['queue', 'results', s.run, '--redis', redis.url, '--wait', '--json']);
    t.is(done.code, 0, done.stdout + done.stderr);
    const results = JSON.parse(done.stdout);
    t.is(results.clips.length, 6);
    t.deepEqual(
      results.clips.map((c) => c.video),
      clips,
    );

    const { jobs, hidden } = outputEntries(out);
    t.is(jobs.length, 6, 'one directory per job');
    t.deepEqual(hidden, [], 'no temporary directories left');
    const started = workers.flatMap((w) => starts(w));
    t.is(started.length, 6, `each job started once:\n${workers.map((w) => w.stderr).join('\n')}`);
    t.is(new Set(started.map((e) => e.jobId)).size, 6);
    t.true(
      workers.every((w) => starts(w).length >= 1),
      'both workers took jobs',
    );
    for (const c of results.clips) checkResultDir(t, c.dir, c.frames);

    // The same files as ar-seg segment with the same options.
    const single = path.join(dir, 'single');
    const seg = await cli(['segment', clips[0], '--model', BUNDLE, '--out', single, '--no-flops', '--no-progress']);
    t.is(seg.code, 0, seg.stderr);
    const queued = results.clips[0].dir;
    for (const name of fs.readdirSync(path.join(single, 'labels')))
      t.true(
        fs.readFileSync(path.join(single, 'labels', name)).equals(fs.readFileSync(path.join(queued, 'labels', name))),
        name,
      );

    // Resubmitted: the same run, every job already done, nothing runs again.
    const mtimes = jobs.map((j) => fs.statSync(path.join(out, j, 'manifest.json')).mtimeMs);
    const again = JSON.parse(
      (await cli(['queue', 'submit', ...clips, '--redis', redis.url, '--out', out, '--model', BUNDLE, '--json']))
        .stdout,
    );
    t.like(again, { run: s.run, added: 0, completed: 6, retried: 0, pending: 0 });
    const st = await status(s.run, { redis: redis.url });
    t.like(st.counts, { completed: 6, failed: 0, waiting: 0 });
    await sleep(1500);
    t.is(workers.flatMap((w) => starts(w)).length, 6, 'no job started again');
    t.deepEqual(
      jobs.map((j) => fs.statSync(path.join(out, j, 'manifest.json')).mtimeMs),
      mtimes,
    );

    // A result deleted from disk is computed again on resubmission, and only that one.
    fs.rmSync(path.join(out, jobs[2]), { recursive: true });
    const third = JSON.parse(
      (await cli(['queue', 'submit', ...clips, '--redis', redis.url, '--out', out, '--model', BUNDLE, '--json']))
        .stdout,
    );
    t.like(third, { run: s.run, added: 1, completed: 5 });
    t.is((await cli(['queue', 'results', s.run, '--redis', redis.url, '--wait'])).code, 0);
    t.is(workers.flatMap((w) => starts(w)).length, 7);

    for (const w of workers) w.signal('SIGTERM');
    t.deepEqual(await Promise.all(workers.map((w) => w.exited)), [0, 0]);
    t.true(workers.every((w) => w.events.some((e) => e.type === 'closed')));
  },
);

test.serial(
  'a job longer than its lock keeps it (renewed while frames are processed off the main thread) and reports progress',
  async (t) => {
    const own = cleanup(t);
    const redis = own(await startRedis());
    const dir = tmpDir('arseg-q-lock-');
    // The demo clip four times over (192 frames, stream copy): a job of seconds.
    const long = path.join(dir, 'long.mp4');
    const ff = spawnSync('ffmpeg', ['-v', 'error', '-stream_loop', '3', '-i', DEMO, '-c', 'copy', long]);
    t.is(ff.status, 0, String(ff.stderr));
    const events = [];
    // Renewed every 1.25 s: a process starved for longer than the lock by a loaded machine would lose it.
    const lockDuration = 2500;
    const worker = await Worker.start({
      redis: redis.url,
      lockDuration,
      stalledInterval: 1000,
      progressInterval: 200,
      onEvent: (e) => events.push(e),
    });
    own({ stop: () => worker.close({ grace: 0, closeTimeout: 2000 }) });
    const target = { redis: redis.url };
    const r = await submit([long], { ...target, out: path.join(dir, 'out'), model: BUNDLE, mode: 'hr' });
    const seen = [];
    const st = await waitForRun(r.run, target, {
      interval: 100,
      onStatus: (s) => s.jobs[0].state === 'active' && s.jobs[0].progress && seen.push(s.jobs[0].progress),
    });
    t.like(st.jobs[0], { state: 'completed', attempts: 1 });
    t.is(events.filter((e) => e.type === 'start').length, 1, `never taken over as stalled: ${JSON.stringify(events)}`);
    t.false(events.some((e) => e.type === 'lock-lost'));
    const m = JSON.parse(fs.readFileSync(path.join(st.jobs[0].dir, 'manifest.json'), 'utf8'));
    t.is(m.result.frames, 192);
    t.true(m.execution.seconds > lockDuration / 1000, `the job (${m.execution.seconds} s) outlived its lock`);
    t.true(
      seen.some((p) => p.done > 0 && p.done < 192 && p.total === 192),
      `progress while running: ${JSON.stringify(seen)}`,
    );
    await worker.close();
  },
);

test.serial(
  'a worker killed (SIGKILL) in the middle of a job: another worker completes it, and the output is complete and valid',
  async (t) => {
    const own = cleanup(t);
    const redis = own(await startRedis());
    const dir = tmpDir('arseg-q-kill-');
    const video = copy(DEMO, dir);
    const out = path.join(dir, 'out');
    const s = JSON.parse(
      (
        await cli([
          'queue',
          'submit',
          video,
          '--redis',
          redis.url,
          '--out',
          out,
          '--model',
          BUNDLE,
          '--overlay',
          '--json',
        ])
      ).stdout,
    );
    const a = own(startWorker(redis.url, FAST));
    const started = await a.waitFor((e) => e.type === 'start');
    // Mid-job: frames done (the progress of the job in Redis) and a temporary directory being written.
    await until(async () => {
      const st = await status(s.run, { redis: redis.url });
      return st.jobs[0].state === 'active' && st.jobs[0].progress?.done >= 1;
    });
    t.is(outputEntries(out).hidden.length, 1, 'the job is writing its temporary directory');
    a.signal('SIGKILL');
    t.is(await a.exited, 'SIGKILL');
    t.false(
      a.events.some((e) => e.type === 'done'),
      'killed before it finished',
    );

    const b = own(startWorker(redis.url, FAST));
    const done = await b.waitFor((e) => e.type === 'done');
    t.is(done.jobId, started.jobId);
    t.false(done.reused);
    const r = await cli(['queue', 'results', s.run, '--redis', redis.url, '--json']);
    t.is(r.code, 0, r.stdout + r.stderr);
    const clip = JSON.parse(r.stdout).clips[0];
    t.is(clip.frames, 48);
    const m = checkResultDir(t, clip.dir, 48, { overlays: true, width: 320, height: 240 });
    t.regex(m.execution.worker, new RegExp(`:${b.pid}$`), 'written by the second worker');
    t.deepEqual(
      outputEntries(out),
      { jobs: [started.jobId], hidden: [] },
      "the dead worker's temporary directory is gone",
    );
    b.signal('SIGTERM');
    t.is(await b.exited, 0);
  },
);

test.serial(
  'SIGTERM: a running job finishes within the grace period, or is handed back to the queue after it',
  async (t) => {
    const own = cleanup(t);
    const redis = own(await startRedis());
    const dir = tmpDir('arseg-q-term-');
    const video = copy(DEMO, dir);
    const out = path.join(dir, 'out');
    // Two jobs on the 48-frame demo clip (modes ar and hr: two jobs), queued in that order.
    const runs = [];
    for (const mode of ['ar', 'hr'])
      runs.push(
        JSON.parse(
          (
            await cli([
              'queue',
              'submit',
              video,
              '--mode',
              mode,
              '--redis',
              redis.url,
              '--out',
              out,
              '--model',
              BUNDLE,
              '--overlay',
              '--json',
            ])
          ).stdout,
        ).run,
      );

    // Finishes: SIGTERM mid-job with a long grace; the job completes, no other job is taken.
    const a = own(startWorker(redis.url, ['--grace', '60']));
    const aStart = await a.waitFor((e) => e.type === 'start');
    a.signal('SIGTERM');
    t.is(await a.exited, 0);
    t.true(
      a.events.some((e) => e.type === 'done' && e.jobId === aStart.jobId && !e.reused),
      a.stderr,
    );
    t.is(starts(a).length, 1, 'no new job after SIGTERM');
    t.like((await status(runs[1], { redis: redis.url })).jobs[0], { state: 'waiting' });

    // Handed back: grace 0, SIGTERM once the job has frames done.
    const b = own(startWorker(redis.url, ['--grace', '0']));
    const bStart = await b.waitFor((e) => e.type === 'start');
    t.not(bStart.jobId, aStart.jobId);
    await until(async () => (await status(runs[1], { redis: redis.url })).jobs[0].progress?.done >= 1, 60000, 20);
    b.signal('SIGTERM');
    t.is(await b.exited, 0);
    t.true(
      b.events.some((e) => e.type === 'handed-back' && e.jobId === bStart.jobId),
      b.stderr,
    );
    t.false(b.events.some((e) => e.type === 'done'));
    t.like(
      (await status(runs[1], { redis: redis.url })).jobs[0],
      { state: 'waiting', attempts: 0 },
      'back in the queue, not counted as an attempt',
    );
    t.deepEqual(outputEntries(out), { jobs: [aStart.jobId], hidden: [] }, 'the handed-back job left nothing behind');

    const c = own(startWorker(redis.url));
    const cDone = await c.waitFor((e) => e.type === 'done');
    t.like(cDone, { jobId: bStart.jobId, frames: 48, reused: false });
    c.signal('SIGTERM');
    t.is(await c.exited, 0);
    for (const run of runs) t.is((await cli(['queue', 'results', run, '--redis', redis.url])).code, 0);
  },
);

test.serial(
  'Redis restarted in the middle of a run (AOF persistence): the run completes, every result once',
  async (t) => {
    const own = cleanup(t);
    const redis = own(await startRedis());
    const dir = tmpDir('arseg-q-restart-');
    const clips = [
      copy(DEMO, dir),
      copy(fixture('translate-p.mp4'), dir),
      copy(fixture('zoom.mp4'), dir),
      copy(fixture('scene-cut.mp4'), dir),
    ];
    const out = path.join(dir, 'out');
    const s = JSON.parse(
      (await cli(['queue', 'submit', ...clips, '--redis', redis.url, '--out', out, '--model', BUNDLE, '--json']))
        .stdout,
    );
    // A lock that outlives the restart; a short stalled-job check in case it does not.
    const w = own(startWorker(redis.url, ['--lock-duration', '15000', '--stalled-interval', '1000']));
    await w.waitFor((e) => e.type === 'done');
    const before = await status(s.run, { redis: redis.url });
    t.true(before.counts.completed >= 1 && before.counts.completed < 4, `mid-run: ${JSON.stringify(before.counts)}`);
    await redis.stop();
    await sleep(1000);
    await redis.start();
    const r = await cli(['queue', 'results', s.run, '--redis', redis.url, '--wait', '--json']);
    t.is(r.code, 0, r.stdout + r.stderr + w.stderr);
    const results = JSON.parse(r.stdout);
    t.deepEqual(
      results.clips.map((c) => c.frames),
      [48, 36, 36, 36],
    );
    t.is(outputEntries(out).jobs.length, 4);
    t.deepEqual(outputEntries(out).hidden, []);
    for (const c of results.clips) checkResultDir(t, c.dir, c.frames);
    t.true(
      w.events.some((e) => e.type === 'error'),
      'the worker saw the connection drop',
    );
    t.is(w.proc.exitCode, null, 'and kept running');
    w.signal('SIGTERM');
    t.is(await w.exited, 0);
  },
);

test.serial(
  'bad jobs (a missing file, a corrupt video, a corrupt bundle) fail at once with their code; the others finish; a transient failure is retried',
  async (t) => {
    const own = cleanup(t);
    const redis = own(await startRedis());
    const dir = tmpDir('arseg-q-bad-');
    const good = copy(fixture('translate-p.mp4'), dir, 'good.mp4');
    const gone = copy(fixture('zoom.mp4'), dir, 'gone.mp4');
    const corrupt = path.join(dir, 'corrupt.mp4');
    fs.writeFileSync(corrupt, Buffer.from('this is not a video at all. '.repeat(400)));
    const badBundle = tmpDir('arseg-q-badbundle-');
    fs.cpSync(BUNDLE, badBundle, { recursive: true });
    const hr = path.join(badBundle, 'hr_encoder.onnx');
    fs.writeFileSync(hr, fs.readFileSync(hr).subarray(0, 5000));
    const blocked = copy(fixture('tiny.h264'), dir, 'blocked.h264');
    const out = path.join(dir, 'out');
    const submit = async (clips, model = BUNDLE) =>
      JSON.parse(
        (
          await cli([
            'queue',
            'submit',
            ...clips,
            '--redis',
            redis.url,
            '--out',
            out,
            '--model',
            model,
            '--attempts',
            '3',
            '--backoff',
            '300',
            '--json',
          ])
        ).stdout,
      );
    const run1 = await submit([good, gone, corrupt]);
    const run2 = await submit([copy(fixture('mpeg4.mp4'), dir)], badBundle);
    const run3 = await submit([blocked]);
    fs.renameSync(gone, gone + '.away'); // not on the workers' storage any more
    // The blocked job's directory is taken by a file: publishing fails (ENOTDIR), a transient error.
    const blockedId = JSON.parse(fs.readFileSync(path.join(out, 'runs', `${run3.run}.json`), 'utf8')).clips[0].jobId;
    fs.writeFileSync(path.join(out, blockedId), 'in the way');

    const w = own(startWorker(redis.url));
    const retrying = await w.waitFor((e) => e.type === 'failed' && e.jobId === blockedId);
    t.true(retrying.retry, 'a file system error is retried');
    t.is(retrying.code, 'ENOTDIR');
    fs.rmSync(path.join(out, blockedId));

    for (const r of [run1, run2, run3])
      t.is((await cli(['queue', 'status', r.run, '--redis', redis.url, '--wait'])).code, 0);
    const st1 = await status(run1.run, { redis: redis.url });
    t.like(st1.counts, { completed: 1, failed: 2 });
    const byClip = Object.fromEntries(st1.jobs.map((j) => [path.basename(j.clip), j]));
    t.is(byClip['good.mp4'].state, 'completed');
    t.like(byClip['gone.mp4'], { state: 'failed', attempts: 1 });
    t.is(byClip['gone.mp4'].failure.code, 'ERR_NOT_FOUND');
    t.regex(byClip['gone.mp4'].failure.message, /gone\.mp4/);
    t.like(byClip['corrupt.mp4'], { state: 'failed', attempts: 1 });
    t.is(byClip['corrupt.mp4'].failure.code, 'ERR_INVALID_DATA');
    const st2 = await status(run2.run, { redis: redis.url });
    t.like(st2.jobs[0], { state: 'failed', attempts: 1 });
    t.is(st2.jobs[0].failure.code, 'ERR_BUNDLE');
    const st3 = await status(run3.run, { redis: redis.url });
    t.like(st3.jobs[0], { state: 'completed', attempts: 2 });
    t.is(
      w.events.filter((e) => e.type === 'start' && e.jobId === blockedId).length,
      2,
      'retried once, after the backoff',
    );

    const text = await cli(['queue', 'status', run1.run, '--redis', redis.url]);
    t.regex(text.stdout, /1 completed, 0 running, 0 waiting, 0 waiting to retry, 2 failed/);
    t.regex(text.stdout, /failed +\S*gone\.mp4: ERR_NOT_FOUND: /);
    t.regex(text.stdout, /failed +\S*corrupt\.mp4: ERR_INVALID_DATA: /);
    const res = await cli(['queue', 'results', run1.run, '--redis', redis.url, '--json']);
    t.is(res.code, 12);
    t.is(JSON.parse(res.stdout).error.code, 'ERR_RUN_FAILED');
    const partial = await cli(['queue', 'results', run1.run, '--redis', redis.url, '--partial', '--json']);
    t.is(partial.code, 0, partial.stderr);
    t.is(JSON.parse(partial.stdout).clips.length, 1);
    t.regex(partial.stderr, /2 of 3 clips left out/);

    // The file is back: resubmitting retries the failed jobs; the corrupt one fails again.
    fs.renameSync(gone + '.away', gone);
    const again = await submit([good, gone, corrupt]);
    t.like(again, { run: run1.run, completed: 1, retried: 2, added: 0 });
    t.is((await cli(['queue', 'status', run1.run, '--redis', redis.url, '--wait'])).code, 0);
    t.like((await status(run1.run, { redis: redis.url })).counts, { completed: 2, failed: 1 });
    w.signal('SIGTERM');
    t.is(await w.exited, 0);
  },
);
