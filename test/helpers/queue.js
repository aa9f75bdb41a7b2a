'use strict';
// Test helpers for the queue: a private redis-server per test (127.0.0.1, a free port, a temporary
// directory, AOF persistence), `ar-seg worker` processes whose JSON log lines are collected, and
// the CLI.
const fs = require('node:fs');
const net = require('node:net');
const path = require('node:path');
const { spawn, spawnSync } = require('node:child_process');
const { tmpDir } = require('./fixtures');

const ROOT = path.join(__dirname, '..', '..');
const CLI = path.join(ROOT, 'dist', 'cli', 'index.js');

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Every redis-server and worker process started here, killed when the test process exits however
// it ends (a failed assertion, an uncaught error, ava's timeout): none outlives its test file.
const children = new Set();
function own(proc) {
  children.add(proc);
  proc.on('exit', () => children.delete(proc));
  return proc;
}
process.on('exit', () => {
  for (const p of children) {
    try {
      p.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
});

/** Resolves with what `promise` resolves to, or with `fallback` after `ms` (the timer does not hold the process). */
function within(promise, ms, fallback) {
  let timer;
  const expired = new Promise((resolve) => {
    timer = setTimeout(() => resolve(fallback), ms);
    timer.unref();
  });
  return Promise.race([Promise.resolve(promise), expired]).finally(() => clearTimeout(timer));
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.unref();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** Resolves when something accepts TCP connections on 127.0.0.1:port. */
async function waitForPort(port, timeoutMs = 10000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise((resolve) => {
      const c = net.connect(port, '127.0.0.1', () => {
        c.destroy();
        resolve(true);
      });
      c.on('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing listens on 127.0.0.1:${port}`);
    await sleep(50);
  }
}

/**
 * A redis-server of its own: `url`, `stop()` (SIGTERM: Redis writes its AOF and exits),
 * `start()` again on the same port and directory, `kill()` at the end.
 */
async function startRedis() {
  if (spawnSync('redis-server', ['--version']).status !== 0)
    throw new Error("redis-server is not installed (scripts/setup.sh installs Debian's redis-server)");
  const dir = tmpDir('arseg-redis-');
  const port = await freePort();
  const r = {
    port,
    dir,
    url: `redis://127.0.0.1:${port}`,
    proc: null,
    log: '',
    async start() {
      const proc = spawn(
        'redis-server',
        [
          '--port',
          String(port),
          '--bind',
          '127.0.0.1',
          '--dir',
          dir,
          '--save',
          '',
          '--appendonly',
          'yes',
          '--appendfsync',
          'always',
          '--maxmemory-policy',
          'noeviction',
        ],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      own(proc);
      proc.stdout.on('data', (d) => (r.log += d));
      proc.stderr.on('data', (d) => (r.log += d));
      r.proc = proc;
      r.exited = new Promise((resolve) => proc.on('exit', resolve));
      await waitForPort(port);
    },
    /** SIGTERM (Redis writes its AOF and exits); SIGKILL if it has not within 10 s. */
    async stop() {
      if (!r.proc) return;
      r.proc.kill('SIGTERM');
      if ((await within(r.exited, 10000, 'timeout')) === 'timeout') r.proc.kill('SIGKILL');
      r.proc = null;
    },
    kill() {
      if (r.proc) r.proc.kill('SIGKILL');
      r.proc = null;
    },
  };
  await r.start();
  return r;
}

/** Runs the CLI to its end. */
function cli(args, options = {}) {
  return new Promise((resolve) => {
    const p = own(spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'], ...options }));
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    p.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

/**
 * An `ar-seg worker --json` process: `events` (its parsed log lines), `waitFor(predicate)`,
 * `exited` (its exit code), `signal(name)`.
 */
function startWorker(url, args = []) {
  const proc = spawn(process.execPath, [CLI, 'worker', '--redis', url, '--json', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  own(proc);
  const w = { proc, events: [], stderr: '', pid: proc.pid };
  let buffered = '';
  const waiters = [];
  proc.stderr.on('data', (d) => {
    buffered += d;
    let nl;
    while ((nl = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      w.stderr += line + '\n';
      try {
        w.events.push(JSON.parse(line));
      } catch {
        continue;
      }
      for (const x of [...waiters]) x();
    }
  });
  proc.stdout.on('data', (d) => (w.stderr += d));
  w.exited = new Promise((resolve) => proc.on('exit', (code, signal) => resolve(code ?? signal)));
  w.waitFor = (pred, timeoutMs = 60000) =>
    new Promise((resolve, reject) => {
      const check = () => {
        const e = w.events.find(pred);
        if (e) {
          waiters.splice(waiters.indexOf(check), 1);
          clearTimeout(timer);
          resolve(e);
          return true;
        }
        return false;
      };
      const timer = setTimeout(() => {
        waiters.splice(waiters.indexOf(check), 1);
        reject(new Error(`worker ${proc.pid}: no such event within ${timeoutMs} ms; log:\n${w.stderr}`));
      }, timeoutMs);
      waiters.push(check);
      check();
      w.exited.then(() => {
        if (waiters.includes(check) && !check()) {
          waiters.splice(waiters.indexOf(check), 1);
          clearTimeout(timer);
          reject(new Error(`worker ${proc.pid} exited; log:\n${w.stderr}`));
        }
      });
    });
  w.signal = (name) => {
    try {
      proc.kill(name);
    } catch {
      // already gone
    }
  };
  return w;
}

/** Polls `fn` until it returns a truthy value. */
async function until(fn, timeoutMs = 60000, every = 50) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await sleep(every);
  }
}

/** The job directories and leftovers (temporary directories) in an output directory. */
function outputEntries(out) {
  const names = fs.existsSync(out) ? fs.readdirSync(out) : [];
  return {
    jobs: names.filter((n) => /^(segment|eval)-[0-9a-f]{32}$/.test(n)).sort(),
    hidden: names.filter((n) => n.startsWith('.')),
  };
}

/**
 * Stops everything a test started, whatever happened in it, without ever hanging: registered
 * with `own(x)` (a redis, a worker process, or `{ stop: async () => ... }`), stopped at the
 * test's end in reverse order (workers before their Redis), each given `ms` before the next.
 */
function cleanup(t, ms = 15000) {
  const things = [];
  t.teardown(async () => {
    for (const x of things.reverse()) {
      // a redis: kill(); a worker process: SIGKILL; anything else: its stop()
      const stop = x.kill ?? (x.signal ? () => x.signal('SIGKILL') : x.stop);
      await within(
        Promise.resolve()
          .then(stop)
          .catch(() => undefined),
        ms,
      );
    }
  });
  return (x) => (things.push(x), x);
}

module.exports = { ROOT, CLI, sleep, within, startRedis, startWorker, cli, until, outputEntries, cleanup };
