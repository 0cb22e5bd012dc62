"""SynthMOT: procedurally generated pedestrian-tracking sequences.

The generator writes the MOTChallenge layout of ``docs/design.md``::

    OUT/{train,val,test}/SEQ/seqinfo.ini, img1/000001.jpg, gt/gt.txt
    OUT/annotations/{train,val,test}_cocoformat.json   (CocoVID, + num_ids)
    OUT/meta.json                                      (arguments and counts)

Scenes are built to make detection and re-identification non-trivial:
people-like figures (head, torso, arms, legs) with per-identity clothing
colours and patterns (a fraction of identities are near-copies of another),
perspective scaling, painter's-order occlusion by other people and by static
scene objects (visibility is the visible fraction of the figure's pixels),
entries and exits at the borders, walkers aimed at each other so that paths
cross, turning, stops and speed changes, a panning camera, changing light,
motion blur, sensor noise and textured backgrounds.

Everything is drawn with numpy and cv2 from one seed: the same seed and knobs
give byte-identical files. This module uses only numpy, cv2 and tqdm.

Example:
    >>> from mmtrack_kd.datasets.synthmot import generate_synthmot
    >>> meta = generate_synthmot('data/synthmot_quick', preset='quick')
    >>> meta['splits']['train']['num_ids'] > 0
    True
"""
import json
import math
import os
import os.path as osp
import shutil
import tempfile
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np
from tqdm import tqdm

from .mot_io import write_mot_txt

SPLITS = ('train', 'val', 'test')
SYNTHMOT_VERSION = 1
_SPLIT_CODE = {'train': 11, 'val': 23, 'test': 37}


@dataclass(frozen=True)
class Knob:
    """One generation parameter: type, default, inclusive bounds, help."""
    type: type
    default: object
    low: float
    high: float
    help: str


# Every knob is a CLI flag (``--num-seqs-train`` for ``num_seqs_train``).
KNOBS: Dict[str, Knob] = {
    'num_seqs_train': Knob(int, 4, 1, 1000, 'sequences in the train split'),
    'num_seqs_val': Knob(int, 2, 1, 1000, 'sequences in the val split'),
    'num_seqs_test': Knob(int, 2, 1, 1000, 'sequences in the test split'),
    'num_frames': Knob(int, 150, 2, 100000, 'frames per sequence'),
    'width': Knob(int, 384, 64, 4096, 'image width in pixels'),
    'height': Knob(int, 224, 64, 4096, 'image height in pixels'),
    'frame_rate': Knob(int, 25, 1, 240, 'frameRate written to seqinfo.ini'),
    'min_people': Knob(int, 8, 0, 1000,
                       'lower end of the crowd size the scene aims at'),
    'max_people': Knob(int, 18, 0, 1000,
                       'upper end of the crowd size the scene aims at'),
    'person_height': Knob(float, 0.45, 0.05, 1.5,
                          'figure height at the bottom row, as a fraction '
                          'of the image height (perspective shrinks it '
                          'towards the horizon)'),
    'min_person_height': Knob(int, 16, 6, 1000,
                              'figure height in pixels at the far limit'),
    'horizon': Knob(float, 0.22, 0.0, 0.8,
                    'horizon row as a fraction of the image height'),
    'speed': Knob(float, 0.8, 0.0, 20.0,
                  'mean walking speed in body heights per second (about '
                  '1.4 m/s for 0.8; the frame rate converts it to pixels '
                  'per frame)'),
    'turn_prob': Knob(float, 0.04, 0.0, 1.0,
                      'per-frame probability that a walker starts turning'),
    'stand_frac': Knob(float, 0.1, 0.0, 1.0,
                       'fraction of identities that stand still for a while'),
    'entry_rate': Knob(float, 0.25, 0.0, 1.0,
                       'per-frame probability that someone enters while the '
                       'crowd is below its target size'),
    'crossing_frac': Knob(float, 0.4, 0.0, 1.0,
                          'fraction of entries aimed at an oncoming walker '
                          'on the same row (paths cross, one occludes the '
                          'other)'),
    'leave_frac': Knob(float, 0.5, 0.0, 1.0,
                       'fraction of identities that turn round and leave '
                       'early (shorter lifetimes)'),
    'empty_start': Knob(int, 0, 0, 100000,
                        'frames with nobody at the start of each sequence; '
                        'people then enter from the borders'),
    'lookalike_frac': Knob(float, 0.2, 0.0, 1.0,
                           'fraction of identities dressed almost like '
                           'another identity of the same sequence'),
    'occluders': Knob(int, 3, 0, 100,
                      'static scene objects (posts, bushes, boxes, panels) '
                      'per sequence'),
    'camera_motion': Knob(float, 10.0, 0.0, 1000.0,
                          'camera pan amplitude in pixels (0: static)'),
    'lighting': Knob(float, 0.25, 0.0, 0.9,
                     'relative amplitude of the brightness change over time'),
    'blur': Knob(float, 5.0, 0.0, 50.0,
                 'maximum motion-blur kernel length in pixels (0: none)'),
    'noise': Knob(float, 4.0, 0.0, 100.0,
                  'sensor noise standard deviation in grey levels'),
    'texture': Knob(float, 0.6, 0.0, 1.0,
                    'strength of background texture and clutter'),
    'jpeg_quality': Knob(int, 90, 10, 100, 'JPEG quality of the frames'),
}

PRESETS: Dict[str, Dict[str, object]] = {
    # seconds to generate: unit tests, smoke runs, the demo
    'quick': dict(num_seqs_train=3, num_seqs_val=1, num_seqs_test=1,
                  num_frames=40, width=320, height=192, min_people=4,
                  max_people=9, min_person_height=14, empty_start=2),
    # the CPU knowledge-distillation benchmark
    'bench': dict(num_seqs_train=4, num_seqs_val=2, num_seqs_test=2,
                  num_frames=150, width=384, height=224, min_people=10,
                  max_people=20),
}


def resolve_knobs(preset: str = 'quick', **knobs) -> Dict[str, object]:
    """Merge defaults, a preset and explicit knobs, and check them.

    Args:
        preset: a key of :data:`PRESETS`.
        **knobs: overrides; ``None`` values are ignored (unset CLI flags).

    Returns:
        dict: every knob of :data:`KNOBS` with its final value.

    Raises:
        ValueError: unknown preset or knob, or a value of the wrong type or
            out of range; the message starts with the knob's name.
    """
    if preset not in PRESETS:
        raise ValueError(f'preset: unknown preset {preset!r}, '
                         f'expected one of {sorted(PRESETS)}')
    values = {name: k.default for name, k in KNOBS.items()}
    values.update(PRESETS[preset])
    for name, value in knobs.items():
        if name not in KNOBS:
            raise ValueError(f'{name}: unknown SynthMOT knob, expected one '
                             f'of {sorted(KNOBS)}')
        if value is not None:
            values[name] = value
    for name, value in values.items():
        problem = check_knob(name, value)
        if problem:
            raise ValueError(f'{name}: {problem}')
        values[name] = KNOBS[name].type(value)
    if values['min_people'] > values['max_people']:
        raise ValueError(f'min_people: {values["min_people"]} is larger than '
                         f'max_people={values["max_people"]}')
    return values


def check_knob(name: str, value: object) -> Optional[str]:
    """Return why ``value`` is not acceptable for knob ``name``, or None."""
    knob = KNOBS[name]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f'expected a number, got {value!r}'
    if knob.type is int and float(value) != int(value):
        return f'expected an integer, got {value!r}'
    if not math.isfinite(float(value)):
        return f'expected a finite number, got {value!r}'
    if not knob.low <= value <= knob.high:
        return (f'{value!r} is out of range, expected '
                f'{knob.low:g} <= value <= {knob.high:g}')
    return None


def sequence_name(split: str, index: int) -> str:
    """Name of the ``index``-th (0-based) sequence of ``split``."""
    return f'SYNTH-{split.upper()}-{index + 1:02d}'


def sequence_rng(seed: int, split: str, index: int) -> np.random.Generator:
    """The random generator of one sequence: distinct for every
    (seed, split, index), so splits never share scenes or identities."""
    return np.random.default_rng(
        np.random.SeedSequence([int(seed), _SPLIT_CODE[split], int(index)]))


# --------------------------------------------------------------------------
# Appearance and figure drawing
# --------------------------------------------------------------------------
PATTERNS = ('solid', 'hstripes', 'vstripes', 'checker', 'twotone')


@dataclass
class Appearance:
    """How one identity looks. Colours are BGR uint8 triples."""
    skin: Tuple[int, int, int]
    hair: Tuple[int, int, int]
    shirt: Tuple[int, int, int]
    shirt2: Tuple[int, int, int]
    pants: Tuple[int, int, int]
    shoes: Tuple[int, int, int]
    pattern: int
    stripe: float  # stripe period as a fraction of the figure height
    build: float  # width factor
    stature: float  # height factor
    hat: bool

    def key(self) -> tuple:
        """A hashable summary (tests compare identities with it)."""
        return (self.skin, self.hair, self.shirt, self.shirt2, self.pants,
                self.pattern, round(self.build, 4), round(self.stature, 4))


def _colour(rng: np.random.Generator, low: int = 0,
            high: int = 256) -> Tuple[int, int, int]:
    return tuple(int(v) for v in rng.integers(low, high, size=3))


def random_appearance(rng: np.random.Generator) -> Appearance:
    """Draw a fresh identity appearance."""
    skin_base = np.array([60, 90, 140]) + rng.uniform(0.4, 1.25) * np.array(
        [50, 60, 80])
    skin = tuple(int(v) for v in np.clip(skin_base, 0, 255))
    return Appearance(
        skin=skin,
        hair=_colour(rng, 0, 120),
        shirt=_colour(rng),
        shirt2=_colour(rng),
        pants=_colour(rng, 0, 200),
        shoes=_colour(rng, 0, 80),
        pattern=int(rng.integers(len(PATTERNS))),
        stripe=float(rng.uniform(0.05, 0.12)),
        build=float(rng.uniform(0.85, 1.2)),
        stature=float(rng.uniform(0.88, 1.1)),
        hat=bool(rng.random() < 0.2))


def lookalike_appearance(rng: np.random.Generator,
                         base: Appearance) -> Appearance:
    """A near-copy of ``base``: same pattern, colours jittered slightly."""

    def jitter(c):
        return tuple(int(v) for v in np.clip(
            np.array(c) + rng.integers(-10, 11, size=3), 0, 255))

    return Appearance(
        skin=jitter(base.skin), hair=jitter(base.hair),
        shirt=jitter(base.shirt), shirt2=jitter(base.shirt2),
        pants=jitter(base.pants), shoes=jitter(base.shoes),
        pattern=base.pattern, stripe=base.stripe * float(
            rng.uniform(0.9, 1.1)),
        build=base.build * float(rng.uniform(0.96, 1.04)),
        stature=base.stature * float(rng.uniform(0.97, 1.03)),
        hat=base.hat)


def draw_figure(app: Appearance, height: int,
                phase: float) -> Tuple[np.ndarray, np.ndarray]:
    """Draw one standing/walking figure in its own patch.

    Args:
        app: the identity's appearance.
        height: figure height in pixels (>= 4); the figure spans the patch
            rows from the top of the head to the soles.
        phase: walking cycle phase in radians (limbs swing with its sine).

    Returns:
        tuple: ``colour`` (h, w, 3) uint8 BGR and ``mask`` (h, w) bool, where
        ``h == height`` and ``w`` is about ``0.6 * height``.
    """
    h = max(int(height), 4)
    w = max(int(math.ceil(0.6 * h * app.build)), 3)
    img = np.zeros((h, w, 3), np.uint8)
    cx = w / 2.0
    # cv2 draws with integer coordinates; a shift of 2 bits gives quarter
    # pixel accuracy for the small figures
    s = 4

    def pt(x, y):
        return (int(round(x * s)), int(round(y * s)))

    def th(t):
        return max(int(round(t)), 1)

    swing = math.sin(phase)
    hip_y = 0.52 * h
    shoulder_y = 0.19 * h
    leg_t = 0.11 * h * app.build
    stride = 0.13 * h * swing
    # legs: back leg first, front leg second (darker back leg for depth)
    for sign, shade in ((-1, 0.8), (1, 1.0)):
        hip = (cx + sign * 0.05 * h * app.build, hip_y)
        foot = (cx + sign * stride, h - 0.05 * h)
        colour = tuple(int(c * shade) for c in app.pants)
        cv2.line(img, pt(*hip), pt(*foot), colour, th(leg_t), cv2.LINE_AA, 2)
        shoe = tuple(int(c * shade) for c in app.shoes)
        cv2.ellipse(img, pt(foot[0] + 0.02 * h, h - 0.035 * h),
                    pt(0.06 * h, 0.035 * h), 0, 0, 360, shoe, -1,
                    cv2.LINE_AA, 2)
    # back arm
    arm_len = 0.33 * h
    arm_t = 0.065 * h * app.build
    shoulder_dx = 0.15 * h * app.build

    def arm(sign, shade):
        sh = (cx + sign * shoulder_dx * 0.8, shoulder_y + 0.03 * h)
        ang = 0.45 * swing * sign
        hand = (sh[0] + arm_len * math.sin(ang) + sign * 0.03 * h,
                sh[1] + arm_len * math.cos(ang))
        colour = tuple(int(c * shade) for c in app.shirt)
        cv2.line(img, pt(*sh), pt(*hand), colour, th(arm_t), cv2.LINE_AA, 2)
        cv2.circle(img, pt(*hand), int(0.035 * h * s) + 1, app.skin, -1,
                   cv2.LINE_AA, 2)

    arm(-1, 0.8)
    # torso with its clothing pattern
    torso = np.array([
        pt(cx - shoulder_dx, shoulder_y), pt(cx + shoulder_dx, shoulder_y),
        pt(cx + 0.12 * h * app.build, hip_y + 0.02 * h),
        pt(cx - 0.12 * h * app.build, hip_y + 0.02 * h)
    ], np.int32)
    tmask = np.zeros((h, w), np.uint8)
    cv2.fillConvexPoly(tmask, torso, 1, cv2.LINE_8, 2)
    pattern = _torso_pattern(app, h, w, shoulder_y, hip_y)
    sel = tmask.astype(bool)
    img[sel] = pattern[sel]
    arm(1, 1.0)
    # neck and head
    head_r = 0.075 * h
    head_c = (cx, 0.085 * h)
    cv2.line(img, pt(cx, head_c[1]), pt(cx, shoulder_y + 0.01 * h), app.skin,
             th(0.05 * h), cv2.LINE_AA, 2)
    cv2.circle(img, pt(*head_c), int(head_r * s), app.skin, -1, cv2.LINE_AA,
               2)
    hair_colour = app.shirt2 if app.hat else app.hair
    cv2.ellipse(img, pt(*head_c), pt(head_r * 1.05, head_r * 1.05), 0, 180,
                360, hair_colour, -1, cv2.LINE_AA, 2)
    if app.hat:
        cv2.line(img, pt(cx - head_r * 1.5, head_c[1] - 0.2 * head_r),
                 pt(cx + head_r * 1.5, head_c[1] - 0.2 * head_r),
                 hair_colour, th(0.02 * h), cv2.LINE_AA, 2)
    mask = img.max(axis=2) > 0
    # pure black pixels of the drawing count as figure too
    mask |= tmask.astype(bool)
    return img, mask


def _torso_pattern(app: Appearance, h: int, w: int, top: float,
                   bottom: float) -> np.ndarray:
    """A (h, w, 3) image of the identity's shirt pattern."""
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    period = max(app.stripe * h, 2.0)
    name = PATTERNS[app.pattern]
    if name == 'solid':
        sel = np.zeros((h, w), bool)
    elif name == 'hstripes':
        sel = ((ys - top) // (period / 2)) % 2 == 1
    elif name == 'vstripes':
        sel = (xs // (period / 2)) % 2 == 1
    elif name == 'checker':
        sel = ((xs // period + (ys - top) // period) % 2) == 1
    else:  # twotone
        sel = ys > (top + bottom) / 2
    out = np.empty((h, w, 3), np.uint8)
    out[...] = np.array(app.shirt, np.uint8)
    out[sel] = np.array(app.shirt2, np.uint8)
    # keep the clothes distinguishable from an all-zero background
    np.maximum(out, 1, out=out)
    return out


# --------------------------------------------------------------------------
# Scene objects
# --------------------------------------------------------------------------
@dataclass
class Person:
    """A walker in world coordinates (feet position)."""
    pid: int  # MOT identity, 1-based within the sequence
    app: Appearance
    x: float
    y: float
    heading: float  # radians, 0 = towards +x
    speed: float  # body heights per second
    base_speed: float
    phase: float = 0.0
    turn: float = 0.0
    stand_left: int = 0
    leave_at: int = -1  # frame at which the person heads out, -1: never
    leaving: bool = False


@dataclass
class Occluder:
    """A static scene object: its patch and where its base stands."""
    x: float  # patch left edge in world coordinates
    y: float  # base row in world coordinates (its depth)
    colour: np.ndarray  # (h, w, 3) uint8
    mask: np.ndarray  # (h, w) bool


@dataclass
class Perspective:
    """Figure height as a linear function of the feet row."""
    horizon: float
    bottom: float
    ref_height: float  # height at the bottom row
    min_height: float

    def height(self, y: float) -> float:
        return self.ref_height * (y - self.horizon) / (
            self.bottom - self.horizon)

    @property
    def far_y(self) -> float:
        """The row at which figures reach their minimum height."""
        return self.horizon + self.min_height / self.ref_height * (
            self.bottom - self.horizon)


def make_background(rng: np.random.Generator, width: int, height: int,
                    horizon: float, texture: float) -> np.ndarray:
    """A textured scene canvas (height, width, 3) uint8 BGR: a wall with
    windows and posters above the horizon, paved ground with perspective
    lines below, low-frequency shading and clutter."""
    ys = np.arange(height, dtype=np.float32)[:, None, None]
    wall = np.array(_colour(rng, 60, 200), np.float32)
    ground = np.array(_colour(rng, 50, 170), np.float32)
    hz = int(horizon)
    canvas = np.empty((height, width, 3), np.float32)
    canvas[:] = ground
    canvas[:hz] = wall
    # vertical gradient on the ground
    grad = 0.75 + 0.35 * np.clip((ys - hz) / max(height - hz, 1), 0, 1)
    canvas[hz:] *= grad[hz:]
    # wall: windows and posters
    for _ in range(int(rng.integers(3, 10))):
        w = int(rng.uniform(0.03, 0.12) * width)
        h = int(rng.uniform(0.2, 0.9) * max(hz, 1))
        x0 = int(rng.uniform(0, width - w))
        y0 = int(rng.uniform(0, max(hz - h, 1)))
        canvas[y0:y0 + h, x0:x0 + w] = np.array(_colour(rng), np.float32)
    # ground: perspective paving lines
    line = np.array(_colour(rng, 30, 230), np.float32)
    vp_x = rng.uniform(0.3, 0.7) * width
    step = max(int(width / rng.uniform(6, 14)), 4)
    strength = 0.35 * texture
    for x_bottom in range(-width, 2 * width, step):
        p0 = (int(vp_x + (x_bottom - vp_x) * 0.05), hz)
        p1 = (int(x_bottom), height)
        overlay = canvas.copy()
        cv2.line(overlay, p0, p1, line.tolist(), 1, cv2.LINE_AA)
        canvas = canvas * (1 - strength) + overlay * strength
    k = 1.0
    row = float(hz + 2)
    while row < height:
        overlay = canvas.copy()
        cv2.line(overlay, (0, int(row)), (width, int(row)), line.tolist(),
                 1, cv2.LINE_AA)
        canvas = canvas * (1 - strength) + overlay * strength
        k *= 1.35
        row += 2.0 * k
    # clutter: blobs and rectangles that look a bit like clothing colours
    for _ in range(int(rng.integers(10, 25) * texture)):
        c = np.array(_colour(rng), np.float32)
        x, y = int(rng.uniform(0, width)), int(rng.uniform(hz, height))
        ax = int(rng.uniform(2, 0.04 * width + 3))
        ay = int(rng.uniform(1, 0.02 * height + 2))
        alpha = rng.uniform(0.2, 0.6) * texture
        overlay = canvas.copy()
        cv2.ellipse(overlay, (x, y), (ax, ay), float(rng.uniform(0, 180)), 0,
                    360, c.tolist(), -1, cv2.LINE_AA)
        canvas = canvas * (1 - alpha) + overlay * alpha
    # low and high frequency shading
    low = rng.random((max(height // 24, 2), max(width // 24, 2), 3))
    low = cv2.resize(low.astype(np.float32), (width, height),
                     interpolation=cv2.INTER_CUBIC)
    canvas *= 1 + 0.5 * texture * (low - 0.5)
    canvas += 20 * texture * rng.standard_normal(
        (height, width, 1)).astype(np.float32)
    return np.clip(canvas, 0, 255).astype(np.uint8)


def make_occluder(rng: np.random.Generator, persp: Perspective, x: float,
                  y: float) -> Occluder:
    """A random static object standing at world (x, y)."""
    ph = max(persp.height(y), persp.min_height)
    kind = int(rng.integers(4))
    colour = np.array(_colour(rng, 20, 230), np.float32)
    if kind == 0:  # post / lamp
        w, h = max(int(0.1 * ph), 2), int(1.4 * ph)
    elif kind == 1:  # bush
        w, h = int(rng.uniform(0.8, 1.4) * ph), int(rng.uniform(0.35, 0.6) *
                                                     ph)
    elif kind == 2:  # crate / bin
        w, h = int(rng.uniform(0.4, 0.8) * ph), int(rng.uniform(0.3, 0.55) *
                                                     ph)
    else:  # advertising panel
        w, h = int(rng.uniform(0.4, 0.7) * ph), int(rng.uniform(0.7, 1.0) *
                                                     ph)
    w, h = max(w, 2), max(h, 2)
    mask = np.zeros((h, w), np.uint8)
    if kind == 1:
        cv2.ellipse(mask, (w // 2, h), (w // 2, h), 0, 180, 360, 1, -1)
    else:
        mask[:] = 1
    img = np.empty((h, w, 3), np.float32)
    img[:] = colour
    shade = rng.random((max(h // 4, 1), max(w // 4, 1), 1)).astype(np.float32)
    shade = cv2.resize(shade, (w, h), interpolation=cv2.INTER_LINEAR)
    img *= (0.7 + 0.6 * shade)[..., None] if shade.ndim == 2 else \
        0.7 + 0.6 * shade
    if kind == 3:  # poster in the panel
        b = max(w // 8, 1)
        img[b:h - b, b:w - b] = np.array(_colour(rng), np.float32)
    img = np.clip(img, 1, 255).astype(np.uint8)
    return Occluder(x=x - w / 2, y=y, colour=img, mask=mask.astype(bool))


# --------------------------------------------------------------------------
# Sequence simulation
# --------------------------------------------------------------------------
@dataclass
class FrameObject:
    """Something to draw in one frame, in image coordinates."""
    depth: float
    x0: int
    y0: int
    colour: np.ndarray
    mask: np.ndarray
    pid: int  # MOT id, or 0 for scene objects


def render_frame(background: np.ndarray, objects: Sequence[FrameObject]
                 ) -> Tuple[np.ndarray, List[Tuple[int, List[float], float]]]:
    """Paint ``objects`` far to near over ``background`` and measure them.

    Args:
        background: (H, W, 3) uint8 image, not modified.
        objects: figures (pid > 0) and scene objects (pid == 0) with their
            patch origin in image pixels and their depth (feet row; larger
            is nearer and painted later).

    Returns:
        tuple: the image (H, W, 3) uint8 and, for every figure whose box
        overlaps the image, ``(pid, [x, y, w, h], visibility)`` where the box
        is the figure's full extent clipped to the image and visibility the
        fraction of its pixels that remain visible (occlusion and image
        border both count).
    """
    img = background.copy()
    H, W = img.shape[:2]
    owner = np.full((H, W), -1, np.int32)
    order = sorted(range(len(objects)), key=lambda i: objects[i].depth)
    for i in order:
        ob = objects[i]
        h, w = ob.mask.shape
        x0, y0 = max(ob.x0, 0), max(ob.y0, 0)
        x1, y1 = min(ob.x0 + w, W), min(ob.y0 + h, H)
        if x1 <= x0 or y1 <= y0:
            continue
        m = ob.mask[y0 - ob.y0:y1 - ob.y0, x0 - ob.x0:x1 - ob.x0]
        region = img[y0:y1, x0:x1]
        region[m] = ob.colour[y0 - ob.y0:y1 - ob.y0, x0 - ob.x0:x1 - ob.x0][m]
        owner[y0:y1, x0:x1][m] = i
    counts = np.bincount(owner[owner >= 0].ravel(), minlength=len(objects))
    annos = []
    for i, ob in enumerate(objects):
        if ob.pid <= 0:
            continue
        rows = np.flatnonzero(ob.mask.any(axis=1))
        cols = np.flatnonzero(ob.mask.any(axis=0))
        if len(rows) == 0:
            continue
        bx0, by0 = ob.x0 + cols[0], ob.y0 + rows[0]
        bx1, by1 = ob.x0 + cols[-1] + 1, ob.y0 + rows[-1] + 1
        cx0, cy0 = max(bx0, 0), max(by0, 0)
        cx1, cy1 = min(bx1, W), min(by1, H)
        if cx1 <= cx0 or cy1 <= cy0:
            continue  # entirely outside the image
        total = int(ob.mask.sum())
        vis = float(counts[i]) / total if total else 0.0
        annos.append((ob.pid, [float(cx0), float(cy0), float(cx1 - cx0),
                               float(cy1 - cy0)], round(min(vis, 1.0), 3)))
    return img, annos


@dataclass
class SequenceResult:
    """What :func:`generate_sequence` produced for one sequence."""
    name: str
    rows: np.ndarray  # (R, 9) gt rows
    num_ids: int
    appearances: Dict[int, tuple] = field(default_factory=dict)


class SceneSimulator:
    """Moves people and the camera of one sequence frame by frame.

    Args:
        rng: the sequence's random generator (all randomness comes from it).
        knobs: resolved knobs (see :func:`resolve_knobs`).
    """

    def __init__(self, rng: np.random.Generator, knobs: Dict[str, object]):
        self.rng = rng
        self.k = knobs
        W, H = int(knobs['width']), int(knobs['height'])
        self.W, self.H = W, H
        self.margin = int(math.ceil(knobs['camera_motion'])) + 1
        self.persp = Perspective(
            horizon=knobs['horizon'] * H, bottom=float(H),
            ref_height=knobs['person_height'] * H,
            min_height=float(knobs['min_person_height']))
        if self.persp.far_y >= H:
            # the minimum height is larger than the bottom height: all
            # figures walk on the lowest rows
            self.persp.min_height = 0.8 * self.persp.ref_height
        m = self.margin
        self.canvas = make_background(rng, W + 2 * m, H + 2 * m,
                                      self.persp.horizon + m,
                                      knobs['texture'])
        self.people: List[Person] = []
        self.next_pid = 1
        self.appearances: List[Appearance] = []
        self.occluders = [self._new_occluder() for _ in
                          range(int(knobs['occluders']))]
        amp = float(knobs['camera_motion'])
        self.cam_params = (amp, rng.uniform(60, 160), rng.uniform(0, 6.3),
                           rng.uniform(25, 70), rng.uniform(0, 6.3))
        self.light_params = (rng.uniform(40, 120), rng.uniform(0, 6.3),
                             rng.uniform(-1, 1, size=3) * 0.06)
        self.target_phase = rng.uniform(0, 6.3)

    # world coordinates: the image shows world [cam_x, cam_x + W)
    def camera(self, t: int) -> Tuple[int, int]:
        amp, p1, f1, p2, f2 = self.cam_params
        cx = amp * (0.7 * math.sin(2 * math.pi * t / p1 + f1) +
                    0.3 * math.sin(2 * math.pi * t / p2 + f2))
        cy = 0.3 * amp * math.sin(2 * math.pi * t / p2 + f1)
        return int(round(cx)), int(round(cy))

    def _y_range(self) -> Tuple[float, float]:
        top = self.persp.far_y
        bottom = self.H + 0.1 * self.persp.ref_height
        return top, bottom

    def _new_occluder(self) -> Occluder:
        top, _ = self._y_range()
        y = float(self.rng.uniform(top + 0.1 * (self.H - top), self.H + 2))
        x = float(self.rng.uniform(0, self.W))
        return make_occluder(self.rng, self.persp, x, y)

    def _new_appearance(self) -> Appearance:
        rng = self.rng
        if self.appearances and rng.random() < self.k['lookalike_frac']:
            base = self.appearances[int(rng.integers(len(self.appearances)))]
            app = lookalike_appearance(rng, base)
        else:
            app = random_appearance(rng)
        self.appearances.append(app)
        return app

    def spawn(self, t: int, inside: bool) -> Person:
        """Add a person, either somewhere inside the view or at a border."""
        rng = self.rng
        top, bottom = self._y_range()
        y = float(top + (bottom - top) * math.sqrt(rng.random()))
        h = self.persp.height(y)
        if inside:
            x = float(rng.uniform(0, self.W))
            heading = float(rng.choice([0.0, math.pi]) + rng.normal(0, 0.4))
        else:
            from_left = rng.random() < 0.5
            walkers = [p for p in self.people if p.stand_left == 0]
            if walkers and rng.random() < self.k['crossing_frac']:
                # head towards a walker on (nearly) the same row, so that the
                # two cross and occlude each other
                other = walkers[int(rng.integers(len(walkers)))]
                from_left = math.cos(other.heading) < 0
                y = float(np.clip(other.y + rng.normal(0, 0.02 * self.H),
                                  top, bottom))
                h = self.persp.height(y)
            x = -0.35 * h - self.margin if from_left else \
                self.W + 0.35 * h + self.margin
            heading = float((0.0 if from_left else math.pi) +
                            rng.normal(0, 0.2))
        base_speed = float(max(rng.normal(1.0, 0.3), 0.2) * self.k['speed'])
        p = Person(pid=self.next_pid, app=self._new_appearance(), x=x, y=y,
                   heading=heading, speed=base_speed, base_speed=base_speed,
                   phase=float(rng.uniform(0, 2 * math.pi)))
        if rng.random() < self.k['stand_frac']:
            p.stand_left = int(rng.integers(10, 60))
        if rng.random() < self.k['leave_frac']:
            p.leave_at = t + int(rng.integers(20, 100))
        self.next_pid += 1
        self.people.append(p)
        return p

    def target(self, t: int) -> int:
        lo, hi = int(self.k['min_people']), int(self.k['max_people'])
        wave = 0.5 + 0.5 * math.sin(2 * math.pi * t / 90 + self.target_phase)
        return int(round(lo + (hi - lo) * wave))

    def step(self, t: int) -> None:
        """Advance the crowd from frame ``t - 1`` to frame ``t``."""
        rng = self.rng
        k = self.k
        if t < k['empty_start']:
            return
        if t == k['empty_start']:
            # the opening crowd (after an empty start it appears at once)
            for _ in range(self.target(t)):
                self.spawn(t, inside=True)
        else:
            deficit = self.target(t) - len(self.people)
            if deficit > 0 and rng.random() < min(1.0, k['entry_rate'] *
                                                  deficit):
                self.spawn(t, inside=False)
        top, bottom = self._y_range()
        keep = []
        for p in self.people:
            if t > k['empty_start']:
                self._move(p, t, top, bottom)
            h = self.persp.height(p.y)
            out_x = p.x < -h - self.margin - 2 or \
                p.x > self.W + h + self.margin + 2
            if not out_x:
                keep.append(p)
        self.people = keep

    def _move(self, p: Person, t: int, top: float, bottom: float) -> None:
        rng = self.rng
        if p.leave_at == t:
            p.leaving = True
            p.stand_left = 0
            p.heading = math.pi if p.x > self.W / 2 else 0.0
            p.turn = 0.0
        if p.stand_left > 0:
            p.stand_left -= 1
            p.phase *= 0.8  # legs come to rest
            return
        if not p.leaving and rng.random() < self.k['turn_prob']:
            p.turn = float(rng.normal(0, 0.08))
        p.turn *= 0.93
        p.heading += p.turn + float(rng.normal(0, 0.01))
        p.speed = float(np.clip(p.speed + rng.normal(0, 0.05 * p.base_speed),
                                0.4 * p.base_speed, 1.7 * p.base_speed))
        h = max(self.persp.height(p.y), 1.0)
        step = p.speed * h / self.k['frame_rate'] * (1.3 if p.leaving else 1)
        vx = step * math.cos(p.heading)
        vy = 0.45 * step * math.sin(p.heading)  # depth is foreshortened
        p.x += vx
        p.y += vy
        if p.y < top or p.y > bottom:
            p.y = float(np.clip(p.y, top, bottom))
            p.heading = -p.heading
        # one leg cycle per 0.8 body heights walked
        p.phase += 2 * math.pi * math.hypot(vx, vy) / (0.8 * h)

    def frame_objects(self, t: int) -> List[FrameObject]:
        """Everything to paint in frame ``t``, in image coordinates."""
        cam_x, cam_y = self.camera(t)
        objs = []
        for p in self.people:
            h = int(round(self.persp.height(p.y) * p.app.stature))
            if h < 4:
                continue
            colour, mask = draw_figure(p.app, h, p.phase)
            x0 = int(round(p.x - mask.shape[1] / 2)) - cam_x
            y0 = int(round(p.y)) - h - cam_y
            objs.append(FrameObject(p.y, x0, y0, colour, mask, p.pid))
        for o in self.occluders:
            objs.append(FrameObject(o.y - 0.5, int(round(o.x)) - cam_x,
                                    int(round(o.y)) - o.mask.shape[0] - cam_y,
                                    o.colour, o.mask, 0))
        return objs

    def background(self, t: int) -> np.ndarray:
        cam_x, cam_y = self.camera(t)
        m = self.margin
        return self.canvas[m + cam_y:m + cam_y + self.H,
                           m + cam_x:m + cam_x + self.W]

    def photograph(self, img: np.ndarray, t: int) -> np.ndarray:
        """Apply lighting, motion blur and sensor noise."""
        rng = self.rng
        k = self.k
        period, phase, tint = self.light_params
        out = img.astype(np.float32)
        if k['lighting'] > 0:
            gain = 1.0 + k['lighting'] * math.sin(2 * math.pi * t / period +
                                                  phase)
            ramp = np.linspace(-1, 1, self.W, dtype=np.float32)[None, :, None]
            shift = math.sin(2 * math.pi * t / (1.7 * period))
            out *= gain * (1 + 0.3 * k['lighting'] * shift * ramp) * (
                1 + tint * k['lighting'] * 4).astype(np.float32)
        if k['blur'] >= 2:
            c0, c1 = self.camera(t), self.camera(t + 1)
            vx, vy = c1[0] - c0[0], c1[1] - c0[1]
            length = min(k['blur'], 1.5 * math.hypot(vx, vy) +
                         k['blur'] * 0.5 * rng.random())
            if length >= 2:
                angle = math.atan2(vy, vx) if (vx or vy) else \
                    rng.uniform(0, math.pi)
                out = cv2.filter2D(out, -1, _line_kernel(length, angle))
        if k['noise'] > 0:
            out += k['noise'] * rng.standard_normal(out.shape,
                                                    dtype=np.float32)
        return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def _line_kernel(length: float, angle: float) -> np.ndarray:
    """A normalised motion-blur kernel: a line of ``length`` pixels."""
    n = int(math.ceil(length)) | 1
    kern = np.zeros((n, n), np.float32)
    c = n // 2
    dx, dy = math.cos(angle) * length / 2, math.sin(angle) * length / 2
    cv2.line(kern, (int(round(c - dx)), int(round(c - dy))),
             (int(round(c + dx)), int(round(c + dy))), 1.0, 1)
    return kern / kern.sum()


def generate_sequence(seq_dir: str, name: str, rng: np.random.Generator,
                      knobs: Dict[str, object],
                      progress: Optional[tqdm] = None) -> SequenceResult:
    """Simulate, render and write one sequence.

    Args:
        seq_dir: the sequence folder to create (``.../SPLIT/NAME``).
        name: the sequence name (written to seqinfo.ini).
        rng: the sequence's random generator.
        knobs: resolved knobs.
        progress: a tqdm bar advanced by one per frame.

    Returns:
        SequenceResult: the gt rows (frame, id, x, y, w, h, 1, 1, vis) in
        frame then id order, the number of identities that appear, and the
        appearance key of each of them.
    """
    sim = SceneSimulator(rng, knobs)
    img_dir = osp.join(seq_dir, 'img1')
    os.makedirs(img_dir)
    os.makedirs(osp.join(seq_dir, 'gt'))
    params = [cv2.IMWRITE_JPEG_QUALITY, int(knobs['jpeg_quality'])]
    rows = []
    seen = {}
    for t in range(int(knobs['num_frames'])):
        sim.step(t)
        img, annos = render_frame(sim.background(t), sim.frame_objects(t))
        img = sim.photograph(img, t)
        ok, buf = cv2.imencode('.jpg', img, params)
        if not ok:
            raise RuntimeError(f'cv2 failed to encode frame {t + 1} of {name}')
        with open(osp.join(img_dir, f'{t + 1:06d}.jpg'), 'wb') as f:
            f.write(buf.tobytes())
        apps = {p.pid: p.app for p in sim.people}
        for pid, box, vis in sorted(annos, key=lambda a: a[0]):
            rows.append([t + 1, pid, *box, 1, 1, vis])
            seen.setdefault(pid, apps[pid].key())
        if progress is not None:
            progress.update(1)
    rows = np.asarray(rows, np.float64).reshape(-1, 9)
    write_mot_txt(osp.join(seq_dir, 'gt', 'gt.txt'), rows, gt=True)
    with open(osp.join(seq_dir, 'seqinfo.ini'), 'w') as f:
        f.write('[Sequence]\n'
                f'name={name}\n'
                'imDir=img1\n'
                f'frameRate={int(knobs["frame_rate"])}\n'
                f'seqLength={int(knobs["num_frames"])}\n'
                f'imWidth={int(knobs["width"])}\n'
                f'imHeight={int(knobs["height"])}\n'
                'imExt=.jpg\n')
    return SequenceResult(name=name, rows=rows, num_ids=len(seen),
                          appearances=seen)


def build_cocovid(results: Sequence[SequenceResult],
                  knobs: Dict[str, object]) -> dict:
    """The CocoVID dict of one split (the layout of mmdet's ``mot2coco``),
    from the split's sequences in order.

    ``instance_id`` is unique over the split and contiguous from 0, in order
    of first appearance; ``num_ids`` holds how many there are.
    """
    W, H = int(knobs['width']), int(knobs['height'])
    out = dict(categories=[dict(id=1, name='pedestrian')], videos=[],
               images=[], annotations=[])
    img_id, ann_id, ins_id = 1, 1, 0
    for vid_id, res in enumerate(results, start=1):
        out['videos'].append(dict(id=vid_id, name=res.name,
                                  fps=int(knobs['frame_rate']), width=W,
                                  height=H))
        ins_map = {}
        by_frame = {}
        for r in res.rows:
            by_frame.setdefault(int(r[0]), []).append(r)
        for frame_id in range(int(knobs['num_frames'])):
            mot_frame = frame_id + 1
            out['images'].append(dict(
                id=img_id, video_id=vid_id,
                file_name=f'{res.name}/img1/{mot_frame:06d}.jpg', height=H,
                width=W, frame_id=frame_id, mot_frame_id=mot_frame))
            for r in by_frame.get(mot_frame, []):
                mot_id = int(r[1])
                if mot_id not in ins_map:
                    ins_map[mot_id] = ins_id
                    ins_id += 1
                x, y, w, h = (round(float(v), 2) for v in r[2:6])
                out['annotations'].append(dict(
                    id=ann_id, image_id=img_id, category_id=1,
                    instance_id=ins_map[mot_id], bbox=[x, y, w, h],
                    area=round(w * h, 4), iscrowd=False,
                    visibility=round(float(r[8]), 3),
                    mot_instance_id=mot_id, mot_conf=1.0, mot_class_id=1))
                ann_id += 1
            img_id += 1
    out['num_ids'] = ins_id
    return out


def generate_synthmot(out_dir: str, preset: str = 'quick', seed: int = 0,
                      overwrite: bool = False, show_progress: bool = True,
                      **knobs) -> dict:
    """Generate a SynthMOT dataset.

    The data is written to a temporary folder beside ``out_dir`` and moved
    into place only when everything succeeded, so a failed run never leaves
    a half-written dataset nor destroys an existing one.

    Args:
        out_dir: the dataset root to create.
        preset: ``'quick'`` (seconds) or ``'bench'`` (the CPU benchmark).
        seed: the master seed; equal seeds and knobs give identical bytes.
        overwrite: replace an existing non-empty ``out_dir``.
        show_progress: show a tqdm bar over all frames.
        **knobs: any key of :data:`KNOBS` to override the preset.

    Returns:
        dict: the content of ``meta.json`` (``name``, ``version``,
        ``preset``, ``seed``, ``knobs`` with every knob's final value, and
        ``splits``: per split ``sequences``, ``num_frames``, ``num_boxes``,
        ``num_ids``, ``empty_frames``, ``mean_boxes_per_frame``,
        ``mean_visibility``).

    Raises:
        ValueError: a bad knob value (the message starts with its name).
        FileExistsError: ``out_dir`` exists, is not empty and ``overwrite``
            is False.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) \
            or seed < 0:
        raise ValueError(f'seed: expected an integer >= 0, got {seed!r}')
    values = resolve_knobs(preset, **knobs)
    out_dir = osp.abspath(os.fspath(out_dir))
    if osp.exists(out_dir):
        if not osp.isdir(out_dir):
            raise FileExistsError(f'{out_dir} exists and is not a folder')
        if os.listdir(out_dir) and not overwrite:
            raise FileExistsError(
                f'{out_dir} exists and is not empty; pass overwrite=True '
                '(--overwrite) to replace it')
    parent = osp.dirname(out_dir)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f'.{osp.basename(out_dir)}.', dir=parent,
                           suffix='.tmp')
    try:
        os.chmod(tmp, 0o755)  # mkdtemp makes it private
        meta = _generate_into(tmp, preset, int(seed), values, show_progress)
        _swap_into_place(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return meta


def _generate_into(root: str, preset: str, seed: int,
                   knobs: Dict[str, object], show_progress: bool) -> dict:
    """Write every split, its CocoVID json and meta.json under ``root``
    (an empty folder); returns the meta dict."""
    num_seqs = {s: int(knobs[f'num_seqs_{s}']) for s in SPLITS}
    total = sum(num_seqs.values()) * int(knobs['num_frames'])
    os.makedirs(osp.join(root, 'annotations'))
    meta = dict(name='SynthMOT', version=SYNTHMOT_VERSION, preset=preset,
                seed=seed, knobs=dict(knobs), splits={})
    with tqdm(total=total, desc='SynthMOT', unit='frame',
              disable=not show_progress) as bar:
        for split in SPLITS:
            results = []
            for i in range(num_seqs[split]):
                name = sequence_name(split, i)
                bar.set_postfix_str(name)
                results.append(generate_sequence(
                    osp.join(root, split, name), name,
                    sequence_rng(seed, split, i), knobs, bar))
            coco = build_cocovid(results, knobs)
            with open(osp.join(root, 'annotations',
                               f'{split}_cocoformat.json'), 'w') as f:
                json.dump(coco, f, separators=(',', ':'))
            rows = [r.rows for r in results]
            allrows = np.concatenate(rows) if rows else np.zeros((0, 9))
            busy = sum(len(np.unique(r[:, 0])) for r in rows)
            n_frames = num_seqs[split] * int(knobs['num_frames'])
            meta['splits'][split] = dict(
                sequences=[r.name for r in results], num_frames=n_frames,
                num_boxes=int(len(allrows)), num_ids=coco['num_ids'],
                empty_frames=int(n_frames - busy),
                mean_boxes_per_frame=round(len(allrows) / n_frames, 3),
                mean_visibility=round(float(allrows[:, 8].mean()), 4)
                if len(allrows) else None)
    with open(osp.join(root, 'meta.json'), 'w') as f:
        json.dump(meta, f, indent=2)
        f.write('\n')
    return meta


def _swap_into_place(tmp: str, out_dir: str) -> None:
    """Move the finished ``tmp`` onto ``out_dir``, replacing it if present;
    the old data is removed only after the new data is in place."""
    if not osp.exists(out_dir):
        os.replace(tmp, out_dir)
        return
    old = tmp[:-len('.tmp')] + '.old'
    os.replace(out_dir, old)
    try:
        os.replace(tmp, out_dir)
    except BaseException:
        os.replace(old, out_dir)
        raise
    shutil.rmtree(old, ignore_errors=True)
