'use strict';
// scripts/commit-msg.sh: the commit-message habit (docs/contributing.md), as git's commit-msg
// hook would run it on a message file.
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const test = require('ava');

const SCRIPT = path.join(__dirname, '..', 'scripts', 'commit-msg.sh');

function check(message) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'commit-msg-'));
  const file = path.join(dir, 'COMMIT_EDITMSG');
  fs.writeFileSync(file, message);
  try {
    const r = spawnSync('bash', [SCRIPT, file], { encoding: 'utf8' });
    return { ok: r.status === 0, out: r.stdout + r.stderr, status: r.status };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const BODY = '\n\nThe body says why: the reader stopped at the first damaged packet.\n';

test('a subject of at most 72 characters, a blank line and a body pass', (t) => {
  t.true(check('Reader: skip damaged packets' + BODY).ok);
  t.true(check('x'.repeat(72) + BODY).ok);
  // git's comment lines and trailing blank lines are not part of the message
  t.true(check('Reader: skip damaged packets' + BODY + '\n\n# Please enter the commit message\n#\n').ok);
});

test('a subject over 72 characters fails, naming its length', (t) => {
  const r = check('x'.repeat(73) + BODY);
  t.false(r.ok);
  t.regex(r.out, /73 characters, at most 72/);
});

test('a message without a body, or without the blank line, fails', (t) => {
  const noBody = check('Reader: skip damaged packets\n');
  t.false(noBody.ok);
  t.regex(noBody.out, /no body/);
  t.false(check('Reader: skip damaged packets\n\n# only a comment\n').ok);
  const noBlank = check('Reader: skip damaged packets\nThe body right under it.\n');
  t.false(noBlank.ok);
  t.regex(noBlank.out, /blank line/);
  t.false(check('\n\nOnly a body.\n').ok);
});

test('merge and fixup commits are exempt; a missing file is a usage error', (t) => {
  t.true(check("Merge branch 'tidy'\n").ok);
  t.true(check('fixup! Reader: skip damaged packets\n').ok);
  t.is(spawnSync('bash', [SCRIPT, '/nonexistent/message'], { encoding: 'utf8' }).status, 2);
});
