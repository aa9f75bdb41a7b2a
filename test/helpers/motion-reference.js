'use strict';
// A plain reference implementation of the dense motion fields, written for clarity rather than
// speed, to check the native composer against (native/motion/keyframe_composer.h states the
// definition). It works on the whole clip at once, from the frames' vectors and vectorRefs,
// in doubles, with none of the native code's shortcuts (per-frame source tables, run caching,
// eviction, in-place fields). Not covered: bridging across an open GOP's I-frame (leading
// pictures), which the accuracy tests check against the known motion instead.

const EDGE_INSET_PIXELS = 16;

/**
 * Display-order distance each vector predicts from: the exact one (vectorRefs), else the
 * nearest I/P frame in its direction; 0 for a placeholder row or no such frame.
 */
function distances(frames, t) {
  const f = frames[t];
  const n = f.vectors.length / 10;
  const out = new Int32Array(n);
  let prev = -1;
  for (let s = t - 1; s >= 0; s--)
    if (frames[s].pictType !== 'B') {
      prev = s;
      break;
    }
  let next = -1;
  for (let s = t + 1; s < frames.length; s++)
    if (frames[s].pictType !== 'B') {
      next = s;
      break;
    }
  for (let i = 0; i < n; i++) {
    const ref = f.vectorRefs ? f.vectorRefs[i] : 0;
    if (ref === -2147483648) continue;
    if (ref !== 0) out[i] = ref;
    else if (f.vectors[i * 10] < 0 && prev >= 0) out[i] = t - prev;
    else if (f.vectors[i * 10] > 0 && next >= 0) out[i] = t - next;
  }
  return out;
}

/** Two prediction slots per cell: a cell takes the last block of the slot containing its centre. */
function rasterise(vectors, refs, width, height, stride) {
  const gw = Math.ceil(width / stride);
  const gh = Math.ceil(height / stride);
  const slot = () => ({ dx: new Float64Array(gw * gh), dy: new Float64Array(gw * gh), ref: new Int32Array(gw * gh) });
  const slots = [slot(), slot()];
  for (let n = 0; n < vectors.length / 10; n++) {
    if (refs[n] === 0) continue;
    const [source, w, h, , , dstX, dstY, mx, my, scale] = vectors.subarray(n * 10, n * 10 + 10);
    const s = slots[source > 0 ? 1 : 0];
    for (let i = 0; i < gh; i++) {
      for (let j = 0; j < gw; j++) {
        const cx = j * stride + (stride - 1) / 2;
        const cy = i * stride + (stride - 1) / 2;
        if (cx >= dstX - w / 2 && cx < dstX + w / 2 && cy >= dstY - h / 2 && cy < dstY + h / 2) {
          s.dx[i * gw + j] = mx / scale;
          s.dy[i * gw + j] = my / scale;
          s.ref[i * gw + j] = refs[n];
        }
      }
    }
  }
  return { gw, gh, slots };
}

/** Bilinear sample at cell coordinates, clamped to the border cells. */
function sample(field, gw, gh, u, v) {
  u = Math.min(Math.max(u, 0), gw - 1);
  v = Math.min(Math.max(v, 0), gh - 1);
  const j0 = Math.floor(u),
    i0 = Math.floor(v);
  const j1 = Math.min(j0 + 1, gw - 1),
    i1 = Math.min(i0 + 1, gh - 1);
  const fu = u - j0,
    fv = v - i0;
  const at = (a, i, j) => a[i * gw + j];
  const bil = (a) =>
    (1 - fv) * ((1 - fu) * at(a, i0, j0) + fu * at(a, i0, j1)) + fv * ((1 - fu) * at(a, i1, j0) + fu * at(a, i1, j1));
  return [bil(field.dx), bil(field.dy)];
}

/** Where cell (i, j) lands after moving by (mx, my), read one macroblock inside the edges. */
function follow(field, gw, gh, stride, i, j, mx, my) {
  const inset = Math.ceil(EDGE_INSET_PIXELS / stride);
  let u = j + mx / stride;
  let v = i + my / stride;
  if (gw > 2 * inset + 1) u = Math.min(Math.max(u, inset), gw - 1 - inset);
  if (gh > 2 * inset + 1) v = Math.min(Math.max(v, inset), gh - 1 - inset);
  return sample(field, gw, gh, u, v);
}

/**
 * frames: [{ index, pictType, isKeyframe, vectors, vectorRefs, width, height }], the whole clip
 * in display order, as the reader gives them with vectors: true and motion: 'accumulated'
 * (isKeyframe as the reader decided it).
 * Returns, per frame, { dx, dy, width, height, keyframeIndex } accumulated to its keyframe.
 */
function accumulate(frames, stride) {
  const { width, height } = frames[0];
  const grids = frames.map((f, t) => rasterise(f.vectors, distances(frames, t), width, height, stride));
  const { gw, gh } = grids[0];
  const n = gw * gh;
  const zero = () => ({ dx: new Float64Array(n), dy: new Float64Array(n) });
  const isRoot = (t) => frames[t].isKeyframe && frames[t].pictType === 'I';
  const chainOf = (t) => {
    for (let s = t; s >= 0; s--) if (isRoot(s)) return s;
    return -1;
  };
  const refsOf = (t) => {
    const set = new Set();
    for (const s of grids[t].slots) for (const d of s.ref) if (d !== 0) set.add(d);
    return [...set].sort((a, b) => a - b);
  };

  // The composition order: frames arrive in display order; a frame is composed once every
  // frame it predicts from is (or can never be); the first such frame in display order goes first.
  const nodes = new Map(); // t -> { root, field }
  const held = [];
  let lastArrived = -1;
  const ready = (t) =>
    refsOf(t).every((d) => {
      const r = t - d;
      return nodes.has(r) || (!held.includes(r) && r <= lastArrived);
    });
  // A reference's field in `chain`: zero for the chain's root, the frame's field if composed in
  // it, else missing (null).
  const lookup = (r, chain) => {
    if (r === chain && chain >= 0) return zero();
    const node = nodes.get(r);
    return node && node.root === chain ? node.field : null;
  };
  const compose = (t) => {
    const chain = chainOf(t);
    if (isRoot(t)) {
      nodes.set(t, { root: t, field: zero() });
      return;
    }
    const g = grids[t];
    const refs = refsOf(t);
    let still = lookup(t - 1, chain);
    for (const d of refs) if (!still && d > 0) still = lookup(t - d, chain);
    for (const s of [...nodes.keys()].sort((a, b) => b - a)) if (!still && s < t) still = lookup(s, chain);
    if (!still) still = zero();
    const field = zero();
    for (let i = 0; i < gh; i++) {
      for (let j = 0; j < gw; j++) {
        const k = i * gw + j;
        let sx = 0,
          sy = 0,
          cnt = 0;
        for (const s of g.slots) {
          if (s.ref[k] === 0) continue;
          const R = lookup(t - s.ref[k], chain);
          if (!R) continue;
          const [rx, ry] = follow(R, gw, gh, stride, i, j, s.dx[k], s.dy[k]);
          sx += s.dx[k] + rx;
          sy += s.dy[k] + ry;
          cnt++;
        }
        if (cnt) {
          field.dx[k] = sx / cnt;
          field.dy[k] = sy / cnt;
        } else {
          field.dx[k] = still.dx[k];
          field.dy[k] = still.dy[k];
        }
      }
    }
    nodes.set(t, { root: chain, field });
  };
  const drain = (atEnd) => {
    for (;;) {
      let next = held.find(ready);
      if (next === undefined && atEnd && held.length) next = held[0]; // end: stop waiting
      if (next === undefined) break;
      held.splice(held.indexOf(next), 1);
      compose(next);
    }
  };
  for (let t = 0; t < frames.length; t++) {
    lastArrived = t;
    held.push(t);
    drain(false);
  }
  drain(true);

  const out = [];
  let key = 0;
  for (let t = 0; t < frames.length; t++) {
    if (frames[t].isKeyframe) key = t;
    const { root, field: R } = nodes.get(t);
    const keyNode = nodes.get(key);
    const A = zero();
    if (t !== key) {
      if (keyNode.root === key || keyNode.root !== root) {
        A.dx.set(R.dx);
        A.dy.set(R.dy);
      } else {
        const K = keyNode.field;
        for (let i = 0; i < gh; i++)
          for (let j = 0; j < gw; j++) {
            const k = i * gw + j;
            // x = R_t(p) - R_K(p + x), three fixed-point steps
            let x = R.dx[k] - K.dx[k],
              y = R.dy[k] - K.dy[k];
            for (let it = 0; it < 3; it++) {
              const [kx, ky] = follow(K, gw, gh, stride, i, j, x, y);
              x = R.dx[k] - kx;
              y = R.dy[k] - ky;
            }
            A.dx[k] = x;
            A.dy[k] = y;
          }
      }
    }
    out.push({ ...A, width: gw, height: gh, keyframeIndex: key });
  }
  return out;
}

module.exports = { rasterise, accumulate, distances };
