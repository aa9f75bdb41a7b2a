'use strict';
// A plain reference implementation of the dense motion fields, written for clarity rather than
// speed, to check the native composer against. It works on the whole clip at once, in
// presentation order, with explicit recursion over the reference chain, where the native code
// streams frames and holds B-frames back: two formulations of the same definition
// (native/motion/keyframe_composer.h).

/** Cells whose centre lies in a block take its vector; one grid per direction. */
function rasterise(vectors, width, height, stride) {
  const gw = Math.ceil(width / stride);
  const gh = Math.ceil(height / stride);
  const empty = () => ({ dx: new Float64Array(gw * gh), dy: new Float64Array(gw * gh), has: new Uint8Array(gw * gh) });
  const past = empty();
  const future = empty();
  for (let n = 0; n < vectors.length / 10; n++) {
    const [source, w, h, , , dstX, dstY, mx, my, scale] = vectors.subarray(n * 10, n * 10 + 10);
    const grid = source > 0 ? future : past;
    for (let i = 0; i < gh; i++) {
      for (let j = 0; j < gw; j++) {
        const cx = j * stride + (stride - 1) / 2;
        const cy = i * stride + (stride - 1) / 2;
        if (cx >= dstX - w / 2 && cx < dstX + w / 2 && cy >= dstY - h / 2 && cy < dstY + h / 2) {
          grid.dx[i * gw + j] = mx / scale;
          grid.dy[i * gw + j] = my / scale;
          grid.has[i * gw + j] = 1;
        }
      }
    }
  }
  return { gw, gh, past, future };
}

function sample(field, gw, gh, u, v) {
  u = Math.min(Math.max(u, 0), gw - 1);
  v = Math.min(Math.max(v, 0), gh - 1);
  const j0 = Math.floor(u), i0 = Math.floor(v);
  const j1 = Math.min(j0 + 1, gw - 1), i1 = Math.min(i0 + 1, gh - 1);
  const fu = u - j0, fv = v - i0;
  const at = (a, i, j) => a[i * gw + j];
  const bil = (a) => (1 - fv) * ((1 - fu) * at(a, i0, j0) + fu * at(a, i0, j1)) + fv * ((1 - fu) * at(a, i1, j0) + fu * at(a, i1, j1));
  return [bil(field.dx), bil(field.dy)];
}

/**
 * frames: [{ pictType, isKeyframe, vectors, width, height }] in presentation order.
 * Returns, per frame, { dx, dy } accumulated to its keyframe (Float64Array per plane).
 */
function accumulate(frames, stride) {
  const { width, height } = frames[0];
  const grids = frames.map((f) => rasterise(f.vectors, width, height, stride));
  const { gw, gh } = grids[0];
  const n = gw * gh;
  const isAnchor = (t) => frames[t].pictType !== 'B';
  const root = new Map(); // t -> root field (relative to the chain's origin)
  // The chain restarts (root = 0) at every keyframe I-frame.
  const rootOf = (t) => {
    if (root.has(t)) return root.get(t);
    let past = -1;
    for (let s = t - 1; s >= 0; s--) if (isAnchor(s)) { past = s; break; }
    let future = -1;
    if (!isAnchor(t)) for (let s = t + 1; s < frames.length; s++) if (isAnchor(s)) { future = s; break; }
    const R = { dx: new Float64Array(n), dy: new Float64Array(n) };
    if (isAnchor(t) && frames[t].pictType === 'I' && frames[t].isKeyframe) {
      root.set(t, R);
      return R;
    }
    const P = past >= 0 ? rootOf(past) : null;
    const F = future >= 0 ? rootOf(future) : null;
    const g = grids[t];
    for (let i = 0; i < gh; i++) {
      for (let j = 0; j < gw; j++) {
        const k = i * gw + j;
        let sx = 0, sy = 0, cnt = 0;
        if (g.past.has[k]) {
          const mx = g.past.dx[k], my = g.past.dy[k];
          const [rx, ry] = P ? sample(P, gw, gh, j + mx / stride, i + my / stride) : [0, 0];
          sx += mx + rx; sy += my + ry; cnt++;
        }
        if (!isAnchor(t) && g.future.has[k] && F) {
          const mx = g.future.dx[k], my = g.future.dy[k];
          const [rx, ry] = sample(F, gw, gh, j + mx / stride, i + my / stride);
          sx += mx + rx; sy += my + ry; cnt++;
        }
        if (cnt) { R.dx[k] = sx / cnt; R.dy[k] = sy / cnt; }
        else if (P) { R.dx[k] = P.dx[k]; R.dy[k] = P.dy[k]; }
      }
    }
    root.set(t, R);
    return R;
  };
  const out = [];
  let key = 0;
  for (let t = 0; t < frames.length; t++) {
    if (frames[t].isKeyframe) key = t;
    const R = rootOf(t);
    const K = rootOf(key);
    const A = { dx: new Float64Array(n), dy: new Float64Array(n) };
    if (t !== key) {
      for (let i = 0; i < gh; i++) for (let j = 0; j < gw; j++) {
        const k = i * gw + j;
        // x = R_t(p) - R_K(p + x), three fixed-point steps
        let x = R.dx[k] - K.dx[k], y = R.dy[k] - K.dy[k];
        for (let it = 0; it < 3; it++) {
          const [kx, ky] = sample(K, gw, gh, j + x / stride, i + y / stride);
          x = R.dx[k] - kx; y = R.dy[k] - ky;
        }
        A.dx[k] = x; A.dy[k] = y;
      }
    }
    out.push({ ...A, width: gw, height: gh, keyframeIndex: key });
  }
  return out;
}

module.exports = { rasterise, accumulate };
