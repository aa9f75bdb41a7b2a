'use strict';
// Shared test helpers: fixture paths and metadata, a .npy reader, frame collection.
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const FIXTURES = path.join(__dirname, '..', 'fixtures');
const meta = JSON.parse(fs.readFileSync(path.join(FIXTURES, 'fixtures.json'), 'utf8'));

function fixture(name) {
  return path.join(FIXTURES, name);
}

function tmpDir(prefix = 'arseg-test-') {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** Reads every frame of a reader into an array. */
async function collect(reader) {
  const frames = [];
  for await (const f of reader) frames.push(f);
  return frames;
}

/** Minimal .npy (v1) reader for the dtypes we write. */
function readNpy(file) {
  const buf = fs.readFileSync(file);
  if (buf.toString('latin1', 0, 6) !== '\x93NUMPY') throw new Error(`${file}: not a .npy file`);
  const headerLen = buf.readUInt16LE(8);
  const header = buf.toString('latin1', 10, 10 + headerLen);
  const descr = /'descr': '([^']+)'/.exec(header)[1];
  const shape = /'shape': \(([^)]*)\)/
    .exec(header)[1]
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map(Number);
  const start = 10 + headerLen;
  const bytes = buf.subarray(start);
  const copy = new Uint8Array(bytes).buffer; // aligned copy
  const Type = { '<i4': Int32Array, '<f4': Float32Array, '|u1': Uint8Array }[descr];
  return { descr, shape, data: new Type(copy), dataOffset: start };
}

/** Values of the interior cells (a margin of `m` cells dropped) of one plane of a field. */
function interior(field, plane, m = 2) {
  const out = [];
  const n = field.width * field.height;
  for (let i = m; i < field.height - m; i++)
    for (let j = m; j < field.width - m; j++) out.push(field.data[plane * n + i * field.width + j]);
  return out;
}

function median(values) {
  const s = [...values].sort((a, b) => a - b);
  return s[s.length >> 1];
}

module.exports = { FIXTURES, meta, fixture, tmpDir, collect, readNpy, interior, median };
