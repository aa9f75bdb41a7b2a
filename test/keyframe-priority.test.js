'use strict';
// The asynchronous schedule's keyframe thread priority (keyframePriority): SCHED_IDLE really set
// on the keyframe thread and the ONNX Runtime threads it starts, nowhere else; the fallback to a
// raised nice value where SCHED_IDLE is refused, reported; the option and the binding's checks.
// Serial: the fallback test sets ARSEG_SCHED_IDLE in this process's environment.
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const test = require('ava');
const { ArSeg, ErrorCodes } = require('../dist');
const { addon } = require('../dist/native');
const { FIXTURES, fixture, collect } = require('./helpers/fixtures');

const BUNDLE = path.join(FIXTURES, 'bundles', 'tiny-psp18');
const SCHED_IDLE = 5;

/** Scheduling policy (stat field 41) and nice value (field 19) of each of this process's threads. */
function threads() {
  return fs.readdirSync(`/proc/${process.pid}/task`).map((tid) => {
    const stat = fs.readFileSync(`/proc/${process.pid}/task/${tid}/stat`, 'utf8');
    // fields after "pid (comm) ": the first is field 3 (state)
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { tid: Number(tid), nice: Number(f[16]), policy: Number(f[38]) };
  });
}
const idleThreads = () =>
  threads()
    .filter((t) => t.policy === SCHED_IDLE)
    .map((t) => t.tid);

/** An async run whose frames wait for their keyframes (keyframeDelay 0): the thread has started by its end. */
async function asyncRun(options) {
  const seg = await ArSeg.load(BUNDLE, { keyframeThreads: 2, ...options });
  try {
    const segmentation = seg.segment(fixture('tiny.h264'), { keyframeLatency: 'async', keyframeDelay: 0 });
    const results = await collect(segmentation);
    const stats = segmentation.stats();
    // read while the keyframe thread lives (close() ends it)
    const policy = stats.keyframePriority?.tid ? addon().threadPolicy(stats.keyframePriority.tid) : null;
    return { results, stats, idle: idleThreads(), policy };
  } finally {
    await seg.close();
  }
}

test.serial(
  "keyframePriority 'idle' (the default): the keyframe thread and its ONNX Runtime thread run in SCHED_IDLE; the rest do not",
  async (t) => {
    const before = idleThreads();
    t.deepEqual(before, [], 'no thread of this process starts in SCHED_IDLE');
    const { results, stats, idle, policy } = await asyncRun({});
    t.is(results.length, 24);
    t.true(results.every((r) => r.usedKeyframe === r.keyframeIndex));
    t.is(stats.keyframePriority.policy, 'idle');
    t.is(stats.keyframePriority.fallbackReason, undefined);
    // the worker thread and the intra-op pool thread ONNX Runtime made for 2 threads
    t.is(idle.length, 2, `threads in SCHED_IDLE: ${idle}`);
    t.true(idle.includes(stats.keyframePriority.tid), 'the reported thread is one of them');
    t.is(policy, 'idle', 'the binding reads it back');
    t.is(addon().threadPolicy(), 'other', 'the main thread keeps its policy');
  },
);

test.serial("keyframePriority 'nice': a raised nice value, no SCHED_IDLE", async (t) => {
  const base = os.getPriority(0);
  const by = Math.min(6, 19 - base);
  const { stats, idle, policy } = await asyncRun({ keyframePriority: 'nice', keyframeNice: by });
  t.deepEqual(idle, []);
  t.is(policy, 'other');
  t.is(stats.keyframePriority.policy, 'nice');
  t.is(stats.keyframePriority.nice, base + by);
  t.is(stats.keyframePriority.fallbackReason, undefined);
});

test.serial(
  "keyframePriority 'idle' refused (ARSEG_SCHED_IDLE=0, as a kernel refusal): falls back to the nice value and says why",
  async (t) => {
    const base = os.getPriority(0);
    const by = Math.min(5, 19 - base);
    process.env.ARSEG_SCHED_IDLE = '0';
    try {
      const { results, stats, idle } = await asyncRun({ keyframePriority: 'idle', keyframeNice: by });
      t.is(results.length, 24, 'the segmentation runs all the same');
      t.deepEqual(idle, []);
      t.is(stats.keyframePriority.policy, 'nice');
      t.is(stats.keyframePriority.nice, base + by);
      t.regex(stats.keyframePriority.fallbackReason, /SCHED_IDLE refused: ARSEG_SCHED_IDLE=0/);
    } finally {
      delete process.env.ARSEG_SCHED_IDLE;
    }
  },
);

test.serial('stats().keyframePriority is null for the synchronous schedule', async (t) => {
  const seg = await ArSeg.load(BUNDLE, { keyframePriority: 'idle' });
  try {
    const segmentation = seg.segment(fixture('tiny.h264'));
    await collect(segmentation);
    t.is(segmentation.stats().keyframePriority, null);
    t.deepEqual(idleThreads(), []);
  } finally {
    await seg.close();
  }
});

test.serial('keyframePriority is checked at load', async (t) => {
  for (const value of ['low', 'IDLE', 10, null, true]) {
    const err = await t.throwsAsync(ArSeg.load(BUNDLE, { keyframePriority: value }));
    t.is(err.code, ErrorCodes.INVALID_ARG);
    t.regex(err.message, /option 'keyframePriority' must be 'idle' or 'nice'/);
  }
});

test.serial("the binding refuses threads that are not this process's, and bad ids", (t) => {
  for (const bad of [0, -1, 1.5, 'x', Number.NaN, 2 ** 40]) {
    for (const fn of ['setThreadIdle', 'threadPolicy']) {
      const err = t.throws(() => addon()[fn](bad));
      t.is(err.code, ErrorCodes.INVALID_ARG, `${fn}(${bad})`);
    }
  }
  if (process.pid !== 1) {
    // pid 1's main thread is not ours: never switched, whatever our privileges
    const err = t.throws(() => addon().setThreadIdle(1));
    t.is(err.code, ErrorCodes.NOT_FOUND);
    t.regex(err.message, /no thread 1 in this process/);
  }
});
