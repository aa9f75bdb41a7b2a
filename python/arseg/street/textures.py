"""Procedural, tileable, mip-mapped luminance textures for the street generator.

Every texture is a square power-of-two luminance map (mean about 1) that a material multiplies
with its own colour. They are made once per process from fixed seeds (TEXTURE_SEED), so every
clip, on every run, sees the same textures; clips differ by their geometry, colours and motion.
Sampling is nearest-texel in the mip level whose texel just covers the pixel's footprint, which
keeps distant texture from shimmering while staying a handful of numpy gathers.
"""
import numpy as np

TEXTURE_SEED = 20230618
_CACHE = {}


def fbm(rng, n, base, octaves, persistence=0.5, aspect=(1, 1)):
    """Fractal value noise, zero mean, unit standard deviation, tileable, n x n."""
    out = np.zeros((n, n), np.float32)
    amp = 1.0
    cells = base
    for _ in range(octaves):
        if cells > n:
            break
        cy, cx = max(1, cells // aspect[0]), max(1, cells // aspect[1])
        g = rng.standard_normal((cy, cx)).astype(np.float32)
        # anisotropic: upsample each axis separately
        up = _upsample_wrap_rect(g, n)
        out += amp * up
        amp *= persistence
        cells *= 2
    out -= out.mean()
    out /= out.std() + 1e-6
    return out


def _upsample_wrap_rect(g, n):
    cy, cx = g.shape

    def axis(c):
        x = (np.arange(n) + 0.5) / (n / c) - 0.5
        i0 = np.floor(x).astype(np.int64)
        f = (x - i0).astype(np.float32)
        f = f * f * (3 - 2 * f)
        return i0 % c, (i0 + 1) % c, f

    y0, y1, fy = axis(cy)
    x0, x1, fx = axis(cx)
    rows = g[y0] * (1 - fy)[:, None] + g[y1] * fy[:, None]
    return rows[:, x0] * (1 - fx)[None, :] + rows[:, x1] * fx[None, :]


class Texture:
    """A luminance map with its mip pyramid, sampled in metres."""

    def __init__(self, img, texel, levels=7):
        n = img.shape[0]
        assert img.shape == (n, n) and n & (n - 1) == 0
        self.n = n
        self.texel = float(texel)
        pyr = [img.astype(np.float32)]
        while len(pyr) < levels and pyr[-1].shape[0] > 1:
            a = pyr[-1]
            pyr.append(0.25 * (a[0::2, 0::2] + a[1::2, 0::2] + a[0::2, 1::2] + a[1::2, 1::2]))
        self.levels = len(pyr)
        self.offsets = np.cumsum([0] + [p.size for p in pyr[:-1]]).astype(np.int32)
        self.sizes = np.array([p.shape[0] for p in pyr], np.int32)
        self.flat = np.concatenate([p.ravel() for p in pyr]).astype(np.float32)

    def sample(self, u, v, footprint):
        """Luminance at (u, v) metres for pixels covering `footprint` metres."""
        inv = np.float32(1.0 / self.texel)
        # the binary exponent of footprint/texel (as np.frexp), read from the float's bits
        e = (np.asarray(footprint * inv, np.float32).view(np.int32) >> 23) - 126
        lev = np.minimum(np.maximum(e, 0), self.levels - 1)
        size = self.sizes[lev]
        iu = (np.floor(u * inv).astype(np.int32) >> lev) & (size - 1)
        iv = (np.floor(v * inv).astype(np.int32) >> lev) & (size - 1)
        return self.flat[self.offsets[lev] + iv * size + iu]


def _asphalt(rng, n):
    t = 1 + 0.05 * fbm(rng, n, 4, 6) + 0.08 * fbm(rng, n, 32, 3)
    spots = fbm(rng, n, 32, 2)
    t -= 0.12 * (spots > 1.6)
    return t


def _slabs(rng, n, slab=32):
    t = 1 + 0.05 * fbm(rng, n, 8, 5) + 0.05 * fbm(rng, n, 64, 2)
    k = n // slab
    tint = 1 + 0.06 * rng.standard_normal((k, k)).astype(np.float32)
    t *= np.kron(tint, np.ones((slab, slab), np.float32))
    idx = np.arange(n)
    grout = ((idx % slab) < 2)
    t[grout, :] *= 0.72
    t[:, grout] *= 0.72
    return t


def _brick(rng, n, h=4, w=16):
    t = 1 + 0.06 * fbm(rng, n, 16, 4)
    rows = n // h
    per = n // w
    tint = 1 + 0.12 * rng.standard_normal((rows, per)).astype(np.float32)
    y = np.arange(n)[:, None] // h
    x = np.arange(n)[None, :]
    xs = (x + (y % 2) * (w // 2)) % n
    t *= tint[y, xs // w]
    mortar = ((np.arange(n)[:, None] % h) == h - 1) | ((xs % w) == w - 1)
    t = np.where(mortar, 1.35 + 0.05 * fbm(rng, n, 64, 2), t)
    return t


def _plaster(rng, n):
    return 1 + 0.07 * fbm(rng, n, 4, 6, 0.6) + 0.04 * fbm(rng, n, 128, 1)


def _foliage(rng, n):
    a = fbm(rng, n, 16, 4, 0.6)
    b = fbm(rng, n, 64, 2)
    t = 1 + 0.35 * np.tanh(1.2 * a) + 0.18 * b
    return np.clip(t, 0.3, 1.8)


def _bark(rng, n):
    return 1 + 0.18 * fbm(rng, n, 8, 4, 0.5, aspect=(8, 1)) + 0.08 * fbm(rng, n, 64, 2)


def _clouds(rng, n):
    c = fbm(rng, n, 4, 6, 0.55)
    return np.clip((c - 0.2) * 0.9, 0, 1.0)


def _fine(rng, n):
    return 1 + 0.06 * fbm(rng, n, 16, 4) + 0.05 * fbm(rng, n, 128, 1)


def textures():
    """The fixed texture set (built on first use, about 0.3 s)."""
    if not _CACHE:
        rng = np.random.default_rng(TEXTURE_SEED)
        _CACHE.update(
            asphalt=Texture(_asphalt(rng, 256), 0.04),
            paint=Texture(1 + 0.08 * fbm(rng, 128, 16, 3), 0.03),
            slabs=Texture(_slabs(rng, 256), 0.025),
            brick=Texture(_brick(rng, 256), 0.02),
            plaster=Texture(_plaster(rng, 256), 0.05),
            foliage=Texture(_foliage(rng, 256), 0.03),
            bark=Texture(_bark(rng, 128), 0.02),
            clouds=Texture(_clouds(rng, 256), 25.0),
            fine=Texture(_fine(rng, 128), 0.02),
            glass=Texture(1 + 0.12 * fbm(rng, 128, 4, 4), 0.05),
        )
    return _CACHE
