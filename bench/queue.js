#!/usr/bin/env node
'use strict';
/*
 * The job queue on one machine: clips per minute with 1 and 2 worker processes, and the queue's
 * own overhead per job (submit to start, finish to result) against the segmentation time.
 *
 *   node bench/queue.js [--clips 6] [--rounds 2] [--model models/default] [--overhead 6] [--json FILE]
 *
 * A private redis-server (Debian's, AOF on as in production) on 127.0.0.1. The clips are the demo
 * clip (320x240, 48 frames, H.264) remuxed with ffmpeg under a different title each: other bytes,
 * so other jobs, and the same work. Workers are started and warmed up (one job loads the model)
 * before the clock starts. Throughput configurations are interleaved round by round and the
 * median kept (the machine is shared).
 */
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { submit, waitForRun } = require('../dist');
const { startRedis, startWorker } = require('../test/helpers/queue');

const args = process.argv.slice(2);
const arg = (name, fallback) => (args.includes(name) ? args[args.indexOf(name) + 1] : fallback);
const ROOT = path.join(__dirname, '..');
const model = path.resolve(arg('--model', path.join(ROOT, 'models', 'default')));
const nClips = Number(arg('--clips', 6));
const rounds = Number(arg('--rounds', 2));
const nOverhead = Number(arg('--overhead', 6));
const jsonOut = arg('--json', null);
const cores = os.availableParallelism();

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/** `count` copies of the demo clip with distinct bytes (a title each), remuxed without re-encoding. */
function makeClips(dir, prefix, count) {
  const src = path.join(ROOT, 'models', 'demo', 'video.mp4');
  return Array.from({ length: count }, (_, i) => {
    const file = path.join(dir, `${prefix}-${i}.mp4`);
    const r = spawnSync('ffmpeg', [
      '-v',
      'error',
      '-y',
      '-i',
      src,
      '-c',
      'copy',
      '-metadata',
      `title=${prefix}-${i}`,
      file,
    ]);
    if (r.status !== 0) throw new Error(`ffmpeg: ${r.stderr}`);
    return file;
  });
}

async function startWorkers(url, queue, n, threads) {
  const ws = Array.from({ length: n }, () => startWorker(url, ['--queue', queue, '--threads', String(threads)]));
  await Promise.all(ws.map((w) => w.waitFor((e) => e.type === 'ready')));
  return ws;
}

/** CPU seconds (user + system) a process has used so far, from /proc. */
function cpuSeconds(pid) {
  const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  // utime and stime are fields 14 and 15 of stat, 12 and 13 after the ') ' split.
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

async function stopWorkers(ws) {
  for (const w of ws) w.signal('SIGTERM');
  await Promise.all(ws.map((w) => w.exited));
}

async function warmUp(url, queue, ws, dir, clips) {
  // One job per worker loads its model; each worker takes one (they are idle and blocking on the queue).
  const r = await submit(clips.slice(0, ws.length), { redis: url, queue, out: dir, model });
  await waitForRun(r.run, { redis: url, queue }, { interval: 50 });
}

(async () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'arseg-bench-queue-'));
  const redis = await startRedis();
  const configs = [
    { workers: 1, threads: cores },
    { workers: 2, threads: Math.max(1, cores / 2) },
    { workers: 2, threads: cores },
  ];
  const measured = configs.map(() => []);
  const cpu = configs.map(() => []);
  try {
    let seq = 0;
    for (let round = 0; round < rounds; round++) {
      for (let c = 0; c < configs.length; c++) {
        const { workers, threads } = configs[c];
        const queue = `bench-${seq++}`;
        const ws = await startWorkers(redis.url, queue, workers, threads);
        await warmUp(redis.url, queue, ws, path.join(tmp, `${queue}-warm`), makeClips(tmp, `${queue}-warm`, workers));
        const clips = makeClips(tmp, queue, nClips);
        const cpu0 = ws.reduce((s, w) => s + cpuSeconds(w.pid), 0);
        const t0 = Date.now();
        const r = await submit(clips, { redis: redis.url, queue, out: path.join(tmp, queue), model });
        const st = await waitForRun(r.run, { redis: redis.url, queue }, { interval: 50 });
        const seconds = (Date.now() - t0) / 1000;
        cpu[c].push((ws.reduce((s, w) => s + cpuSeconds(w.pid), 0) - cpu0) / nClips);
        await stopWorkers(ws);
        if (st.counts.completed !== nClips) throw new Error(`${queue}: ${JSON.stringify(st.counts)}`);
        measured[c].push(seconds);
        console.error(
          `round ${round + 1}: ${workers} worker(s) x ${threads} thread(s): ${nClips} clips in ${seconds.toFixed(1)} s, ${cpu[c][cpu[c].length - 1].toFixed(2)} CPU s per clip`,
        );
      }
    }

    // Overhead per job: one warm worker, one job at a time.
    const queue = 'bench-overhead';
    const ws = await startWorkers(redis.url, queue, 1, cores);
    await warmUp(redis.url, queue, ws, path.join(tmp, 'overhead-warm'), makeClips(tmp, 'overhead-warm', 1));
    const { Queue, QueueEvents } = require('bullmq');
    const events = new QueueEvents(queue, { connection: { url: redis.url } });
    await events.waitUntilReady();
    const q = new Queue(queue, { connection: { url: redis.url } });
    const rows = [];
    for (const clip of makeClips(tmp, 'overhead', nOverhead)) {
      const out = path.join(tmp, 'overhead');
      let seen;
      const t0 = Date.now();
      const completed = new Promise((resolve) => {
        const on = ({ jobId }) => {
          seen = Date.now();
          events.off('completed', on);
          resolve(jobId);
        };
        events.on('completed', on);
      });
      const r = await submit([clip], { redis: redis.url, queue, out, model });
      const submitted = Date.now();
      const id = await completed;
      const job = await q.getJob(id);
      const m = JSON.parse(fs.readFileSync(path.join(out, id, 'manifest.json'), 'utf8'));
      const started = Date.parse(m.execution.startedAt);
      const finished = Date.parse(m.execution.finishedAt);
      rows.push({
        submitCall: submitted - t0,
        submitToStart: started - t0,
        pickup: job.processedOn - job.timestamp,
        // From the execution's start to the end of segmentation, less the segmentation: the input
        // hash check, the model from the pool, the temporary directory, summary.json again.
        beforeAfter: m.execution.seconds * 1000 - m.result.seconds * 1000,
        segmentation: m.result.seconds * 1000,
        // manifest.json, flushing every file, the rename; then BullMQ's move to completed.
        publish: job.finishedOn - finished,
        notify: seen - job.finishedOn,
        finishToResult: seen - finished,
        run: r.run,
      });
    }
    await q.close();
    await events.close();
    await stopWorkers(ws);

    const out = {
      date: new Date().toISOString(),
      cores,
      model: path.relative(ROOT, model),
      clip: 'models/demo/video.mp4 (320x240, 48 frames), remuxed copies',
      clips: nClips,
      throughput: configs.map((c, i) => ({
        ...c,
        seconds: measured[i],
        medianSeconds: median(measured[i]),
        clipsPerMinute: (60 * nClips) / median(measured[i]),
        cpuSecondsPerClip: median(cpu[i]),
      })),
      overheadMs: Object.fromEntries(
        [
          'submitCall',
          'submitToStart',
          'pickup',
          'beforeAfter',
          'segmentation',
          'publish',
          'notify',
          'finishToResult',
        ].map((k) => [k, median(rows.map((r) => r[k]))]),
      ),
      overheadRows: rows,
    };
    console.log(`model ${out.model}, ${nClips} clips of ${out.clip}, ${cores} cores, median of ${rounds} rounds`);
    console.log(
      '| workers x ONNX Runtime threads | seconds | clips per minute | vs 1 worker | CPU seconds per clip (workers) |',
    );
    console.log('|---|---:|---:|---:|---:|');
    for (const t of out.throughput)
      console.log(
        `| ${t.workers} x ${t.threads} | ${t.medianSeconds.toFixed(1)} | ${t.clipsPerMinute.toFixed(1)} | ${(t.clipsPerMinute / out.throughput[0].clipsPerMinute).toFixed(2)}x | ${t.cpuSecondsPerClip.toFixed(2)} |`,
      );
    const o = out.overheadMs;
    console.log(`\nper job (median of ${nOverhead}, one warm worker, one job at a time), ms:`);
    console.log(
      '| submit() call | submit to start | of which queue pickup | worker, besides segmenting | segmentation | finish to result seen | of which publish + complete | of which event |',
    );
    console.log('|---:|---:|---:|---:|---:|---:|---:|---:|');
    console.log(
      `| ${o.submitCall.toFixed(0)} | ${o.submitToStart.toFixed(0)} | ${o.pickup.toFixed(0)} | ${o.beforeAfter.toFixed(0)} | ${o.segmentation.toFixed(0)} | ${o.finishToResult.toFixed(0)} | ${o.publish.toFixed(0)} | ${o.notify.toFixed(0)} |`,
    );
    const overhead = o.submitToStart + o.beforeAfter + o.finishToResult;
    console.log(
      `queue overhead per job ${overhead.toFixed(0)} ms against ${o.segmentation.toFixed(0)} ms of segmentation (${((100 * overhead) / o.segmentation).toFixed(1)}%)`,
    );
    if (jsonOut) fs.writeFileSync(jsonOut, JSON.stringify(out, null, 2) + '\n');
  } finally {
    redis.kill();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
})().catch((err) => {
  console.error(err);
  process.exit(1);
});
