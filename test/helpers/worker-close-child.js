'use strict';
// A process that starts a queue Worker on the Redis URL given as its argument, prints "ready",
// closes the worker when a line comes on stdin and the worker's connections wait between two
// reconnection attempts (a refused one was reported just before: the state in which BullMQ's own
// close waits forever), prints the outcome as JSON, and then must end by itself: nothing here calls process.exit, so any connection or timer the worker leaves behind
// keeps the process alive (queue-close.test.js gives it a few seconds).
const readline = require('node:readline');
const { Worker } = require('../../dist');

(async () => {
  let lost;
  const connectionLost = new Promise((resolve) => (lost = resolve));
  const worker = await Worker.start({
    redis: process.argv[2],
    onEvent: (e) => e.type === 'error' && /ECONNREFUSED/.test(e.message) && lost(),
  });
  process.stdout.write('ready\n');
  const lines = readline.createInterface({ input: process.stdin });
  await new Promise((resolve) => lines.once('line', resolve));
  lines.close();
  process.stdin.destroy();
  await connectionLost;
  await new Promise((resolve) => setTimeout(resolve, 100)); // the next attempt is 1 s away
  const t0 = Date.now();
  const outcome = await worker.close({ grace: 0, closeTimeout: 1000 }).then(
    () => ({ closed: true }),
    (err) => ({ code: err.code, message: err.message }),
  );
  process.stdout.write(JSON.stringify({ ...outcome, ms: Date.now() - t0 }) + '\n');
})();
