#!/usr/bin/env node
'use strict';
/*
 * Latency of live segmentation (issue 14): a live source at a fixed frame rate over 127.0.0.1,
 * per-frame latency from the packet's arrival to its labels (p50, p99, max) and throughput,
 * for the synchronous and asynchronous keyframe schedules, with and without dropping.
 *
 *   /usr/bin/python3 python/tools/export_official_layout.py .bench-cache/psp18-official
 *   node bench/latency.js [--model .bench-cache/psp18-official] [--size 960x720] [--frames 60]
 *       [--fps auto|F] [--camera-fps auto|F] [--sources packets,tcp] [--schedules sync,async]
 *       [--drops none,latest] [--keyframe-nice N] [--keyframe-threads N] [--json FILE]
 *   node bench/latency.js --schedules sync,async:nice,async:idle ...   (keyframePriority side by side)
 *   node bench/latency.js --model models/default --size 320x240
 *
 * Sources:
 *  - packets: the clip's access units pushed into a PacketQueue at a fixed rate from this
 *    process (a camera driver's or a ROS subscription's callback); a packet arrives at its
 *    scheduled time (receivedAt), whenever the event loop gets to push it;
 *  - tcp: the same access units written to a TCP socket at the same rate (a camera streaming
 *    raw H.264), read by the URL reader from tcp://127.0.0.1:PORT; a frame arrives when its
 *    unit is written. (ffmpeg -re with MPEG-TS was tried first: its pacing and the demuxer's
 *    probing left no exact arrival time per frame.)
 * Latency = when the result reaches the consumer - when the frame arrived. The first GOP is a
 * warm-up and not counted.
 *
 * Runs, per source: at a fixed rate below capacity (--fps; auto = 0.8 x the lower of the two
 * schedules' capacity, measured first on the clip as a file) without dropping, and at a camera
 * rate above it (--camera-fps; auto = 3 x the higher capacity) with drop 'latest'; each for
 * keyframeLatency 'sync' and 'async'.
 * Capacity: frames per second of each schedule on the clip as a file, as fast as it goes (not
 * measured when --fps and --camera-fps are both given).
 * Schedules: 'sync', 'async' (the ArSeg defaults), 'async:idle' and 'async:nice' (that
 * keyframePriority, each on an ArSeg of its own): so that priorities compare in one run.
 * --json FILE keeps every frame's latency, keyframe, stage times and when it started, for
 * finding where the p99 frames come from.
 */
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const net = require('node:net');
const path = require('node:path');
const { ArSeg, PacketQueue } = require('../dist');
const { ensureBenchClip, BENCH_CLIP } = require('./clip');
const { splitAccessUnits } = require('../test/helpers/annexb');

const args = process.argv.slice(2);
const arg = (name, fallback) => (args.includes(name) ? args[args.indexOf(name) + 1] : fallback);
const model = arg('--model', path.join(__dirname, '..', '.bench-cache', 'psp18-official'));
const [width, height] = arg('--size', '960x720').split('x').map(Number);
const frames = Number(arg('--frames', 60));
const fpsArg = arg('--fps', 'auto');
const cameraArg = arg('--camera-fps', 'auto');
const sources = arg('--sources', 'packets,tcp').split(',');
const schedules = arg('--schedules', 'sync,async').split(',');
const drops = arg('--drops', 'none,latest').split(',');
const jsonOut = arg('--json', null);
const keyframeNice = arg('--keyframe-nice', undefined);
const keyframeThreads = arg('--keyframe-threads', undefined);
const GOP = 12;

const cache = path.join(__dirname, '..', '.bench-cache');
const clip = ensureBenchClip(cache, {
  ...BENCH_CLIP,
  name: `live-${width}x${height}-${frames}f-tx3-ty1.mp4`,
  width,
  height,
  frames,
});

function annexB(file) {
  const out = file.replace(/\.mp4$/, '.h264');
  if (!fs.existsSync(out))
    execFileSync('ffmpeg', [
      '-v',
      'error',
      '-y',
      '-i',
      file,
      '-c',
      'copy',
      '-bsf:v',
      'h264_mp4toannexb',
      '-f',
      'h264',
      out,
    ]);
  return splitAccessUnits(fs.readFileSync(out));
}

const load = () =>
  os
    .loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');
const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
};

/** Consumes a segmentation; latency per result from `arrival(index, result)`. */
async function consume(segmentation, arrival) {
  const rows = [];
  for await (const r of segmentation) {
    const at = performance.now();
    const arrived = arrival(r.index, r, at);
    rows.push({
      index: r.index,
      branch: r.branch,
      keyframe: r.keyframeIndex,
      usedKeyframe: r.usedKeyframe,
      distance: r.keyframeDistance,
      skipped: r.skipped,
      latency: at - arrived,
      decodeLag: r.decodedAt - arrived,
      // its own processing (timings.total includes waiting for the frame to be decoded, which
      // for a live source is mostly waiting for its packet), and the wait before its turn
      total: r.timings.total - r.timings.decode,
      queued: at - arrived - (r.timings.total - r.timings.decode),
      hrEncoder: r.timings.hrEncoder,
      lrEncoder: r.timings.lrEncoder,
      creff: r.timings.creff,
      decoder: r.timings.decoder,
      labels: r.timings.labels,
      keyframeWait: r.timings.keyframeWait,
      at,
    });
  }
  return rows;
}

function summarise(rows, extra) {
  const counted = rows.filter((r) => r.index >= GOP);
  const lat = counted.map((r) => r.latency);
  const span = (counted[counted.length - 1].at - counted[0].at) / 1000;
  const distances = counted.map((r) => r.distance).filter((d) => d !== null);
  return {
    ...extra,
    segmented: counted.length,
    skipped: counted.reduce((s, r) => s + r.skipped, 0),
    p50: pct(lat, 50),
    p99: pct(lat, 99),
    max: Math.max(...lat),
    ratio: pct(lat, 99) / pct(lat, 50),
    fps: (counted.length - 1) / span,
    // null when no frame used a keyframe (every counted frame took the LR branch)
    meanDistance: distances.length ? distances.reduce((a, b) => a + b, 0) / distances.length : null,
    maxDistance: distances.length ? Math.max(...distances) : null,
    lrOnly: counted.filter((r) => r.branch === 'lr').length,
    // how far decoding was behind the source, for the frames segmented
    decodeLag99: pct(
      counted.map((r) => r.decodeLag),
      99,
    ),
  };
}

/** 'sync' | 'async' | 'async:idle' | 'async:nice' -> the segment() option and keyframePriority. */
const parseSchedule = (s) => {
  const [keyframeLatency, priority] = s.split(':');
  if (!['sync', 'async'].includes(keyframeLatency) || (priority && !['idle', 'nice'].includes(priority)))
    throw new Error(`unknown schedule '${s}'`);
  return { keyframeLatency, priority };
};

async function capacity(seg, keyframeLatency) {
  const t0 = performance.now();
  let n = 0;
  let last = 0;
  for await (const r of seg.segment(clip, { keyframeLatency })) {
    n++;
    if (r.index === GOP - 1) last = performance.now();
  }
  // Frames after the first GOP (warm-up) over their time.
  return (n - GOP) / ((performance.now() - last) / 1000) || n / ((performance.now() - t0) / 1000);
}

async function packetRun(seg, aus, rate, options, out = {}) {
  const q = new PacketQueue();
  const start = performance.now() + 200;
  const due = (i) => start + (1000 * i) / rate;
  let i = 0;
  let timer;
  const feed = () => {
    while (i < aus.length && performance.now() >= due(i)) {
      q.push({ data: aus[i], pts: i / rate, receivedAt: due(i) });
      i++;
    }
    if (i >= aus.length) q.end();
    else timer = setTimeout(feed, Math.max(0, due(i) - performance.now()));
  };
  timer = setTimeout(feed, 200);
  const segmentation = seg.segment(q, options);
  try {
    return await consume(segmentation, (index) => due(index));
  } finally {
    clearTimeout(timer);
    out.stats = segmentation.stats();
  }
}

function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/**
 * The clip's access units written to a TCP connection at a fixed rate by this process (a camera
 * streaming raw H.264 over TCP), read by the file/URL reader from tcp://127.0.0.1:PORT: each
 * unit's send time is its arrival. libavformat's raw H.264 demuxer finds where a unit ends at
 * the next one's start, so the reader sees each frame one unit late (a frame period).
 */
async function tcpRun(seg, aus, rate, options, out = {}) {
  const port = await freePort();
  const segmentation = seg.segment(`tcp://127.0.0.1:${port}`, {
    ...options,
    formatOptions: { probesize: '32', analyzeduration: '1' },
  });
  const sent = [];
  const server = net.createServer((socket) => {
    socket.setNoDelay(true);
    const start = performance.now() + 100;
    const due = (i) => start + (1000 * i) / rate;
    let i = 0;
    const send = () => {
      while (i < aus.length && performance.now() >= due(i)) {
        sent[i] = due(i);
        socket.write(aus[i]);
        i++;
      }
      if (i >= aus.length) socket.end();
      else setTimeout(send, Math.max(0, due(i) - performance.now()));
    };
    setTimeout(send, 100);
    socket.on('error', () => undefined);
  });
  await new Promise((resolve) => server.listen(port, '127.0.0.1', resolve));
  try {
    return await consume(segmentation, (index) => sent[index]);
  } finally {
    server.close();
    out.stats = segmentation.stats();
  }
}

(async () => {
  if (!fs.existsSync(path.join(model, 'arseg.json'))) {
    console.error(`no bundle at ${model}: run /usr/bin/python3 python/tools/export_official_layout.py ${model}`);
    process.exit(2);
  }
  const aus = annexB(clip);
  // One ArSeg per keyframePriority (the keyframe thread's priority is set when it starts).
  const segs = new Map();
  const segFor = async (priority) => {
    const key = priority ?? 'default';
    if (!segs.has(key)) {
      const seg = await ArSeg.load(model, {
        ...(keyframeNice !== undefined ? { keyframeNice: Number(keyframeNice) } : {}),
        ...(keyframeThreads !== undefined ? { keyframeThreads: Number(keyframeThreads) } : {}),
        ...(priority ? { keyframePriority: priority } : {}),
      });
      // One warm-up run starts the worker threads (kept by the ArSeg) before anything is timed.
      await packetRun(seg, aus.slice(0, GOP + 2), 50, { keyframeLatency: 'async' });
      segs.set(key, seg);
    }
    return segs.get(key);
  };
  for (const s of schedules) await segFor(parseSchedule(s).priority);
  const loadBefore = load();
  const cap = {};
  const measure = fpsArg === 'auto' || (cameraArg === 'auto' && drops.includes('latest'));
  if (measure) {
    for (const s of schedules) {
      const { keyframeLatency, priority } = parseSchedule(s);
      cap[s] = await capacity(await segFor(priority), keyframeLatency);
    }
    console.error(
      `capacity (frames/s on the clip as a file): ${schedules.map((s) => `${s} ${cap[s].toFixed(3)}`).join(', ')}, load ${load()}`,
    );
  }
  const rate = fpsArg === 'auto' ? 0.8 * Math.min(...schedules.map((s) => cap[s])) : Number(fpsArg);
  const cameraFps = cameraArg === 'auto' ? 3 * Math.max(...schedules.map((s) => cap[s])) : Number(cameraArg);
  const rows = [];
  const perFrame = [];
  for (const source of sources)
    for (const [drop, r] of [
      ['none', rate],
      ['latest', cameraFps],
    ].filter(([d]) => drops.includes(d)))
      for (const schedule of schedules) {
        const { keyframeLatency, priority } = parseSchedule(schedule);
        const seg = await segFor(priority);
        const options = { keyframeLatency, drop };
        const segmentation = { stats: null };
        const res =
          source === 'packets'
            ? await packetRun(seg, aus, r, options, segmentation)
            : await tcpRun(seg, aus, r, options, segmentation);
        const applied = segmentation.stats?.keyframePriority;
        const row = summarise(res, {
          source,
          keyframeLatency: schedule,
          drop,
          rate: r,
          capacity: cap[schedule] ?? null,
          applied: applied ? (applied.policy === 'idle' ? 'SCHED_IDLE' : `nice ${applied.nice}`) : null,
          load: load(),
        });
        rows.push(row);
        perFrame.push({ source, schedule, drop, rate: r, frames: res });
        console.error(
          `${source} ${schedule} drop ${drop} @ ${r.toFixed(2)} fps: p50 ${row.p50.toFixed(0)} ms, p99 ${row.p99.toFixed(0)} ms (${row.ratio.toFixed(2)}x), max ${row.max.toFixed(0)}, ${row.fps.toFixed(3)} fps, skipped ${row.skipped}, keyframe thread ${row.applied ?? '-'}, load ${row.load}`,
        );
      }
  for (const seg of segs.values()) await seg.close();
  console.log(
    `${new Date().toISOString()}: model ${path.basename(model)} at ${width}x${height}, clip ${path.basename(clip)} (GOP ${GOP}), ${os.cpus().length} cores; keyframeNice ${keyframeNice ?? 'default'}, keyframeThreads ${keyframeThreads ?? 'default'}; load before ${loadBefore}, after ${load()}`,
  );
  if (measure)
    console.log(
      `capacity: ${schedules.map((s) => `${s} ${cap[s].toFixed(3)} fps`).join(', ')}${cap.sync && cap.async ? ` (async/sync ${(cap.async / cap.sync).toFixed(2)})` : ''}`,
    );
  console.log(
    '| source | keyframes | drop | rate (fps) | frames | skipped | p50 (ms) | p99 (ms) | max (ms) | p99/p50 | fps | keyframe distance mean / max | LR only | decode lag p99 (ms) | load (1 min) |',
  );
  console.log('|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|');
  for (const r of rows)
    console.log(
      `| ${r.source} | ${r.keyframeLatency}${r.applied ? ` (${r.applied})` : ''} | ${r.drop} | ${r.rate.toFixed(2)} | ${r.segmented} | ${r.skipped} | ${r.p50.toFixed(0)} | ${r.p99.toFixed(0)} | ${r.max.toFixed(0)} | ${r.ratio.toFixed(2)} | ${r.fps.toFixed(3)} | ${r.meanDistance === null ? '–' : `${r.meanDistance.toFixed(1)} / ${r.maxDistance}`} | ${r.lrOnly} | ${r.decodeLag99.toFixed(0)} | ${r.load.split(' ')[0]} |`,
    );
  if (jsonOut)
    fs.writeFileSync(
      jsonOut,
      JSON.stringify(
        { model, width, height, frames, load: { before: loadBefore, after: load() }, capacity: cap, rows, perFrame },
        null,
        2,
      ),
    );
})().catch((err) => {
  console.error(err);
  process.exit(1);
});
