'use strict';
// Inputs that block: a network peer that accepts and sends nothing, a FIFO with no writer, a FIFO
// whose writer stays silent. close() (of the reader or of the ArSeg) must end each promptly with a
// coded error, never hang.
const fs = require('node:fs');
const net = require('node:net');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const test = require('ava');
const { ArSeg, openVideo } = require('../dist');
const { fixture, tmpDir } = require('./helpers/fixtures');

const BUNDLE = fixture(path.join('bundles', 'tiny-psp18'));

/** Rejects with a clear message when `promise` has not settled after `ms`. */
function within(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not end within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A TCP server on 127.0.0.1 that accepts connections and never sends a byte. */
async function silentServer(t) {
  const sockets = [];
  const server = net.createServer((s) => sockets.push(s));
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => {
    for (const s of sockets) s.destroy();
    server.close();
  });
  return { port: server.address().port, connections: () => sockets.length };
}

function mkfifo(t) {
  const file = path.join(tmpDir('arseg-fifo-'), 'video.fifo');
  const r = spawnSync('mkfifo', [file], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`mkfifo failed: ${r.stderr || r.error}`);
  t.teardown(() => fs.rmSync(path.dirname(file), { recursive: true, force: true }));
  return file;
}

/** Iterates a segmentation to its end; resolves with the error it ends with (or null). */
async function drain(segmentation) {
  try {
    for await (const _ of segmentation);
    return null;
  } catch (err) {
    return err;
  }
}

test('ArSeg.close() ends a segment() blocked on a TCP peer that sends nothing', async (t) => {
  const server = await silentServer(t);
  const seg = await ArSeg.load(BUNDLE);
  const ended = drain(seg.segment(`tcp://127.0.0.1:${server.port}`));
  for (let i = 0; i < 250 && server.connections() === 0; i++) await sleep(40);
  t.is(server.connections(), 1, 'the segmentation connected');
  await sleep(200);
  const started = Date.now();
  await within(seg.close(), 5000, 'close()');
  const err = await within(ended, 5000, 'the segmentation');
  t.truthy(err, 'the segmentation ends in an error, not as a normal end');
  t.is(err.code, 'ERR_CLOSED');
  t.true(Date.now() - started < 5000);
});

test('ArSeg.close() also ends a segmentation whose info() is pending, and segment() after close() is refused', async (t) => {
  const server = await silentServer(t);
  const seg = await ArSeg.load(BUNDLE);
  const s = seg.segment(`tcp://127.0.0.1:${server.port}`);
  const info = s.info();
  const ended = drain(s);
  await sleep(200);
  await within(seg.close(), 5000, 'close()');
  const infoErr = await within(
    info.then(
      () => null,
      (e) => e,
    ),
    5000,
    'info()',
  );
  t.truthy(infoErr);
  t.true(['ERR_ABORTED', 'ERR_CLOSED'].includes(infoErr.code), infoErr.code);
  t.is((await within(ended, 5000, 'the segmentation')).code, 'ERR_CLOSED');
  t.throws(() => seg.segment(fixture('translate-p.mp4')), { code: 'ERR_CLOSED' });
});

test('a FIFO with no writer: reader.close() interrupts the open', async (t) => {
  const fifo = mkfifo(t);
  const reader = openVideo(fifo);
  const opening = reader.open().then(
    () => null,
    (e) => e,
  );
  await sleep(300);
  reader.close();
  const err = await within(opening, 5000, 'opening the FIFO');
  t.truthy(err, 'the open ends in an error');
  t.true(['ERR_ABORTED', 'ERR_CLOSED'].includes(err.code), err.code);
});

test('a FIFO with no writer: ArSeg.close() ends the segmentation', async (t) => {
  const fifo = mkfifo(t);
  const seg = await ArSeg.load(BUNDLE);
  const ended = drain(seg.segment(fifo));
  await sleep(300);
  await within(seg.close(), 5000, 'close()');
  const err = await within(ended, 5000, 'the segmentation');
  t.truthy(err);
  t.is(err.code, 'ERR_CLOSED');
});

test('a FIFO whose writer opens it and stays silent: close() interrupts the read', async (t) => {
  const fifo = mkfifo(t);
  const reader = openVideo(fifo);
  const opening = reader.open().then(
    () => null,
    (e) => e,
  );
  // the writer: opened (the reader's open sees a writer) and never written to
  const fd = await new Promise((resolve, reject) => fs.open(fifo, 'w', (err, f) => (err ? reject(err) : resolve(f))));
  t.teardown(() => fs.closeSync(fd));
  await sleep(300);
  reader.close();
  const err = await within(opening, 5000, 'probing the silent FIFO');
  t.truthy(err);
  t.true(['ERR_ABORTED', 'ERR_CLOSED'].includes(err.code), err.code);
});

test('a FIFO with a writer is read to the end like the file', async (t) => {
  const fifo = mkfifo(t);
  // MP4 needs seeking: the FIFO carries the raw H.264 fixture
  const h264 = fixture('tiny.h264');
  const fromFile = [];
  for await (const f of openVideo(h264)) fromFile.push(f.index);
  const reader = openVideo(fifo);
  const frames = (async () => {
    const out = [];
    for await (const f of reader) out.push(f.index);
    return out;
  })();
  // the writer connects after the reader started waiting for one
  await sleep(200);
  await new Promise((resolve, reject) => {
    const w = fs.createWriteStream(fifo);
    w.on('error', reject);
    w.on('close', resolve);
    fs.createReadStream(h264).pipe(w);
  });
  t.true(fromFile.length > 0);
  t.deepEqual(await within(frames, 20000, 'reading the FIFO'), fromFile);
});
