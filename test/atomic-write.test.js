// lib/atomic-write.ts: a file appears whole or not at all, and no temporary file is left behind.
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const test = require('ava');
const { writeFileAtomic, temporaryName } = require('../dist/atomic-write');

function scratch() {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'arseg-atomic-'));
}

test('writes the whole content and replaces an existing file', async (t) => {
  const dir = scratch();
  const file = path.join(dir, 'summary.json');
  fs.writeFileSync(file, 'old');
  await writeFileAtomic(file, '{"frames": 3}\n');
  t.is(fs.readFileSync(file, 'utf8'), '{"frames": 3}\n');
  await writeFileAtomic(file, new Uint8Array([1, 2, 3]));
  t.deepEqual([...fs.readFileSync(file)], [1, 2, 3]);
  t.deepEqual(fs.readdirSync(dir), ['summary.json']);
});

test('temporary names are hidden, in the same directory and unique', (t) => {
  const a = temporaryName('/x/y/labels/000001.png');
  const b = temporaryName('/x/y/labels/000001.png');
  t.is(path.dirname(a), '/x/y/labels');
  t.true(path.basename(a).startsWith('.000001.png.'));
  t.not(a, b);
});

test('a failed write leaves neither the file nor a temporary one', async (t) => {
  const dir = scratch();
  // the target is a directory: the rename fails after the content was written
  const target = path.join(dir, 'taken');
  fs.mkdirSync(target);
  fs.writeFileSync(path.join(target, 'keep'), 'x');
  const err = await t.throwsAsync(writeFileAtomic(target, 'data'));
  t.regex(err.code, /^(EISDIR|ENOTEMPTY|EEXIST)$/);
  t.deepEqual(fs.readdirSync(dir), ['taken']);
  // the parent is a file: nothing can be created
  const file = path.join(dir, 'plain');
  fs.writeFileSync(file, 'x');
  await t.throwsAsync(writeFileAtomic(path.join(file, 'out.json'), 'data'), { code: 'ENOTDIR' });
  t.deepEqual(fs.readdirSync(dir).sort(), ['plain', 'taken']);
});
