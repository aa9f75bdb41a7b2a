'use strict';
// Closing a worker never hangs: with its Redis gone, Worker.close() gives up after the grace
// period and closeTimeout with ERR_QUEUE, and leaves nothing (connection, timer) that would keep
// the user's process alive; `ar-seg worker` then exits with ERR_QUEUE's code on SIGTERM.
const fs = require('node:fs');
const path = require('node:path');
const { spawn } = require('node:child_process');
const test = require('ava');
const { submit, status, Worker } = require('../dist');
const { FIXTURES, tmpDir } = require('./helpers/fixtures');
const { startRedis, startWorker, until, within, sleep, cleanup } = require('./helpers/queue');

const BUNDLE = path.join(FIXTURES, 'bundles', 'tiny-psp18');
const DEMO = path.join(__dirname, '..', 'models', 'demo', 'video.mp4');

test('Worker.close() with Redis gone: ERR_QUEUE after closeTimeout, and the process then ends by itself', async (t) => {
  const own = cleanup(t);
  const redis = own(await startRedis());
  const child = spawn(process.execPath, [path.join(__dirname, 'helpers', 'worker-close-child.js'), redis.url], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  own({ kill: () => child.kill('SIGKILL') });
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (err += d));
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve(code ?? signal)));
  await until(() => out.includes('ready\n') || child.exitCode !== null, 60000);
  t.true(out.includes('ready\n'), err);
  redis.kill();
  child.stdin.write('close\n');
  // 1 s of closeTimeout, then the connections are dropped at once: well within 15 s even on a
  // loaded machine; a worker that kept reconnecting would keep the process alive forever.
  t.is(await within(exited, 15000, 'still running'), 0, `${out}\n${err}`);
  const outcome = JSON.parse(out.split('\n')[1]);
  t.is(outcome.code, 'ERR_QUEUE', out);
  t.regex(outcome.message, /did not answer within 1000 ms/);
  t.true(outcome.ms < 10000, `close took ${outcome.ms} ms`);
});

test('Redis gone in the middle of a job: close() stops the job and rejects with ERR_QUEUE within its bound', async (t) => {
  const own = cleanup(t);
  const redis = own(await startRedis());
  const dir = tmpDir('arseg-q-close-');
  const video = path.join(dir, 'demo.mp4');
  fs.copyFileSync(DEMO, video);
  const events = [];
  const worker = await Worker.start({ redis: redis.url, progressInterval: 50, onEvent: (e) => events.push(e) });
  own({ stop: () => worker.close({ grace: 0, closeTimeout: 1000 }) });
  const target = { redis: redis.url };
  const r = await submit([video], { ...target, out: path.join(dir, 'out'), model: BUNDLE, mode: 'hr' });
  await until(async () => (await status(r.run, target)).jobs[0].progress?.done >= 1, 60000, 20);
  redis.kill();
  const t0 = Date.now();
  const e = await t.throwsAsync(worker.close({ grace: 0, closeTimeout: 1000 }), { code: 'ERR_QUEUE' });
  t.regex(e.message, /1 running job\(s\) go back to the queue when their lock expires/);
  t.true(Date.now() - t0 < 10000, `close took ${Date.now() - t0} ms`);
  t.is(worker.running, 0, 'the job was stopped');
  t.false(
    events.some((x) => x.type === 'done'),
    'stopped before it finished',
  );
  t.is(events.at(-1).type, 'closed');
  t.deepEqual(
    fs.readdirSync(path.join(dir, 'out')).filter((n) => n.startsWith('.')),
    [],
    'its temporary directory is gone',
  );
  // Closing again gives the same outcome, at once.
  await t.throwsAsync(worker.close(), { code: 'ERR_QUEUE' });
});

test('ar-seg worker: SIGTERM with Redis gone exits with ERR_QUEUE (exit 10) instead of waiting for it', async (t) => {
  const own = cleanup(t);
  const redis = own(await startRedis());
  const w = own(startWorker(redis.url, ['--grace', '0']));
  await w.waitFor((e) => e.type === 'ready');
  redis.kill();
  // Between two reconnection attempts (the next one 1 s after a refused one): where BullMQ's
  // own close would wait forever.
  await w.waitFor((e) => e.type === 'error' && /ECONNREFUSED/.test(e.message));
  await sleep(100);
  w.signal('SIGTERM');
  // --grace 0, then the worker's default closeTimeout (10 s)
  t.is(await within(w.exited, 40000, 'still running'), 10, w.stderr);
  t.regex(w.stderr, /"code":"ERR_QUEUE"/);
  t.true(w.events.some((e) => e.type === 'closed'));
});
