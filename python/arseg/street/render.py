"""The street world and its renderer: a 2.5D scene seen by a pinhole camera, numpy only.

World: x to the right of the road's direction, y up, z along the road; the road's centre line
is x = 0, the ground is y = 0. The background is analytic and ray-cast per pixel: the ground
plane (road with lane marks, crossings; pavements with kerbs), two facade planes x = +B and
x = -B made of blocks of varying height, colour, material and window pattern, and the sky
(gradient plus a cloud layer at infinity). Everything else is a planar textured quad with an
analytic per-pixel mask (painter's order plus a depth buffer): vertical quads facing the road
direction (plane z = const: poles, lamp arms, signs, traffic lights, trees, pedestrians,
bicyclists, the back or front of cars) or along it (plane x = const: fences, the sides of
cars). The label of a pixel is the class of the surface its centre ray hits first, exactly;
the colour is then blurred by a small optical kernel (the labels are not).
"""
import math

import numpy as np

from .textures import textures

CLASSES = ["sky", "building", "pole", "road", "pavement", "tree", "sign", "fence", "car",
           "pedestrian", "bicyclist"]
SKY, BUILDING, POLE, ROAD, PAVEMENT, TREE, SIGN, FENCE, CAR, PEDESTRIAN, BICYCLIST = range(11)

NEAR = 0.25          # near clipping distance of the camera, metres
FAR = 220.0          # objects beyond this distance are not drawn (fog hides them)


def _c(*rgb):
    return np.array(rgb, np.float32) / 255.0


def _mod(x, p):
    """x mod p for float arrays (numpy's % is several times slower)."""
    return x - np.floor(x * np.float32(1.0 / p)) * np.float32(p)


def _seg_d2(px, py, ax, ay, bx, by):
    """Squared distance from points (px, py) to the segment (a, b)."""
    ex, ey = bx - ax, by - ay
    l2 = ex * ex + ey * ey + 1e-12
    t = np.clip(((px - ax) * ex + (py - ay) * ey) / l2, 0.0, 1.0)
    qx, qy = px - ax - t * ex, py - ay - t * ey
    return qx * qx + qy * qy


class Camera:
    def __init__(self, pos, yaw, pitch, focal, width, height):
        self.pos = np.asarray(pos, np.float64)
        cy, sy, cp, sp = math.cos(yaw), math.sin(yaw), math.cos(pitch), math.sin(pitch)
        self.fwd = np.array([sy * cp, sp, cy * cp])
        self.right = np.array([cy, 0.0, -sy])
        self.up = np.array([-sy * sp, cp, -cy * sp])
        self.f, self.w, self.h = float(focal), width, height
        self.pos_t, self.fwd_t = tuple(self.pos.tolist()), tuple(self.fwd.tolist())
        self.right_t, self.up_t = tuple(self.right.tolist()), tuple(self.up.tolist())

    def rays(self):
        """Unnormalised ray directions through the pixel centres, flat float32 arrays."""
        xn = ((np.arange(self.w) + 0.5 - self.w / 2) / self.f).astype(np.float32)
        yn = (-(np.arange(self.h) + 0.5 - self.h / 2) / self.f).astype(np.float32)
        d = [(np.float32(self.fwd[i]) + xn[None, :] * np.float32(self.right[i])
              + yn[:, None] * np.float32(self.up[i])).astype(np.float32) for i in range(3)]
        return d

    def to_cam(self, pts):
        v = pts - self.pos
        return v @ self.right, v @ self.up, v @ self.fwd


# --------------------------------------------------------------------------------------------
# object shaders: f(la, lb, fp) -> (mask or None, rgb N x 3) over the pixels inside a quad,
# la/lb local coordinates in metres from the quad's corner (a0, b0), fp the pixel footprint.

def shader_solid(color, tex="fine", scale=1.0):
    T = textures()[tex]

    def sh(la, lb, fp):
        return None, color[None, :] * T.sample(la * scale, lb * scale, fp)[:, None]
    return sh


def shader_pole(color, width):
    T = textures()["fine"]

    def sh(la, lb, fp):
        lum = (0.6 + 0.5 * np.sin(np.pi * np.clip(la / width, 0, 1))) * T.sample(la, lb, fp)
        return None, color[None, :] * lum[:, None]
    return sh


def shader_sign(shape, face, rim, inner, size, back):
    T = textures()["fine"]

    def sh(la, lb, fp):
        x = la / size * 2 - 1
        y = lb / size * 2 - 1
        if shape == "circle":
            r2 = x * x + y * y
            mask = r2 < 1
            ring = r2 > 0.62
        elif shape == "triangle":
            yy = y + 0.15
            mask = (yy > -0.85) & (np.abs(x) < (1.0 - yy) * 0.55)
            ring = ~((yy > -0.6) & (np.abs(x) < (0.6 - yy) * 0.5))
        elif shape == "diamond":
            d = np.abs(x) + np.abs(y)
            mask = d < 1
            ring = d > 0.8
        elif shape == "octagon":
            mask = (np.abs(x) + np.abs(y)) < 1.4
            ring = (np.abs(x) + np.abs(y)) > 1.2
        else:  # rectangle with a band
            mask = np.abs(y) < 0.7
            ring = (np.abs(y) > 0.55) | (np.abs(x) > 0.9) | (np.abs(y) < 0.1)
        if back:
            col = np.broadcast_to(_c(150, 152, 155), (la.size, 3))
        else:
            col = np.where(ring[:, None], rim[None, :], face[None, :])
            sym = (~ring) & (np.abs(x) < 0.12) & (np.abs(y) < 0.35)
            col = np.where(sym[:, None], inner[None, :], col)
        return mask, col * T.sample(la, lb, fp)[:, None]
    return sh


def shader_traffic_light(w, h, lit):
    def sh(la, lb, fp):
        x = la / w - 0.5
        y = lb / h
        col = np.broadcast_to(_c(35, 37, 36), (la.size, 3)).copy()
        for i, lamp in enumerate([_c(230, 40, 30), _c(240, 180, 20), _c(40, 220, 90)]):
            cy = 0.82 - i * 0.32
            on = (x * w) ** 2 + ((y - cy) * h) ** 2 < (0.36 * w) ** 2
            c = lamp if i == lit else lamp * 0.25
            col[on] = c
        return None, col
    return sh


def shader_crown(rx, ry, harm, color):
    T = textures()["foliage"]

    def sh(la, lb, fp):
        x = la / rx - 1
        y = lb / ry - 1
        th = np.arctan2(y, x)
        r = 1 + harm[0] * np.sin(3 * th + harm[1]) + harm[2] * np.sin(5 * th + harm[3]) \
            + harm[4] * np.sin(9 * th + harm[5])
        rr = x * x + y * y
        mask = rr < r * r
        lum = T.sample(la, lb, fp) * (1.05 - 0.35 * np.clip(rr, 0, 1)) * (1 + 0.15 * y)
        return mask, color[None, :] * lum[:, None]
    return sh


def shader_fence(style, height, color):
    T = textures()["fine"]

    def sh(la, lb, fp):
        top = lb > height - 0.07
        bottom = np.abs(lb - 0.12) < 0.03
        if style == "bars":
            mask = (_mod(la, 0.16) < 0.045) | top | bottom
        elif style == "mesh":
            s, w = 0.2, 0.025
            mask = (_mod(la + lb, s) < w) | (_mod(la - lb, s) < w) | top | (_mod(la, 2.5) < 0.06) \
                | (lb < 0.05)
        else:  # planks with gaps
            mask = (_mod(la, 0.14) < 0.12) | top
        return mask, color[None, :] * T.sample(la, lb, fp)[:, None]
    return sh


def shader_car_back(wc, hc, body, front):
    T = textures()["fine"]
    glass = _c(38, 45, 55)
    light = _c(250, 240, 200) if front else _c(200, 25, 20)

    def sh(la, lb, fp):
        x = la / wc - 0.5
        y = lb / hc
        ax = np.abs(x)
        hw = np.where(y < 0.55, 0.5, 0.5 - (y - 0.55) * (0.14 / 0.45))
        wheel = (y < 0.2) & (ax > 0.3) & (ax < 0.45)
        mask = ((ax < hw) & (y >= 0.13)) | wheel
        lum = T.sample(la, lb, fp)
        col = body[None, :] * lum[:, None]
        win = (y > 0.6) & (y < 0.93) & (ax < hw - 0.05)
        col[win] = glass * (0.8 + 0.4 * y[win, None])
        bump = (y < 0.24) & (y >= 0.13)
        col[bump] *= 0.55
        lamp = (y > 0.42) & (y < 0.52) & (ax > 0.32) & (ax < 0.47)
        col[lamp] = light
        plate = (y > 0.25) & (y < 0.34) & (ax < 0.1)
        col[plate] = _c(225, 225, 215)
        col[wheel & (y < 0.13)] = _c(20, 20, 22)
        return mask, col
    return sh


def shader_car_side(length, hc, body, heading, wheel_r=0.32):
    T = textures()["fine"]
    glass = _c(38, 45, 55)

    def sh(la, lb, fp):
        a = la if heading > 0 else length - la     # a grows towards the car's front
        x = a / length
        y = lb / hc
        yc = y - 0.55
        cabin = (y >= 0.55) & (y < 1.0) & (x > 0.14 + yc * 0.25) & (x < 0.72 - yc * 0.55)
        body_m = (y >= 0.14) & (y < 0.55) & (x > 0.01) & (x < 0.99)
        w1 = (a - 0.18 * length) ** 2 + (lb - wheel_r) ** 2 < wheel_r ** 2
        w2 = (a - 0.82 * length) ** 2 + (lb - wheel_r) ** 2 < wheel_r ** 2
        wheel = w1 | w2
        mask = cabin | body_m | wheel
        lum = T.sample(la, lb, fp)
        col = body[None, :] * lum[:, None]
        win = (y > 0.6) & (y < 0.95) & (x > 0.18 + yc * 0.25) & (x < 0.68 - yc * 0.55) \
            & (np.abs(x - 0.43) > 0.018)
        col[win] = glass * (0.8 + 0.4 * y[win, None])
        col[(y < 0.22) & ~wheel] *= 0.6
        col[wheel] = _c(22, 22, 24)
        hub = ((a - 0.18 * length) ** 2 + (lb - wheel_r) ** 2 < (wheel_r * 0.45) ** 2) | \
              ((a - 0.82 * length) ** 2 + (lb - wheel_r) ** 2 < (wheel_r * 0.45) ** 2)
        col[hub] = _c(140, 140, 145)
        return mask, col
    return sh


def shader_pedestrian(h, w, view, phase, direction, shirt, pants, skin, hair):
    T = textures()["fine"]
    c = w / 2

    def sh(la, lb, fp):
        x, y = la, lb
        s = math.sin(phase)
        if view == "side":
            d = direction
            hip = (c, 0.52 * h)
            legs = []
            for sign in (1, -1):
                fx = c + d * sign * 0.17 * h * s
                fy = 0.03 * h + 0.05 * h * max(0.0, -sign * math.cos(phase))
                legs.append(_seg_d2(x, y, hip[0], hip[1], fx, fy) < (0.042 * h) ** 2)
            leg = legs[0] | legs[1]
            torso = _seg_d2(x, y, c, 0.55 * h, c + d * 0.015 * h, 0.8 * h) < (0.075 * h) ** 2
            arm = np.zeros(x.shape, bool)
            for sign in (1, -1):
                hx = c - d * sign * 0.11 * h * s
                arm |= _seg_d2(x, y, c, 0.8 * h, hx, 0.5 * h) < (0.028 * h) ** 2
            hc = (c + d * 0.025 * h, 0.905 * h)
        else:
            legs = []
            for sign in (1, -1):
                lift = 0.05 * h * max(0.0, sign * s)
                legs.append(_seg_d2(x, y, c + sign * 0.05 * h, 0.52 * h,
                                    c + sign * 0.055 * h, 0.03 * h + lift) < (0.038 * h) ** 2)
            leg = legs[0] | legs[1]
            yt = (y - 0.5 * h) / (0.32 * h)
            torso = (yt >= 0) & (yt < 1) & (np.abs(x - c) < (0.095 + 0.03 * yt) * h)
            arm = np.zeros(x.shape, bool)
            for sign in (1, -1):
                arm |= _seg_d2(x, y, c + sign * 0.13 * h, 0.8 * h,
                               c + sign * 0.15 * h, 0.49 * h + 0.02 * h * sign * s) < (0.03 * h) ** 2
            hc = (c, 0.905 * h)
        head = (x - hc[0]) ** 2 + (y - hc[1]) ** 2 < (0.066 * h) ** 2
        mask = leg | torso | arm | head
        lum = T.sample(la, lb, fp)[:, None]
        col = np.empty((x.size, 3), np.float32)
        col[:] = pants
        col[torso | arm] = shirt
        hand = arm & (y < 0.56 * h)
        col[hand] = skin
        col[head] = skin if view != "back" else hair
        col[head & (y > hc[1] + 0.03 * h)] = hair
        col[leg & (y < 0.04 * h)] = _c(25, 22, 20)
        return mask, col * lum
    return sh


def shader_bicyclist(view, phase, direction, frame_col, shirt, pants, skin, helmet):
    T = textures()["fine"]
    r = 0.34

    def sh(la, lb, fp):
        x, y = la, lb
        col = np.empty((x.size, 3), np.float32)
        if view == "side":
            d = direction
            c = 0.95
            wb, wf = c - d * 0.52, c + d * 0.52
            rb = np.sqrt((x - wb) ** 2 + (y - r) ** 2)
            rf = np.sqrt((x - wf) ** 2 + (y - r) ** 2)
            tyre = ((rb > r - 0.05) & (rb < r)) | ((rf > r - 0.05) & (rf < r))
            spokes = ((rb < r) & ((np.abs(x - wb) < 0.012) | (np.abs(y - r) < 0.012))) | \
                     ((rf < r) & ((np.abs(x - wf) < 0.012) | (np.abs(y - r) < 0.012)))
            crank = (c - d * 0.05, r + 0.02)
            seat = (c - d * 0.2, 0.95)
            bar = (c + d * 0.42, 1.0)
            fr = (_seg_d2(x, y, wb, r, crank[0], crank[1]) < 0.02 ** 2) | \
                 (_seg_d2(x, y, crank[0], crank[1], seat[0], seat[1]) < 0.022 ** 2) | \
                 (_seg_d2(x, y, seat[0], seat[1] - 0.05, bar[0], bar[1] - 0.08) < 0.022 ** 2) | \
                 (_seg_d2(x, y, crank[0], crank[1], bar[0], bar[1] - 0.08) < 0.022 ** 2) | \
                 (_seg_d2(x, y, wf, r, bar[0], bar[1]) < 0.02 ** 2) | \
                 (_seg_d2(x, y, wb, r, seat[0], seat[1] - 0.05) < 0.018 ** 2)
            hip = (seat[0], seat[1] + 0.05)
            sh_ = (c + d * 0.12, 1.45)
            torso = _seg_d2(x, y, hip[0], hip[1], sh_[0], sh_[1]) < 0.12 ** 2
            arm = _seg_d2(x, y, sh_[0], sh_[1], bar[0], bar[1]) < 0.04 ** 2
            head_c = (c + d * 0.22, 1.62)
            head = (x - head_c[0]) ** 2 + (y - head_c[1]) ** 2 < 0.11 ** 2
            legs = np.zeros(x.shape, bool)
            for k in (0, math.pi):
                px = crank[0] + 0.17 * math.cos(phase + k)
                py = crank[1] + 0.17 * math.sin(phase + k)
                kx = (hip[0] + px) / 2 + d * 0.2
                ky = (hip[1] + py) / 2 + 0.05
                legs |= (_seg_d2(x, y, hip[0], hip[1], kx, ky) < 0.065 ** 2) | \
                        (_seg_d2(x, y, kx, ky, px, py) < 0.05 ** 2)
            mask = tyre | spokes | fr | torso | arm | head | legs
            col[:] = frame_col
            col[tyre] = _c(25, 25, 25)
            col[spokes] = _c(150, 150, 150)
            col[legs] = pants
            col[torso | arm] = shirt
            col[head] = skin
            col[head & ((y > head_c[1] + 0.02) | ((x - head_c[0]) * d < -0.03))] = helmet
        else:
            c = 0.35
            wheel = (np.abs(x - c) < 0.03) & (y < 2 * r)
            bar = (np.abs(y - 1.0) < 0.025) & (np.abs(x - c) < 0.27)
            torso_y = (y - 0.98) / 0.5
            torso = (torso_y >= 0) & (torso_y < 1) & (np.abs(x - c) < 0.13 + 0.05 * torso_y)
            head = (x - c) ** 2 + (y - 1.62) ** 2 < 0.11 ** 2
            arm = (_seg_d2(x, y, c - 0.17, 1.42, c - 0.25, 1.0) < 0.035 ** 2) | \
                  (_seg_d2(x, y, c + 0.17, 1.42, c + 0.25, 1.0) < 0.035 ** 2)
            legs = np.zeros(x.shape, bool)
            for k, sgn in ((0, -1), (math.pi, 1)):
                py = r + 0.02 + 0.17 * math.sin(phase + k)
                legs |= _seg_d2(x, y, c + sgn * 0.08, 1.0, c + sgn * 0.1, py) < 0.055 ** 2
            mask = wheel | bar | torso | head | arm | legs
            col[:] = frame_col
            col[wheel] = _c(25, 25, 25)
            col[legs] = pants
            col[torso | arm] = shirt
            col[head] = helmet
        return mask, col * T.sample(la, lb, fp)[:, None]
    return sh


# --------------------------------------------------------------------------------------------
# the scene

class Scene:
    """Everything about one clip, drawn from one seed (see make_scene)."""

    def __init__(self, seed, frames, fps, width, height):
        self.seed, self.frames, self.fps, self.width, self.height = seed, frames, fps, width, height
        rng = np.random.default_rng(seed)
        self.rng = rng
        u = rng.uniform
        dur = frames / fps
        self.focal = width * u(0.82, 0.98)
        # ---- camera motion
        r = rng.random()
        self.speed = 0.0 if r < 0.06 else (u(1.5, 5.0) if r < 0.22 else u(6.0, 14.0))
        self.cam_h = u(1.15, 1.6)
        self.pitch0 = u(-0.07, -0.015)
        self.yaw0 = u(-0.14, 0.14)
        self.pan_amp = u(0.0, 0.1)
        self.pan_period = u(1.5, 5.0)
        self.pan_phase = u(0, 2 * math.pi)
        self.pan_rate = u(-0.09, 0.09)
        self.drift_amp = u(0.0, 0.35)
        self.drift_period = u(2.0, 6.0)
        self.bob = u(0.0, 0.006)
        span = self.speed * dur
        self.z_end = span + 190.0
        # ---- road layout
        self.lane_w = u(3.0, 3.6)
        self.lanes = 1 if rng.random() < 0.4 else 2
        park = [u(2.0, 2.5) if rng.random() < 0.7 else 0.0 for _ in range(2)]   # right, left
        self.park = park
        self.road_r = self.lanes * self.lane_w + park[0]
        self.road_l = self.lanes * self.lane_w + park[1]
        self.pave_r, self.pave_l = u(3.2, 6.5), u(3.2, 6.5)
        self.B_r, self.B_l = self.road_r + self.pave_r, self.road_l + self.pave_l
        self.cam_x = (self.lanes - 0.5) * self.lane_w
        # ---- looks
        overcast = rng.random() < 0.35
        if overcast:
            self.zenith = _c(150, 158, 170) * u(0.9, 1.1)
            self.horizon = _c(205, 208, 212) * u(0.92, 1.05)
        else:
            self.zenith = _c(60, 115, 200) * u(0.85, 1.1)
            self.horizon = _c(175, 200, 225) * u(0.92, 1.05)
        self.cloud = u(0.3, 1.0)
        self.fog = u(140.0, 320.0)
        self.light_r, self.light_l = u(0.7, 1.1), u(0.7, 1.1)
        self.road_col = _c(92, 92, 96) * u(0.8, 1.2)
        self.pave_col = _c(165, 160, 150) * u(0.8, 1.1)
        self.kerb_col = _c(190, 188, 182) * u(0.85, 1.05)
        self.mark_col = _c(235, 235, 228) * u(0.85, 1.0)
        self.dash_len = u(2.0, 4.0)
        self.dash_period = self.dash_len + u(3.0, 8.0)
        self.dash_phase = u(0, 10)
        self.centre_double = rng.random() < 0.4
        self.crossing = u(span + 14, span + 60) if rng.random() < 0.55 else None
        self._make_facades(rng)
        self.objects = []
        self._make_objects(rng, span)

    # ---------------------------------------------------------------- facades
    def _make_facades(self, rng):
        u = rng.uniform
        self.z0 = -80.0
        n = int(self.z_end - self.z0) + 1
        self.facade = []
        palette = [_c(170, 90, 70), _c(150, 75, 60), _c(200, 190, 170), _c(220, 215, 200),
                   _c(180, 170, 150), _c(140, 140, 145), _c(210, 180, 140), _c(120, 110, 100),
                   _c(200, 150, 120), _c(170, 180, 185)]
        for _ in range(2):
            starts, lens = [], []
            z = self.z0
            while z < self.z_end:
                length = u(7.0, 32.0)
                starts.append(z)
                lens.append(length)
                z += length
            k = len(starts)
            f = dict(
                start=np.array(starts, np.float32),
                height=np.where(rng.random(k) < 0.3, rng.uniform(3.5, 8, k),
                                rng.uniform(8, 26, k)).astype(np.float32),
                color=np.array([palette[i] for i in rng.integers(0, len(palette), k)],
                               np.float32) * rng.uniform(0.8, 1.1, (k, 1)).astype(np.float32),
                brick=(rng.random(k) < 0.45),
                floor_h=rng.uniform(2.9, 3.8, k).astype(np.float32),
                win_sp=rng.uniform(2.0, 4.0, k).astype(np.float32),
                win_w=rng.uniform(0.35, 0.7, k).astype(np.float32),
                win_h=rng.uniform(0.4, 0.65, k).astype(np.float32),
                shop=(rng.random(k) < 0.5),
            )
            f["win_w"] *= f["win_sp"]
            f["win_h"] *= f["floor_h"]
            ids = np.clip(np.searchsorted(f["start"], self.z0 + np.arange(n) + 0.5, side="right") - 1,
                          0, k - 1)
            f["table"] = ids.astype(np.int64)
            self.facade.append(f)

    def _block(self, side, z):
        f = self.facade[side]
        i = np.clip((z - self.z0).astype(np.int64), 0, f["table"].size - 1)
        return f["table"][i]

    # ---------------------------------------------------------------- objects
    def _make_objects(self, rng, span):
        u = rng.uniform
        lo, hi = -15.0, span + 170.0
        sides = ((1, self.road_r, self.B_r), (-1, self.road_l, self.B_l))
        objects = self.objects

        def add(kind, **kw):
            kw["kind"] = kind
            objects.append(kw)

        # poles, lamp arms
        for s, rh, B in sides:
            z = lo + u(0, 20)
            while z < hi:
                h = u(5.0, 9.5)
                add("pole", x=s * (rh + u(0.35, 0.6)), z=z, h=h, w=u(0.12, 0.24),
                    arm=u(1.2, 2.8) * (rng.random() < 0.55), side=s,
                    col=_c(110, 112, 115) * u(0.6, 1.2),
                    sign=(rng.random() < 0.3), sign_shape=int(rng.integers(0, 5)),
                    sign_col=int(rng.integers(0, 4)))
                z += u(14.0, 32.0)
        # sign posts
        for s, rh, B in sides:
            z = lo + u(0, 25)
            while z < hi:
                add("signpost", x=s * (rh + u(0.3, 0.5)), z=z, h=u(2.0, 2.9), size=u(0.5, 0.85),
                    shape=int(rng.integers(0, 5)), col=int(rng.integers(0, 4)),
                    back=(s < 0 and rng.random() < 0.5))
                z += u(12.0, 40.0)
        # a guaranteed sign close ahead
        s = 1 if rng.random() < 0.6 else -1
        rh = self.road_r if s > 0 else self.road_l
        add("signpost", x=s * (rh + 0.4), z=span + u(8, 25), h=u(2.0, 2.8), size=u(0.6, 0.85),
            shape=int(rng.integers(0, 5)), col=int(rng.integers(0, 4)), back=False)
        # traffic lights at the crossing
        if self.crossing is not None:
            for s, rh, B in sides:
                add("tlight", x=s * (rh + 0.5), z=self.crossing - 1.0, h=u(2.6, 3.4),
                    lit=int(rng.integers(0, 3)))
        # trees
        tree_sides = [rng.random() < 0.7, rng.random() < 0.7]
        if not any(tree_sides):
            tree_sides[int(rng.integers(0, 2))] = True
        for (s, rh, B), on in zip(sides, tree_sides):
            if not on:
                continue
            z = lo + u(0, 12)
            while z < hi:
                r = u(1.2, 2.8)
                add("tree", x=s * (rh + (B - rh) * u(0.45, 0.75)), z=z, trunk_h=u(1.6, 3.2),
                    trunk_w=u(0.18, 0.4), rx=r, ry=r * u(0.9, 1.4),
                    harm=[u(0, 0.12), u(0, 6.3), u(0, 0.08), u(0, 6.3), u(0, 0.05), u(0, 6.3)],
                    col=_c(70, 110, 45) * u(0.7, 1.2) * np.array([u(0.8, 1.2), 1, u(0.7, 1.1)], np.float32))
                z += u(7.0, 17.0)
        # fences: at least one stretch starting near the camera
        forced = int(rng.integers(0, 2))
        for i, (s, rh, B) in enumerate(sides):
            k = int(rng.integers(0, 3)) + (1 if i == forced else 0)
            z = lo + u(0, 20)
            for j in range(k):
                if i == forced and j == 0:      # in view for the whole clip
                    z0, length, at_kerb = span + u(8, 20), u(25.0, 45.0), rng.random() < 0.7
                else:
                    z0, length, at_kerb = z + u(0, 40), u(8.0, 40.0), rng.random() < 0.5
                x = s * (rh + 0.22) if at_kerb else s * (B - u(0.2, 0.8))
                add("fence", x=x, z0=z0, z1=z0 + length, h=u(0.9, 1.6),
                    style=["bars", "mesh", "planks"][int(rng.integers(0, 3))],
                    col=[_c(60, 65, 62), _c(120, 125, 120), _c(130, 95, 60),
                         _c(40, 80, 50)][int(rng.integers(0, 4))] * u(0.8, 1.2))
                z = z0 + length
        # cars
        car_cols = [_c(200, 200, 205), _c(30, 30, 35), _c(150, 20, 25), _c(20, 50, 130),
                    _c(120, 125, 130), _c(220, 220, 215), _c(60, 90, 60), _c(180, 150, 40)]

        def car(x, z, v, heading):
            add("car", x=x, z=z, v=v, heading=heading, w=u(1.65, 1.95), l=u(3.8, 4.8),
                h=u(1.35, 1.7), col=car_cols[int(rng.integers(0, len(car_cols)))] * u(0.85, 1.1))

        for (s, rh, B), pk in zip(sides, self.park):
            if pk <= 0:
                continue
            z = lo + u(0, 6)
            while z < hi:
                if rng.random() < 0.5:
                    car(s * (rh - pk / 2), z, 0.0, s if rng.random() < 0.85 else -s)
                z += u(5.3, 8.0)
        if self.lanes == 2:
            for _ in range(int(rng.integers(0, 3))):
                car(0.5 * self.lane_w + u(-0.3, 0.3), u(-10, 80), self.speed + u(-3, 4), 1)
        for _ in range(int(rng.integers(1, 6))):
            lane = int(rng.integers(0, self.lanes))
            car(-(lane + 0.5) * self.lane_w + u(-0.3, 0.3), u(span + 5, span + 160), u(6, 15), -1)
        # pedestrians walking along the pavements; the first two start close ahead
        shirts = [_c(200, 40, 40), _c(40, 60, 150), _c(230, 230, 225), _c(30, 30, 30),
                  _c(240, 180, 40), _c(60, 130, 70), _c(150, 90, 160), _c(120, 80, 50)]
        pants = [_c(30, 35, 60), _c(40, 40, 40), _c(110, 100, 80), _c(70, 70, 75), _c(20, 20, 25)]
        skins = [_c(235, 195, 160), _c(200, 150, 110), _c(140, 95, 60), _c(90, 60, 40)]
        hairs = [_c(40, 30, 20), _c(20, 18, 15), _c(120, 80, 40), _c(180, 170, 150)]

        def person(**kw):
            kw.update(ph=u(0, 2 * math.pi), H=u(1.5, 1.92),
                      shirt=shirts[int(rng.integers(0, 8))] * u(0.8, 1.1),
                      pants=pants[int(rng.integers(0, 5))], skin=skins[int(rng.integers(0, 4))],
                      hair=hairs[int(rng.integers(0, 4))])
            add("ped", **kw)

        n_ped = int(rng.integers(8, 20))
        for i in range(n_ped):
            s, rh, B = sides[int(rng.integers(0, 2))]
            if i < 4:           # close ahead at the start or at the end of the clip
                z = span * (i % 2) + u(6, 30)
            else:
                z = u(0, span + 60) if rng.random() < 0.6 else u(lo, hi - 60)
            v = 0.0 if rng.random() < 0.2 else u(1.0, 1.7) * (1 if rng.random() < 0.5 else -1)
            person(x=s * (rh + (B - rh) * u(0.15, 0.85)), z=z, vx=0.0, vz=v)
        if self.crossing is not None:
            for _ in range(int(rng.integers(0, 4))):
                d = 1 if rng.random() < 0.5 else -1
                person(x=u(-self.road_l, self.road_r), z=self.crossing + u(0.5, 3.5),
                       vx=d * u(1.0, 1.6), vz=0.0)
        # bicyclists: one guaranteed close ahead, riding along the right edge
        bikes = [_c(180, 30, 30), _c(30, 30, 30), _c(200, 200, 200), _c(30, 90, 170), _c(230, 140, 20)]

        def rider(**kw):
            kw.update(ph=u(0, 2 * math.pi), frame=bikes[int(rng.integers(0, 5))],
                      shirt=shirts[int(rng.integers(0, 8))], pants=pants[int(rng.integers(0, 5))],
                      skin=skins[int(rng.integers(0, 4))],
                      helmet=[_c(230, 230, 230), _c(30, 30, 30), _c(220, 60, 30)][int(rng.integers(0, 3))])
            add("bike", **kw)

        edge_r = self.road_r - self.park[0] - 0.6
        dur = self.frames / self.fps
        for i in range(int(rng.integers(2, 5))):
            v = u(3.0, 7.0)
            gap = 6 + max(0.0, (self.speed - v) * dur)
            if i == 0:
                bz, bv = gap + u(2, 22), v
                rider(x=edge_r + u(-0.2, 0.2), z=bz, vx=0.0, vz=v)
            elif rng.random() < 0.5:
                rider(x=edge_r + u(-0.3, 0.2), z=gap + u(2, 80), vx=0.0, vz=v)
            else:
                rider(x=-(self.road_l - self.park[1] - 0.8), z=u(span + 5, span + 100), vx=0.0, vz=-v)
        if self.crossing is not None and rng.random() < 0.4:
            d = 1 if rng.random() < 0.5 else -1
            rider(x=u(-self.road_l, self.road_r), z=self.crossing + u(4.5, 7), vx=d * u(3, 5), vz=0.0)
        # same direction, camera lane: one car ahead that never comes close to the camera, nor
        # hides the guaranteed bicyclist (it stays 10 m beyond it)
        if rng.random() < 0.6:
            v = max(0.0, self.speed + u(-1.5, 3.0))
            z0 = max(9 + max(0.0, (self.speed - v) * dur), bz + 10 + max(0.0, (bv - v) * dur))
            car(self.cam_x + u(-0.3, 0.3), z0 + u(0, 30), v, 1)

    # ---------------------------------------------------------------- camera
    def camera(self, t):
        tau = 2 * math.pi
        x = self.cam_x + self.drift_amp * math.sin(tau * t / self.drift_period)
        z = self.speed * t
        y = self.cam_h + 0.02 * math.sin(tau * t * 1.7)
        yaw = self.yaw0 + self.pan_amp * math.sin(tau * t / self.pan_period + self.pan_phase) \
            + self.pan_rate * t
        pitch = self.pitch0 + self.bob * math.sin(tau * t * 2.3)
        return Camera((x, y, z), yaw, pitch, self.focal, self.width, self.height)

    # ---------------------------------------------------------------- object quads at time t
    def quads(self, t, cam):
        """(kind, plane, a0, a1, b0, b1, label, shader, light) for every visible part."""
        out = []
        cz, cx = cam.pos[2], cam.pos[0]
        SIGN_COLS = [(_c(200, 30, 30), _c(245, 245, 240), _c(20, 20, 20)),
                     (_c(30, 80, 180), _c(30, 80, 180), _c(245, 245, 245)),
                     (_c(240, 200, 30), _c(20, 20, 20), _c(20, 20, 20)),
                     (_c(30, 120, 60), _c(245, 245, 240), _c(245, 245, 245))]
        SHAPES = ["circle", "triangle", "diamond", "octagon", "rect"]
        for o in self.objects:
            k = o["kind"]
            if k == "fence":
                if o["z1"] < cz - 5 or o["z0"] > cz + FAR:
                    continue
                out.append(("x", o["x"], o["z0"], o["z1"], 0.0, o["h"], FENCE,
                            shader_fence(o["style"], o["h"], o["col"]), None))
                continue
            if k == "car":
                z = o["z"] + o["v"] * t * o["heading"]
                if z < cz - 8 or z > cz + FAR:
                    continue
                x, w, l, h = o["x"], o["w"], o["l"], o["h"]
                zb, zf = (z - l / 2, z + l / 2)
                face = zb if o["heading"] > 0 else zf        # the face the camera looks at
                front = o["heading"] < 0
                if face > cz:
                    out.append(("z", face, x - w / 2, x + w / 2, 0.0, h, CAR,
                                shader_car_back(w, h, o["col"], front), 0.95))
                if abs(x - cx) > w / 2:
                    sx = x - w / 2 if x > cx else x + w / 2
                    out.append(("x", sx, zb, zf, 0.0, h, CAR,
                                shader_car_side(l, h, o["col"], o["heading"]), None))
                continue
            if k == "ped":
                x, z = o["x"] + o["vx"] * t, o["z"] + o["vz"] * t
                if z < cz - 1 or z > cz + FAR:
                    continue
                side = abs(o["vx"]) > abs(o["vz"])
                view = "side" if side else ("back" if o["vz"] >= 0 else "front")
                w = 0.9 if side else 0.7
                dist = abs(o["vx"] if side else o["vz"]) * t
                phase = o["ph"] + 2 * math.pi * dist / 1.45
                d = 1 if (o["vx"] >= 0) else -1
                out.append(("z", z, x - w / 2, x + w / 2, 0.0, o["H"], PEDESTRIAN,
                            shader_pedestrian(o["H"], w, view, phase, d, o["shirt"], o["pants"],
                                              o["skin"], o["hair"]), 0.95))
                continue
            if k == "bike":
                x, z = o["x"] + o["vx"] * t, o["z"] + o["vz"] * t
                if z < cz - 1 or z > cz + FAR:
                    continue
                side = abs(o["vx"]) > abs(o["vz"])
                speed = abs(o["vx"] if side else o["vz"])
                phase = o["ph"] + speed * t / 0.34 / 2.2
                d = 1 if o["vx"] >= 0 else -1
                w = 1.9 if side else 0.7
                out.append(("z", z, x - w / 2, x + w / 2, 0.0, 1.75, BICYCLIST,
                            shader_bicyclist("side" if side else "back", phase, d, o["frame"],
                                             o["shirt"], o["pants"], o["skin"], o["helmet"]), 0.95))
                continue
            z = o["z"]
            if z < cz - 1 or z > cz + FAR:
                continue
            x = o["x"]
            if k == "pole":
                w, h = o["w"], o["h"]
                out.append(("z", z, x - w / 2, x + w / 2, 0.0, h, POLE, shader_pole(o["col"], w), 1.0))
                if o["arm"]:
                    s = o["side"]
                    xa = x - s * o["arm"]
                    out.append(("z", z, min(x, xa), max(x, xa), h - 0.1, h, POLE,
                                shader_solid(o["col"]), 1.0))
                    out.append(("z", z - 0.01, xa - 0.3, xa + 0.3, h - 0.22, h - 0.05, POLE,
                                shader_solid(o["col"] * 0.8), 1.0))
                if o["sign"]:
                    face, rim, inner = SIGN_COLS[o["sign_col"]]
                    size = 0.6
                    out.append(("z", z - 0.05, x - size / 2, x + size / 2, 2.3, 2.3 + size, SIGN,
                                shader_sign(SHAPES[o["sign_shape"]], face, rim, inner, size, False), 1.0))
            elif k == "signpost":
                size = o["size"]
                out.append(("z", z, x - 0.04, x + 0.04, 0.0, o["h"], POLE,
                            shader_pole(_c(140, 140, 145), 0.08), 1.0))
                face, rim, inner = SIGN_COLS[o["col"]]
                out.append(("z", z - 0.03, x - size / 2, x + size / 2, o["h"], o["h"] + size, SIGN,
                            shader_sign(SHAPES[o["shape"]], face, rim, inner, size, o["back"]), 1.0))
            elif k == "tlight":
                out.append(("z", z, x - 0.06, x + 0.06, 0.0, o["h"], POLE,
                            shader_pole(_c(60, 62, 60), 0.12), 1.0))
                out.append(("z", z - 0.1, x - 0.17, x + 0.17, o["h"], o["h"] + 0.9, SIGN,
                            shader_traffic_light(0.34, 0.9, o["lit"]), 1.0))
            elif k == "tree":
                tw, th = o["trunk_w"], o["trunk_h"]
                out.append(("z", z, x - tw / 2, x + tw / 2, 0.0, th + 0.2, TREE,
                            shader_solid(_c(90, 70, 50), "bark"), 1.0))
                rx, ry = o["rx"], o["ry"]
                out.append(("z", z - 0.02, x - rx, x + rx, th - 0.3, th - 0.3 + 2 * ry, TREE,
                            shader_crown(rx, ry, o["harm"], o["col"]), 1.0))
        return out


def make_scene(seed, frames=48, fps=30, width=320, height=240):
    return Scene(int(seed), frames, fps, width, height)


# --------------------------------------------------------------------------------------------
# rendering

def render(scene, index, blur=True):
    """Frame `index` of `scene`: (rgb uint8 H x W x 3, labels uint8 H x W)."""
    T = textures()
    W, H = scene.width, scene.height
    N = W * H
    t = index / scene.fps
    cam = scene.camera(t)
    dx2, dy2, dz2 = cam.rays()
    dx, dy, dz = dx2.ravel(), dy2.ravel(), dz2.ravel()
    dn = np.sqrt(dx * dx + dy * dy + dz * dz)
    cx, cy, cz = (float(v) for v in cam.pos)
    f = cam.f
    rgb = np.empty((N, 3), np.float32)
    lab = np.zeros(N, np.uint8)
    zb = np.full(N, np.inf, np.float32)

    # ---- facades
    for side, B, light in ((0, scene.B_r, scene.light_r), (1, -scene.B_l, scene.light_l)):
        sel = np.nonzero(dx > 1e-5 if side == 0 else dx < -1e-5)[0]
        tt = ((B - cx) / dx[sel]).astype(np.float32)
        Y = cy + tt * dy[sel]
        Z = cz + tt * dz[sel]
        blk = scene._block(side, Z)
        fa = scene.facade[side]
        hgt = fa["height"][blk]
        hit = (Y >= 0) & (Y < hgt)
        sel, tt, Y, Z, blk, hgt = sel[hit], tt[hit], Y[hit], Z[hit], blk[hit], hgt[hit]
        lab[sel] = BUILDING
        zb[sel] = tt
        fp = tt * dn[sel] / f
        lum = np.where(fa["brick"][blk], T["brick"].sample(Z, Y, fp), T["plaster"].sample(Z, Y, fp))
        col = fa["color"][blk] * lum[:, None]
        s = Z - fa["start"][blk]
        sp, fh = fa["win_sp"][blk], fa["floor_h"][blk]
        fl = np.floor(Y / fh)
        xw = s - np.floor(s / sp) * sp
        yw = Y - fl * fh
        ww, wh = fa["win_w"][blk], fa["win_h"][blk]
        x0 = (sp - ww) / 2
        sill = (fh - wh) * 0.55
        upper = (fl >= 1) & (Y < hgt - 0.7) & (s > 0.5)
        frame = upper & (xw > x0 - 0.09) & (xw < x0 + ww + 0.09) & (yw > sill - 0.09) \
            & (yw < sill + wh + 0.09)
        win = upper & (xw > x0) & (xw < x0 + ww) & (yw > sill) & (yw < sill + wh)
        shop = (fl == 0) & fa["shop"][blk] & (xw > 0.25) & (xw < sp - 0.25) & (yw > 0.35) & (yw < fh - 0.55)
        glass = win | shop
        col[frame & ~glass] = _c(215, 212, 205)
        g = T["glass"].sample(Z, Y, fp)[glass]
        col[glass] = (_c(45, 55, 70) + 0.25 * scene.horizon * (Y[glass, None] / 25.0)) * g[:, None]
        col[Y > hgt - 0.35] *= 0.7
        col[s < 0.12] *= 0.6
        rgb[sel] = col * light

    # ---- ground
    gsel = np.nonzero((dy < -1e-5) & (lab == SKY))[0]
    tg = (-cy / dy[gsel]).astype(np.float32)
    X = cx + tg * dx[gsel]
    Z = cz + tg * dz[gsel]
    dist = tg * dn[gsel]
    graze = np.maximum(-dy[gsel] / dn[gsel], 0.02)
    fp = dist / f / np.sqrt(graze)
    right = X >= 0
    rh = np.where(right, np.float32(scene.road_r), np.float32(scene.road_l))
    ax = np.abs(X)
    road = ax < rh
    lab[gsel] = np.where(road, ROAD, PAVEMENT)
    zb[gsel] = tg
    col = np.empty((gsel.size, 3), np.float32)
    ri = np.nonzero(road)[0]
    col[ri] = scene.road_col[None, :] * T["asphalt"].sample(X[ri], Z[ri], fp[ri])[:, None]
    pi = np.nonzero(~road)[0]
    Xp, Zp, fpp = X[pi], Z[pi], fp[pi]
    kerb = ax[pi] < rh[pi] + 0.22
    lum = np.where(kerb, T["fine"].sample(Xp, Zp, fpp), T["slabs"].sample(Xp, Zp, fpp))
    col[pi] = np.where(kerb[:, None], scene.kerb_col[None, :], scene.pave_col[None, :]) * lum[:, None]
    # lane marks (road class), on the road pixels only
    Xr, Zr, axr = X[ri], Z[ri], ax[ri]
    mw2 = 0.13 / 2
    dash = _mod(Zr + scene.dash_phase, scene.dash_period) < scene.dash_len
    if scene.centre_double:
        marks = np.abs(axr - 0.12) < mw2
    else:
        marks = (axr < mw2) & dash
    lw = scene.lane_w
    for k in range(1, scene.lanes):
        marks |= (np.abs(axr - k * lw) < mw2) & dash
    edge = scene.lanes * lw
    near_edge = np.abs(axr - edge) < mw2
    if scene.park[0] > 0:
        marks |= near_edge & (Xr >= 0)
    if scene.park[1] > 0:
        marks |= near_edge & (Xr < 0)
    if scene.crossing is not None:
        zc = scene.crossing
        marks |= (Zr > zc) & (Zr < zc + 4.0) & (axr < edge - 0.3) & (_mod(Xr + 100.25, 1.0) < 0.5)
        marks |= (np.abs(Zr - zc + 0.8) < 0.2) & (Xr > 0) & (Xr < edge)    # stop line
    mi = ri[marks]
    col[mi] = scene.mark_col * T["paint"].sample(X[mi], Z[mi], fp[mi])[:, None]
    rgb[gsel] = col

    # ---- sky
    ssel = np.nonzero(lab == SKY)[0]
    ssel = ssel[~np.isfinite(zb[ssel])]
    e = np.clip(dy[ssel] / dn[ssel], 0, 1)
    k = np.clip(e * 2.5, 0, 1) ** 0.8
    col = scene.horizon[None, :] * (1 - k[:, None]) + scene.zenith[None, :] * k[:, None]
    up = np.maximum(dy[ssel], 1e-3)
    cu, cv = dx[ssel] / up * 1000.0, dz[ssel] / up * 1000.0 + 0.0
    cfp = 1000.0 / up * dn[ssel] / f / np.sqrt(np.maximum(e, 0.02))
    cl = T["clouds"].sample(cu, cv, cfp) * scene.cloud * np.clip(e * 8, 0, 1)
    col = col * (1 - cl[:, None]) + _c(245, 245, 248)[None, :] * cl[:, None]
    rgb[ssel] = col

    # ---- objects
    zb2 = zb.reshape(H, W)
    dn2 = dn.reshape(H, W)
    quads = scene.quads(t, cam)
    # painter's order: far to near (the depth buffer settles the rest)
    px_, py_, pz_ = cx, cy, cz
    keyed = []
    for q in quads:
        kind, p, a0, a1, b0, b1 = q[:6]
        if kind == "z":
            m = ((a0 + a1) / 2 - px_, (b0 + b1) / 2 - py_, p - pz_)
        else:
            m = (p - px_, (b0 + b1) / 2 - py_, (a0 + a1) / 2 - pz_)
        keyed.append((-(m[0] * m[0] + m[1] * m[1] + m[2] * m[2]), q))
    keyed.sort(key=lambda kq: kq[0])
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        for _, (kind, p, a0, a1, b0, b1, label, shader, light) in keyed:
            if kind == "z":
                pts = ((a0, b0, p), (a1, b0, p), (a1, b1, p), (a0, b1, p))
            else:
                pts = ((p, b0, a0), (p, b0, a1), (p, b1, a1), (p, b1, a0))
            box = _screen_box(cam, pts)
            if box is None:
                continue
            x0, x1, y0, y1 = box
            sdx, sdy, sdz = dx2[y0:y1, x0:x1], dy2[y0:y1, x0:x1], dz2[y0:y1, x0:x1]
            if kind == "z":
                tt = (p - cz) / sdz
                A = cx + tt * sdx
            else:
                tt = (p - cx) / sdx
                A = cz + tt * sdz
            Bv = cy + tt * sdy
            inside = (tt > 0) & (A >= a0) & (A < a1) & (Bv >= b0) & (Bv < b1) & (tt < zb2[y0:y1, x0:x1])
            iy, ix = np.nonzero(inside)
            if iy.size == 0:
                continue
            la = A[iy, ix] - a0
            lb = Bv[iy, ix] - b0
            tq = tt[iy, ix]
            fpq = tq * dn2[y0 + iy, x0 + ix] / f
            mask, col = shader(la, lb, fpq)
            gi = (iy + y0) * W + (ix + x0)
            if mask is not None:
                gi, col, tq = gi[mask], col[mask], tq[mask]
            if light is None:   # a face along the road: lit like the facade on its side
                light = scene.light_r if p < cx else scene.light_l
            rgb[gi] = col * light
            lab[gi] = label
            zb[gi] = tq

    # ---- haze
    with np.errstate(invalid="ignore", over="ignore"):
        a = np.where(lab == SKY, np.float32(0), 1 - np.exp(zb * dn * np.float32(-1.0 / scene.fog)))
    rgb += (scene.horizon[None, :] - rgb) * a[:, None]

    img = rgb.reshape(H, W, 3)
    if blur:
        img = _blur(img)
    out = np.clip(img * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return out, lab.reshape(H, W)


def _blur(img):
    """[1 2 1]/4 separable optical blur, edges replicated."""
    p = np.concatenate([img[:, :1], img, img[:, -1:]], axis=1)
    img = 0.25 * p[:, :-2] + 0.5 * p[:, 1:-1] + 0.25 * p[:, 2:]
    p = np.concatenate([img[:1], img, img[-1:]], axis=0)
    return 0.25 * p[:-2] + 0.5 * p[1:-1] + 0.25 * p[2:]


def _screen_box(cam, pts):
    """Pixel bounding box [x0, x1) x [y0, y1) of a planar quad, clipped to the near plane."""
    o, r, u, f = cam.pos_t, cam.right_t, cam.up_t, cam.fwd_t
    cs = []
    for (x, y, z) in pts:
        vx, vy, vz = x - o[0], y - o[1], z - o[2]
        cs.append((vx * r[0] + vy * r[1] + vz * r[2], vx * u[0] + vy * u[1] + vz * u[2],
                   vx * f[0] + vy * f[1] + vz * f[2]))
    zs = [c[2] for c in cs]
    if max(zs) < NEAR or min(zs) > FAR + 50:
        return None
    if min(zs) < NEAR:
        clipped = []
        n = len(cs)
        for i in range(n):
            a, b = cs[i], cs[(i + 1) % n]
            if a[2] >= NEAR:
                clipped.append(a)
            if (a[2] >= NEAR) != (b[2] >= NEAR):
                s = (NEAR - a[2]) / (b[2] - a[2])
                clipped.append((a[0] + s * (b[0] - a[0]), a[1] + s * (b[1] - a[1]), NEAR))
        cs = clipped
    hw, hh, fl = cam.w / 2, cam.h / 2, cam.f
    us = [hw + fl * c[0] / c[2] for c in cs]
    vs = [hh - fl * c[1] / c[2] for c in cs]
    x0 = max(0, int(math.floor(min(us) - 0.5)))
    x1 = min(cam.w, int(math.ceil(max(us) + 0.5)))
    y0 = max(0, int(math.floor(min(vs) - 0.5)))
    y1 = min(cam.h, int(math.ceil(max(vs) + 0.5)))
    if x0 >= x1 or y0 >= y1:
        return None
    return x0, x1, y0, y1


def render_clip(scene):
    """All frames of a scene, in display order: a generator of (rgb, labels)."""
    for i in range(scene.frames):
        yield render(scene, i)
