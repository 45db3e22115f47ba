"""Procedural front-camera road frames with exact steering labels and segmentation masks.

Each frame is a pinhole-camera view of a flat world: sky with clouds and a hill line, a
textured ground, and a two-lane road of constant curvature with a dashed centre line and solid
edge lines. The car sits in one lane with a lateral offset and a heading error. Lighting,
haze, ground shadows, roadside objects and coloured patches vary from frame to frame.

Rendering is vectorised per image: every (supersampled) pixel's ray is intersected with the
ground plane and the hit point is converted to road coordinates (arc length ``s`` along the
lane centre, signed lateral distance ``n`` from it), so curves, offsets and heading errors are
exact. The steering label is what a pure-pursuit controller would command to get back to the
lane centre, computed from the same geometry, so the image determines the label.

Sign conventions: positive offset = car right of the lane centre, positive heading = car
pointing to the right of the lane direction, positive curvature = road bends right, positive
steering = steer right. Mask classes: 0 background, 1 drivable road, 2 lane marking.

Layout written by :func:`write_roads` (the driving template's data format)::

    out/images/000000.png ...   RGB frames, 66x200 by default (PilotNet's input)
    out/masks/000000.png ...    uint8 class ids, same stems and size
    out/labels.csv              filename,steering,throttle,curvature,offset
"""

from __future__ import annotations

import csv
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from .coco import coco_split
from .parallel import available_cpus, run_pieces, split
from .png import encode_png
from .staging import staged_dir

DEFAULT_SIZE = 600  # frames; `appgen new` renders them in about 2 CPU-s (the 2 s target)
DEFAULT_HEIGHT, DEFAULT_WIDTH = 66, 200
MIN_SIDE = 16

BACKGROUND, DRIVABLE, LANE_MARKING = 0, 1, 2

WHEELBASE = 2.7  # metres
LOOKAHEAD = 15.0  # pure-pursuit look-ahead along the lane, metres
MAX_STEER = math.radians(8.0)  # steering angle that maps to +-1
MAX_SPEED = 25.0  # m/s, for the throttle label
MAX_LATERAL_ACCEL = 3.0  # m/s^2, comfortable cornering for the throttle label

# Samples per pixel side. 1 (one ray per pixel centre, masks exact there) renders about 2x
# faster than 2 (2x2 samples: anti-aliased lines, masks by majority), the old default.
SUPERSAMPLE = 1
MAX_DISTANCE = 400.0  # ground beyond this is sky-coloured haze
NOISE_CELLS = 64  # side of the wrapping value-noise grids

# Detection sample (write_road_objects): frames with traffic, their boxes in COCO layout.
DETECTION_SIZE = 320  # default frames, a fifth of them the val split
DETECTION_HEIGHT, DETECTION_WIDTH = 96, 192
TRAFFIC_CLASSES = ("car", "pedestrian", "traffic_sign", "traffic_light")
MIN_VISIBLE = 0.5  # share of an object's in-frame pixels that must show for it to get a box
MIN_BOX_SIDE = 5  # pixels: narrower or lower boxes are dropped (too few pixels to tell)
MIN_BOX_AREA = 36  # pixels
VAL_INDEX = 2**30  # val frame i of write_road_objects is frame VAL_INDEX + i of the seed

LABEL_FIELDS = ("filename", "steering", "throttle", "curvature", "offset")
PARALLEL_MIN_FRAMES = 200  # smaller sets are not worth starting worker processes for


# --------------------------------------------------------------------------------------
# Scene parameters and labels
# --------------------------------------------------------------------------------------


def sample_params(rng: np.random.Generator, traffic: bool = False) -> dict[str, Any]:
    """Draw one random scene: road geometry, car pose, camera, lighting and clutter.

    Args:
        rng: the generator to draw from.
        traffic: also place cars, pedestrians, traffic signs and traffic lights
            (``params["traffic"]``, drawn after everything else, so the rest of the scene
            is the one drawn without traffic). The roadside boards of kind ``sign`` are
            left out then: they would be traffic signs without a box.

    Returns:
        A dict of plain floats, ints and lists, accepted by :func:`render_frame`.
    """
    # Most driving is straight; curves have log-uniform radii so sharp bends form the tails.
    if rng.random() < 0.6:
        curvature = float(rng.normal(0.0, 0.0012))
    else:
        radius = math.exp(rng.uniform(math.log(20.0), math.log(800.0)))
        curvature = float(rng.choice((-1.0, 1.0)) / radius)
    lane_width = float(rng.uniform(3.0, 3.8))
    params: dict[str, Any] = {
        "curvature": curvature,
        "offset": float(np.clip(rng.normal(0.0, 0.25), -1.0, 1.0)),
        "heading": float(np.clip(rng.normal(0.0, 0.016), -0.06, 0.06)),
        "lane_side": int(rng.choice((-1, 1))),  # +1: car in the right lane
        "lane_width": lane_width,
        "shoulder": float(rng.uniform(0.2, 0.9)),
        "line_width": float(rng.uniform(0.12, 0.2)),
        "dash_period": float(rng.uniform(9.0, 15.0)),
        "dash_fraction": float(rng.uniform(0.3, 0.5)),
        "dash_phase": float(rng.uniform(0.0, 20.0)),
        "centre_yellow": bool(rng.random() < 0.35),
        "marking_wear": float(rng.uniform(0.55, 1.0)),
        "distance": float(rng.uniform(0.0, 1000.0)),  # shifts textures along the road
        "camera_height": float(rng.uniform(1.25, 1.7)),
        "pitch": float(rng.uniform(0.05, 0.11)),
        "roll": float(np.clip(rng.normal(0.0, 0.012), -0.03, 0.03)),
        "fov": float(rng.uniform(math.radians(55.0), math.radians(70.0))),
        "brightness": float(np.exp(rng.normal(0.0, 0.22))),
        "temperature": float(rng.uniform(-1.0, 1.0)),  # -1 cool/blue .. +1 warm/orange
        "haze": float(rng.uniform(80.0, 500.0)),  # metres
        "noise": float(rng.uniform(0.0, 0.025)),
        "sky": [float(v) for v in _jitter(rng, _pick(rng, _SKIES), 0.05)],
        "ground": [float(v) for v in _jitter(rng, _pick(rng, _GROUNDS), 0.05)],
        "ground_alt": [float(v) for v in _jitter(rng, _pick(rng, _GROUNDS), 0.05)],
        "asphalt": [float(v) for v in _jitter(rng, _pick(rng, _ASPHALTS), 0.03)],
        "clouds": float(rng.uniform(0.0, 0.8)),
        "hills": _sample_hills(rng),
        "texture_seed": int(rng.integers(2**31)),
        "shadows": [_sample_shadow(rng) for _ in range(_count(rng, 0.5, 4))],
        "objects": [_sample_object(rng) for _ in range(_count(rng, 0.85, 9))],
        "patches": [_sample_patch(rng, lane_width) for _ in range(_count(rng, 0.6, 5))],
    }
    if traffic:
        params["objects"] = [obj for obj in params["objects"] if obj["kind"] != "sign"]
        params["traffic"] = _sample_traffic(rng, params)
    return params


def mirror_params(params: dict[str, Any]) -> dict[str, Any]:
    """Return the left-right mirror image of a scene (its steering label is negated)."""
    mirrored = dict(params)
    for key in ("curvature", "offset", "heading", "roll"):
        mirrored[key] = -params[key]
    mirrored["lane_side"] = -params["lane_side"]
    mirrored["hills"] = {**params["hills"], "sin": [-v for v in params["hills"]["sin"]]}
    mirrored["shadows"] = [
        {**shadow, "n": [-v for v in shadow["n"]]} for shadow in params["shadows"]
    ]
    mirrored["objects"] = [{**obj, "n": -obj["n"]} for obj in params["objects"]]
    mirrored["patches"] = [{**patch, "n": -patch["n"]} for patch in params["patches"]]
    if "traffic" in params:
        mirrored["traffic"] = [{**obj, "n": -obj["n"]} for obj in params["traffic"]]
    return mirrored


def steering_from_params(params: dict[str, Any]) -> float:
    """Pure-pursuit steering toward the lane centre ``LOOKAHEAD`` metres ahead, in [-1, 1].

    The target is the lane-centre point at arc length ``LOOKAHEAD`` from the car; with the
    target at angle ``alpha`` and distance ``ld`` in the car frame, the bicycle-model steering
    angle is ``atan(2 * WHEELBASE * sin(alpha) / ld)``, divided by ``MAX_STEER`` and clipped.
    """
    target_x, target_z = _road_to_car(params, LOOKAHEAD, 0.0)
    alpha = math.atan2(target_x, target_z)
    distance = math.hypot(target_x, target_z)
    angle = math.atan(2.0 * WHEELBASE * math.sin(alpha) / distance)
    return float(np.clip(angle / MAX_STEER, -1.0, 1.0))


def throttle_from_params(params: dict[str, Any]) -> float:
    """Throttle in [0.2, 1]: the speed allowed by the visible curve, relative to MAX_SPEED."""
    speed = math.sqrt(MAX_LATERAL_ACCEL / max(abs(params["curvature"]), 1e-6))
    return float(np.clip(speed / MAX_SPEED, 0.2, 1.0))


# --------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------


def render_frame(
    params: dict[str, Any],
    rng: np.random.Generator,
    height: int = DEFAULT_HEIGHT,
    width: int = DEFAULT_WIDTH,
) -> tuple[np.ndarray, np.ndarray]:
    """Render one camera frame and its segmentation mask.

    Args:
        params: a scene from :func:`sample_params` (or :func:`mirror_params`).
        rng: draws the sensor noise only; textures come from ``params["texture_seed"]`` so a
            video's ground stays put from frame to frame.
        height: image rows.
        width: image columns.

    Returns:
        ``(image, mask)``: uint8 arrays of shape (height, width, 3) and (height, width) with
        class ids 0 background, 1 drivable, 2 lane marking.
    """
    image, mask, _ = _render(params, rng, height, width)
    return image, mask


def render_traffic_frame(
    params: dict[str, Any],
    rng: np.random.Generator,
    height: int = DETECTION_HEIGHT,
    width: int = DETECTION_WIDTH,
) -> tuple[np.ndarray, list[tuple[int, tuple[int, int, int, int]]]]:
    """Render a scene with traffic (``sample_params(rng, traffic=True)``) and its boxes.

    Returns:
        ``(image, boxes)``: the uint8 frame and one ``(class index, (x0, y0, x1, y1))`` per
        visible traffic object, class names in ``TRAFFIC_CLASSES``. A box is the exact pixel
        extent (x1, y1 exclusive) of the part of the object that shows: the whole car or
        pedestrian, the board of a sign, the housing of a light, less what nearer objects
        hide and what falls outside the frame. An object is left out (no box) when under
        ``MIN_VISIBLE`` of its in-frame pixels show, or when its box is under
        ``MIN_BOX_SIDE`` pixels wide or high or under ``MIN_BOX_AREA`` pixels in area.
    """
    image, _, boxes = _render(params, rng, height, width)
    return image, boxes


def _render(
    params: dict[str, Any], rng: np.random.Generator, height: int, width: int
) -> tuple[np.ndarray, np.ndarray, list[tuple[int, tuple[int, int, int, int]]]]:
    """The frame, its mask and its traffic boxes (see the two public renderers)."""
    ss = SUPERSAMPLE
    rows, cols = height * ss, width * ss
    textures = np.random.default_rng(params["texture_seed"]).random(
        (4, NOISE_CELLS, NOISE_CELLS), dtype=np.float32
    )

    # Camera rays: image-plane coordinates (after undoing roll), then pitch down.
    focal = (cols / 2.0) / math.tan(params["fov"] / 2.0)
    u = ((np.arange(cols) + 0.5 - cols / 2.0) / focal).astype(np.float32)
    v = ((np.arange(rows) + 0.5 - rows / 2.0) / focal).astype(np.float32)
    cos_r, sin_r = np.float32(math.cos(params["roll"])), np.float32(math.sin(params["roll"]))
    plane_x = u[None, :] * cos_r - v[:, None] * sin_r
    plane_y = u[None, :] * sin_r + v[:, None] * cos_r
    cos_p, sin_p = np.float32(math.cos(params["pitch"])), np.float32(math.sin(params["pitch"]))
    ray_down = plane_y * cos_p + sin_p
    ray_fwd = cos_p - plane_y * sin_p
    hits = ray_down > 1e-6
    cam_h = np.float32(params["camera_height"])
    depth = np.where(hits, cam_h * ray_fwd / np.where(hits, ray_down, np.float32(1.0)), 0)
    depth = depth.astype(np.float32, copy=False)
    ground = hits & (depth < MAX_DISTANCE)
    car_x = plane_x * depth / ray_fwd  # lateral position of the ground hit

    # Only rows holding some ground (or some sky) are shaded as ground (or sky).
    image = np.empty((rows, cols, 3), dtype=np.float32)
    drivable = np.zeros((rows, cols), dtype=bool)
    marking = np.zeros((rows, cols), dtype=bool)
    any_ground = ground.any(axis=1)
    # Start on a whole output pixel so ground textures can be shaded per output pixel.
    first_ground = int(np.argmax(any_ground)) // ss * ss if any_ground.any() else rows
    sky_rows = np.flatnonzero(~ground.all(axis=1))
    last_sky = int(sky_rows[-1]) + 1 if sky_rows.size else 0
    horizon = _lerp(_rgb(params["sky"]), _rgb([0.92, 0.92, 0.95]), 0.55)
    if first_ground < rows:
        part = slice(first_ground, rows)
        image[part], drivable[part], marking[part] = _shade_ground(
            params, textures, horizon, car_x[part], depth[part], ground[part], ss
        )
    if last_sky > 0:
        part = slice(0, last_sky)
        sky = _shade_sky(params, textures, horizon, plane_x[part], ray_down[part], ray_fwd[part])
        image[part] = np.where(ground[part, :, None], image[part], sky)

    # Roadside objects and traffic, far to near so nearer ones cover farther ones. `owner`
    # holds, per pixel, the traffic object whose boxed part shows there (-1: none).
    traffic = params.get("traffic", [])
    owner = np.full((rows, cols), -1, np.int32) if traffic else None
    in_frame = [0] * len(traffic)
    placed = []
    for index, obj in enumerate([*params["objects"], *traffic]):
        base_x, base_z = _road_to_car(params, obj["s"], obj["n"])
        if base_z > 1.0:
            placed.append((base_z, base_x, obj, index - len(params["objects"])))
    for base_z, base_x, obj, number in sorted(placed, key=lambda item: -item[0]):
        window = _object_window(params, obj, base_x, base_z, focal, rows, cols)
        if window is None:
            continue
        fog = math.exp(-base_z / params["haze"])
        patch = image[window]
        if number < 0:
            cover, shading = _object_cover(
                params, obj, base_x, base_z, plane_x[window], plane_y[window]
            )
            color = _lerp(horizon, _rgb(obj["color"]), fog)
            patch[cover] = color * shading[cover][:, None]
        else:
            cover, boxed, colors = _traffic_cover(
                params, obj, base_x, base_z, plane_x[window], plane_y[window]
            )
            patch[cover] = _lerp(horizon, colors[cover], fog)
            in_frame[number] = int(boxed.sum())
        if owner is not None:
            owner[window][cover] = -1
            if number >= 0:
                owner[window][boxed] = number
        drivable[window] &= ~cover
        marking[window] &= ~cover
    boxes = _visible_boxes(owner, traffic, in_frame, ss) if owner is not None else []

    # Lighting: exposure and colour temperature.
    temp = params["temperature"]
    image *= params["brightness"] * _rgb([1.0 + 0.12 * temp, 1.0, 1.0 - 0.15 * temp])

    if ss > 1:
        image = _downsample(image, ss)
    if params["noise"] > 0:
        image += np.float32(params["noise"]) * rng.standard_normal(image.shape, np.float32)
    image_u8 = np.clip(image * 255.0 + 0.5, 0, 255).astype(np.uint8)

    if ss == 1:
        mask = np.where(marking, LANE_MARKING, drivable.astype(np.uint8)).astype(np.uint8)
        return image_u8, mask, boxes
    # A pixel takes the class of the majority of its samples (markings win ties).
    road_cover = _downsample(drivable.astype(np.float32), ss)
    line_cover = _downsample(marking.astype(np.float32), ss)
    mask = np.where(road_cover >= 0.5, DRIVABLE, BACKGROUND)
    mask = np.where(line_cover >= 0.5, LANE_MARKING, mask).astype(np.uint8)
    return image_u8, mask, boxes


def _visible_boxes(
    owner: np.ndarray, traffic: list[dict[str, Any]], in_frame: list[int], ss: int
) -> list[tuple[int, tuple[int, int, int, int]]]:
    """Boxes of the traffic objects that show enough (the rule in render_traffic_frame)."""
    boxes = []
    for number, obj in enumerate(traffic):
        rows, cols = np.nonzero(owner == number)
        if rows.size == 0 or rows.size < MIN_VISIBLE * in_frame[number]:
            continue
        # Output pixels any of whose samples show the object.
        x0, y0 = int(cols.min()) // ss, int(rows.min()) // ss
        x1, y1 = int(cols.max()) // ss + 1, int(rows.max()) // ss + 1
        if min(x1 - x0, y1 - y0) < MIN_BOX_SIDE or (x1 - x0) * (y1 - y0) < MIN_BOX_AREA:
            continue
        boxes.append((TRAFFIC_CLASSES.index(obj["kind"]), (x0, y0, x1, y1)))
    return boxes


def _shade_ground(
    params: dict[str, Any],
    textures: np.ndarray,
    horizon: np.ndarray,
    car_x: np.ndarray,
    depth: np.ndarray,
    ground: np.ndarray,
    ss: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Colour, road mask and marking mask of ground hits (car frame x right, depth forward).

    Edges (road, markings, patches, shadows) use every sample; the smooth textures and the
    haze use one sample per output pixel, broadcast over its ``ss x ss`` block.
    """
    along, lateral = _car_to_road(params, car_x, depth)
    along, lateral = along.astype(np.float32), lateral.astype(np.float32)
    depth = depth.astype(np.float32)

    # Road surface and markings, relative to the road centre between the two lanes.
    lane_width = params["lane_width"]
    across = lateral + np.float32(params["lane_side"] * lane_width / 2.0)
    abs_across = np.abs(across)
    on_road = ground & (abs_across < lane_width + params["shoulder"])
    # Roads do not loop into a full circle: stop after a 1.5 rad bend.
    on_road &= (along > -10.0) & (np.abs(along * params["curvature"]) < 1.5)
    half_line = params["line_width"] / 2.0
    travelled = along + np.float32(params["distance"])
    dashes = np.mod(travelled + np.float32(params["dash_phase"]), params["dash_period"])
    centre_line = (abs_across < half_line) & (
        dashes < params["dash_fraction"] * params["dash_period"]
    )
    edge_line = np.abs(abs_across - lane_width) < half_line
    marking = on_road & (centre_line | edge_line)

    rows, cols = ground.shape
    shape = (rows // ss, 1, cols // ss, 1)  # broadcasts over each pixel's samples
    run, side, cross = travelled[::ss, ::ss], lateral[::ss, ::ss], across[::ss, ::ss]
    grass = _lerp(
        _rgb(params["ground"]),
        _rgb(params["ground_alt"]),
        _smooth_noise(textures[0], run / 6.0, side / 6.0)[..., None] ** 2,
    )
    grass *= (0.85 + 0.3 * _cell_noise(textures[1], run * 3.0, side * 3.0))[..., None]
    grain = (
        0.82
        + 0.16 * _cell_noise(textures[1], run * 5.0, cross * 5.0)
        + 0.12 * _smooth_noise(textures[2], run / 4.0, cross / 4.0)
    )
    surface = np.where(
        on_road.reshape(*shape[:1], ss, shape[2], ss, 1),
        (_rgb(params["asphalt"]) * grain[..., None]).reshape(*shape, 3),
        grass.reshape(*shape, 3),
    ).reshape(rows, cols, 3)
    # Darker tyre tracks in both lanes.
    surface[on_road & (np.abs(np.abs(abs_across - lane_width / 2.0) - 0.8) < 0.3)] *= 0.92
    for patch in params["patches"]:
        inside = ground & (
            ((along - patch["s"]) / patch["rs"]) ** 2 + ((lateral - patch["n"]) / patch["rn"]) ** 2
            < 1.0
        )
        surface[inside] = _lerp(surface[inside], _rgb(patch["color"]), patch["alpha"])
    yellow, white = _rgb([0.85, 0.68, 0.12]), _rgb([0.9, 0.9, 0.88])
    paint = np.where((centre_line[marking] & params["centre_yellow"])[:, None], yellow, white)
    surface[marking] = _lerp(surface[marking], paint, params["marking_wear"])
    if params["shadows"]:
        shade = np.ones(ground.shape, dtype=np.float32)
        for shadow in params["shadows"]:
            shade[ground & _in_polygon(along, lateral, shadow["s"], shadow["n"])] *= shadow[
                "darkness"
            ]
        dark = shade < 1.0
        surface[dark] *= shade[dark][:, None] * _rgb([0.9, 0.95, 1.08])
    fog = np.exp(-depth[::ss, ::ss] / np.float32(params["haze"])).reshape(*shape, 1)
    hazy = _lerp(horizon, surface.reshape(shape[0], ss, shape[2], ss, 3), fog)
    return hazy.reshape(rows, cols, 3), on_road, marking


def _shade_sky(
    params: dict[str, Any],
    textures: np.ndarray,
    horizon: np.ndarray,
    plane_x: np.ndarray,
    ray_down: np.ndarray,
    ray_fwd: np.ndarray,
) -> np.ndarray:
    """Sky gradient, clouds and a far hill line for rows that contain some sky."""
    sky = _rgb(params["sky"])
    azimuth = np.arctan2(plane_x, ray_fwd)
    elevation = np.arctan2(-ray_down, np.hypot(plane_x, ray_fwd))
    image = _lerp(horizon, sky, np.clip(elevation / 0.35, 0.0, 1.0)[..., None])
    cloud = _smooth_noise(textures[3], azimuth * 12.0, elevation * 40.0)
    cloud = np.clip((cloud - (1.0 - params["clouds"])) * 2.4, 0.0, 1.0)[..., None]
    image = _lerp(image, _rgb([0.95, 0.95, 0.97]), cloud)
    # The hill line is a short Fourier series in azimuth, tabulated then interpolated.
    hills = params["hills"]
    table = np.linspace(-math.pi / 2.0, math.pi / 2.0, 721)
    profile = np.full_like(table, hills["base"])
    for freq, cos_c, sin_c in zip(hills["freq"], hills["cos"], hills["sin"], strict=True):
        profile += cos_c * np.cos(freq * table) + sin_c * np.sin(freq * table)
    hill = elevation < np.interp(azimuth, table, profile)
    image[hill] = _lerp(_rgb(hills["color"]), horizon, 0.45)
    return image.astype(np.float32)


# --------------------------------------------------------------------------------------
# Writers
# --------------------------------------------------------------------------------------


def write_roads(
    out: Path,
    *,
    size: int | None = None,
    seed: int = 0,
    height: int = DEFAULT_HEIGHT,
    width: int = DEFAULT_WIDTH,
    progress: bool | None = None,
) -> str:
    """Write ``size`` road frames, their masks and ``labels.csv`` under ``out``.

    Frame ``i`` depends only on ``seed`` and ``i``, so a larger ``size`` extends a smaller one.
    Everything is written to a temporary folder beside ``out`` and renamed into place at the
    end, so a failure leaves nothing half-written.

    Args:
        out: target folder; must be absent or empty.
        size: number of frames (default 600).
        seed: non-negative integer seed.
        height: image rows (default 66, PilotNet's input).
        width: image columns (default 200).
        progress: show a progress bar on stderr; default only when stderr is a terminal.

    Returns:
        A one-line summary.

    Raises:
        ValueError: bad size, seed or image size, or ``out`` is a file.
        FileExistsError: ``out`` is a non-empty folder.
    """
    out = Path(out)
    count = DEFAULT_SIZE if size is None else _positive_int("size", size)
    height, width = _image_side("height", height), _image_side("width", width)
    _check_seed(seed)
    _check_target(out)
    show = sys.stderr.isatty() if progress is None else progress

    with staged_dir(out) as staging:
        (staging / "images").mkdir()
        (staging / "masks").mkdir()
        bar = _Progress(count, "roads") if show else None
        # Frames are independent: large sets are rendered in pieces on every core.
        parts = available_cpus() if count >= PARALLEL_MIN_FRAMES else 1
        pieces = run_pieces(
            _write_frames,
            [(str(staging), seed, start, stop, height, width)
             for start, stop in split(count, parts)],
            local_kwargs={"bar": bar},
        )
        labels = [row for piece in pieces for row in piece]
        if bar is not None:
            bar.update(count)
        with open(staging / "labels.csv", "w", newline="") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(LABEL_FIELDS)
            writer.writerows((f"{index:06d}.png", *(f"{value:.6f}" for value in row))
                             for index, row in enumerate(labels))
        steering = np.array([row[0] for row in labels])
    near_straight = float(np.mean(np.abs(steering) < 0.1))
    return (
        f"wrote {count} road frames ({height}x{width}) with steering labels and masks to "
        f"{out}; steering std {steering.std():.3f}, {near_straight:.0%} within +-0.1"
    )


def _write_frames(
    folder: str,
    seed: int,
    start: int,
    stop: int,
    height: int,
    width: int,
    bar: _Progress | None = None,
) -> list[tuple[float, float, float, float]]:
    """Render frames ``start..stop-1`` into ``folder``; their (steering, throttle, curvature,
    offset) labels. Runs in a worker process for large sets."""
    staging = Path(folder)
    labels = []
    for index in range(start, stop):
        rng = frame_rng(seed, index)
        params = sample_params(rng)
        image, mask = render_frame(params, rng, height, width)
        name = f"{index:06d}.png"
        (staging / "images" / name).write_bytes(encode_png(image, level=1))
        (staging / "masks" / name).write_bytes(encode_png(mask, level=1))
        labels.append((steering_from_params(params), throttle_from_params(params),
                       float(params["curvature"]), float(params["offset"])))
        if bar is not None:  # counts the other workers' frames too
            bar.update(len(os.listdir(staging / "masks")))
    return labels


def write_road_objects(
    out: Path,
    *,
    size: int | None = None,
    seed: int = 0,
    height: int = DETECTION_HEIGHT,
    width: int = DETECTION_WIDTH,
    progress: bool | None = None,
) -> str:
    """Write ``size`` frames with traffic and their boxes under ``out``, in COCO layout.

    ``out/annotations/instances_{train,val}.json`` and ``out/images/{train,val}/NNNNNN.png``;
    a fifth of the frames (at least one) are the val split. Categories (ids from 1) are
    ``TRAFFIC_CLASSES``. Training frame ``i`` is the scene of steering frame ``i`` of
    :func:`write_roads` (same seed) with traffic added; val frames come from their own
    indices (``VAL_INDEX + i``), so a larger ``size`` only adds frames. Boxes follow the
    visibility rule of :func:`render_traffic_frame`.

    Args:
        out: target folder; must be absent or empty.
        size: number of frames (default 320).
        seed: non-negative integer seed.
        height: image rows (default 96).
        width: image columns (default 192).
        progress: show a progress bar on stderr; default only when stderr is a terminal.

    Returns:
        A one-line summary.

    Raises:
        ValueError: bad size, seed or image size, or ``out`` is a file.
        FileExistsError: ``out`` is a non-empty folder.
    """
    out = Path(out)
    count = DETECTION_SIZE if size is None else _positive_int("size", size)
    if count < 2:
        raise ValueError(f"size must be at least 2 frames (train and val), got {count}")
    height, width = _image_side("height", height), _image_side("width", width)
    _check_seed(seed)
    _check_target(out)
    show = sys.stderr.isatty() if progress is None else progress
    val = max(1, count // 5)
    counts = {"train": count - val, "val": val}
    boxes_per_class = [0] * len(TRAFFIC_CLASSES)
    with staged_dir(out) as staging:
        (staging / "annotations").mkdir()
        # Large sets are rendered in pieces on every core, small ones here.
        parts = available_cpus() if count >= PARALLEL_MIN_FRAMES else 1
        jobs = []
        for name, frames in counts.items():
            (staging / "images" / name).mkdir(parents=True)
            first = VAL_INDEX if name == "val" else 0
            jobs += [(name, str(staging / "images" / name), seed, start, stop, height, width,
                      first) for start, stop in split(frames, parts)]
        bar = _Progress(count, "road objects") if show else None
        pieces = run_pieces(_write_object_frames, [job[1:] for job in jobs],
                            local_kwargs={"bar": bar})
        if bar is not None:
            bar.update(count)
        for name in counts:
            frames_boxes = [frame for job, piece in zip(jobs, pieces, strict=True)
                            if job[0] == name for frame in piece]
            coco = coco_split(TRAFFIC_CLASSES, [(f"{index:06d}.png", height, width, boxes)
                                                for index, boxes in frames_boxes])
            for annotation in coco["annotations"]:
                boxes_per_class[annotation["category_id"] - 1] += 1
            (staging / "annotations" / f"instances_{name}.json").write_text(json.dumps(coco))
    per_class = ", ".join(f"{n} {name}" for n, name in zip(boxes_per_class, TRAFFIC_CLASSES,
                                                            strict=True))
    return (f"wrote {count} road frames ({height}x{width}) with {per_class} boxes (COCO layout: "
            f"annotations/instances_{{train,val}}.json, images/{{train,val}}/) to {out}")


def _write_object_frames(
    folder: str,
    seed: int,
    start: int,
    stop: int,
    height: int,
    width: int,
    first_index: int,
    bar: _Progress | None = None,
) -> list[tuple[int, list[tuple[int, tuple[int, int, int, int]]]]]:
    """Render traffic frames ``start..stop-1`` of a split into ``folder``; their boxes.
    Runs in a worker process for large sets."""
    frames = []
    for number in range(start, stop):
        rng = frame_rng(seed, first_index + number)
        image, boxes = render_traffic_frame(sample_params(rng, traffic=True), rng, height, width)
        (Path(folder) / f"{number:06d}.png").write_bytes(encode_png(image, level=1))
        frames.append((number, boxes))
        if bar is not None:  # counts this split's frames only: good enough for a bar
            bar.update(number + 1)
    return frames


def frame_rng(seed: int, index: int) -> np.random.Generator:
    """The generator for frame ``index``: a child seed, independent of how many are drawn."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(index,)))


def write_video(
    out_file: Path,
    n_frames: int = 150,
    seed: int = 0,
    *,
    height: int = DEFAULT_HEIGHT,
    width: int = DEFAULT_WIDTH,
    fps: int = 15,
) -> np.ndarray:
    """Write a smooth drive: an ``.mp4`` (needs imageio + imageio-ffmpeg) or a PNG folder.

    The road curvature drifts between straights and bends, and the car follows the lane
    with a slightly noisy pure-pursuit driver, so offset, heading and steering evolve
    smoothly. A path ending in ``.mp4`` writes a video plus a ``.csv`` of labels beside it;
    any other path becomes a folder of ``000000.png`` frames plus ``labels.csv``.

    Returns:
        The steering label of every frame.

    Raises:
        RuntimeError: an ``.mp4`` was asked for but imageio or its ffmpeg plugin is missing.
        ValueError: bad ``n_frames``, image size or an existing target.
    """
    out_file = Path(out_file)
    n_frames = _positive_int("n_frames", n_frames)
    height, width = _image_side("height", height), _image_side("width", width)
    as_video = out_file.suffix.lower() == ".mp4"
    if out_file.exists() and (as_video or any(out_file.iterdir())):
        raise ValueError(f"{out_file} already exists; choose a new path")
    if as_video:
        try:
            import imageio.v2 as imageio
            import imageio_ffmpeg  # noqa: F401  (the mp4 writer imageio needs)
        except ImportError as error:
            raise RuntimeError(
                "writing an .mp4 needs imageio and imageio-ffmpeg "
                "(pip install imageio imageio-ffmpeg); or give a folder path to get PNG frames"
            ) from error

    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(2**31,)))
    scene = sample_params(rng)
    scene.update(curvature=0.0, offset=0.0, heading=0.0, shadows=[], objects=[], patches=[])
    speed, dt = 15.0, 1.0 / fps
    curve_target, segment_left = 0.0, 1.0
    world_objects: list[dict[str, Any]] = []
    world_shadows: list[dict[str, Any]] = []
    steering = np.empty(n_frames)
    rows = []
    frames = []
    for index in range(n_frames):
        # Road: straights and bends of 1.5-4 s alternate; curvature eases between them.
        segment_left -= dt
        if segment_left <= 0.0:
            segment_left = rng.uniform(1.5, 4.0)
            bend = float(rng.choice((-1.0, 1.0)) / rng.uniform(30.0, 250.0))
            curve_target = bend if curve_target == 0.0 else 0.0
        scene["curvature"] += (curve_target - scene["curvature"]) * min(1.0, dt / 1.0)
        # Clutter lives at fixed distances along the road and scrolls past.
        here = scene["distance"]
        while len(world_objects) < 8:
            obj = _sample_object(rng)
            last = max((o["s"] for o in world_objects), default=here)
            world_objects.append({**obj, "s": last + rng.uniform(4.0, 20.0)})
        while len(world_shadows) < 2:
            shadow = _sample_shadow(rng)
            last = max((min(sh["s"]) for sh in world_shadows), default=here)
            shift = last + rng.uniform(10.0, 40.0) - min(shadow["s"])
            world_shadows.append({**shadow, "s": [s + shift for s in shadow["s"]]})
        scene["objects"] = [{**o, "s": o["s"] - here} for o in world_objects]
        scene["shadows"] = [{**sh, "s": [s - here for s in sh["s"]]} for sh in world_shadows]

        steering[index] = steering_from_params(scene)
        image, mask = render_frame(scene, rng, height, width)
        frames.append(image)
        rows.append((f"{index:06d}.png", steering[index], scene["curvature"], scene["offset"]))

        # Kinematic bicycle: a pure-pursuit driver with a little wobble.
        angle = (steering[index] + rng.normal(0.0, 0.05)) * MAX_STEER
        heading_rate = speed * math.tan(angle) / WHEELBASE - speed * scene["curvature"]
        scene["heading"] += heading_rate * dt
        scene["offset"] += speed * math.sin(scene["heading"]) * dt
        scene["distance"] += speed * dt
        world_objects = [o for o in world_objects if o["s"] > scene["distance"] - 2.0]
        world_shadows = [sh for sh in world_shadows if max(sh["s"]) > scene["distance"] - 2.0]

    if as_video:
        out_file.parent.mkdir(parents=True, exist_ok=True)
        with imageio.get_writer(out_file, fps=fps, macro_block_size=2) as video:
            for image in frames:
                video.append_data(image)  # type: ignore[attr-defined]  # loose stubs
        labels_file = out_file.with_suffix(".csv")
    else:
        out_file.mkdir(parents=True, exist_ok=True)
        for (name, *_), image in zip(rows, frames, strict=True):
            (out_file / name).write_bytes(encode_png(image, level=1))
        labels_file = out_file / "labels.csv"
    with open(labels_file, "w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(("filename", "steering", "curvature", "offset"))
        writer.writerows((n, f"{s:.6f}", f"{c:.6f}", f"{o:.6f}") for n, s, c, o in rows)
    return steering


# --------------------------------------------------------------------------------------
# Geometry helpers
# --------------------------------------------------------------------------------------


def _car_to_road(
    params: dict[str, Any], car_x: np.ndarray, car_z: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Car-frame ground points -> (arc length along the lane centre, signed lateral offset).

    The lane centre is a circle of curvature k through the origin, tangent to +y. Both
    formulas are written so that k -> 0 gives the straight road without a division by zero.
    """
    k, heading = params["curvature"], params["heading"]
    cos_h, sin_h = math.cos(heading), math.sin(heading)
    x = params["offset"] + car_x * cos_h + car_z * sin_h
    y = -car_x * sin_h + car_z * cos_h
    radius_sq = x * x + y * y
    q = np.maximum(1.0 - 2.0 * k * x + k * k * radius_sq, 0.0)
    lateral = (2.0 * x - k * radius_sq) / (1.0 + np.sqrt(q))
    if abs(k) < 1e-9:
        along = y
    else:
        along = np.arctan2(k * y, 1.0 - k * x) / k
    return along, lateral


def _road_to_car(params: dict[str, Any], along: float, lateral: float) -> tuple[float, float]:
    """Road coordinates (s, n) -> car frame (x right, z forward)."""
    k, heading = params["curvature"], params["heading"]
    angle = k * along
    # (1 - cos ks) / k and sin(ks) / k via sinc, stable as k -> 0.
    centre_x = 0.5 * k * along * along * float(np.sinc(angle / (2.0 * math.pi))) ** 2
    centre_y = along * float(np.sinc(angle / math.pi))
    x = centre_x + lateral * math.cos(angle) - params["offset"]
    y = centre_y - lateral * math.sin(angle)
    cos_h, sin_h = math.cos(heading), math.sin(heading)
    return x * cos_h - y * sin_h, x * sin_h + y * cos_h


def _object_window(
    params: dict[str, Any],
    obj: dict[str, Any],
    base_x: float,
    base_z: float,
    focal: float,
    rows: int,
    cols: int,
) -> tuple[slice, slice] | None:
    """The pixel rectangle that can hold an object (its box, rotated by the roll), or None."""
    cos_p, sin_p = math.cos(params["pitch"]), math.sin(params["pitch"])
    cam_h = params["camera_height"]
    plane_y = []
    for down in (cam_h, cam_h - obj["height"]):
        depth = down * sin_p + base_z * cos_p
        plane_y.append((down * cos_p - base_z * sin_p) / depth)
    half = obj["width"] / 2.0 / (cam_h * sin_p + base_z * cos_p)
    centre = base_x / (cam_h * sin_p + base_z * cos_p)
    xs = np.array([centre - half, centre + half, centre - half, centre + half])
    ys = np.array([plane_y[0], plane_y[0], plane_y[1], plane_y[1]])
    cos_r, sin_r = math.cos(params["roll"]), math.sin(params["roll"])
    u = (xs * cos_r + ys * sin_r) * focal + cols / 2.0 - 0.5
    v = (-xs * sin_r + ys * cos_r) * focal + rows / 2.0 - 0.5
    col0, col1 = max(math.floor(u.min()) - 1, 0), min(math.floor(u.max()) + 2, cols)
    row0, row1 = max(math.floor(v.min()) - 1, 0), min(math.floor(v.max()) + 2, rows)
    if col0 >= col1 or row0 >= row1:
        return None
    return slice(row0, row1), slice(col0, col1)


def _object_cover(
    params: dict[str, Any],
    obj: dict[str, Any],
    base_x: float,
    base_z: float,
    plane_x: np.ndarray,
    plane_y: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Pixels covered by an upright object standing at car-frame ground point (x, z).

    Returns the cover and a brightness factor that grows toward the object's top (sky light).
    """
    cos_p, sin_p = math.cos(params["pitch"]), math.sin(params["pitch"])

    def project(down: float) -> tuple[float, float, float]:
        # World (x, down, z) -> image-plane coordinates before roll (the inverse of the rays).
        depth = down * sin_p + base_z * cos_p
        return base_x / depth, (down * cos_p - base_z * sin_p) / depth, depth

    cam_h = params["camera_height"]
    centre_x, base_y, depth = project(cam_h)
    _, top_y, _ = project(cam_h - obj["height"])
    half = obj["width"] / 2.0 / depth
    shading = 0.75 + 0.35 * np.clip((plane_y - base_y) / (top_y - base_y), 0.0, 1.0)
    if obj["kind"] == "tree":
        trunk_top = project(cam_h - obj["height"] * 0.45)[1]
        trunk = (np.abs(plane_x - centre_x) < half * 0.18) & (plane_y > trunk_top)
        trunk &= plane_y < base_y
        crown_ry = 0.55 * (trunk_top - top_y)  # from the top to a little below the trunk top
        mid_y = top_y + crown_ry
        crown = ((plane_x - centre_x) / half) ** 2 + ((plane_y - mid_y) / crown_ry) ** 2 < 1.0
        return trunk | crown, shading
    if obj["kind"] == "sign":
        board_bottom = project(cam_h - obj["height"] * 0.65)[1]
        pole = (np.abs(plane_x - centre_x) < half * 0.12) & (plane_y < base_y)
        pole &= plane_y > board_bottom
        board = (np.abs(plane_x - centre_x) < half) & (plane_y > top_y)
        return pole | (board & (plane_y <= board_bottom)), shading
    box = (np.abs(plane_x - centre_x) < half) & (plane_y > top_y) & (plane_y < base_y)
    return box, shading


def _traffic_cover(
    params: dict[str, Any],
    obj: dict[str, Any],
    base_x: float,
    base_z: float,
    plane_x: np.ndarray,
    plane_y: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pixels a traffic object covers, the part its box frames, and per-pixel colours.

    Shapes are drawn in metres on the object's upright plane: ``a`` across (0 at its axis),
    ``h`` above the ground (linear between the projected base and top).
    """
    cos_p, sin_p = math.cos(params["pitch"]), math.sin(params["pitch"])
    cam_h, height = params["camera_height"], obj["height"]
    depth = cam_h * sin_p + base_z * cos_p
    base_y = (cam_h * cos_p - base_z * sin_p) / depth
    top_depth = (cam_h - height) * sin_p + base_z * cos_p
    top_y = ((cam_h - height) * cos_p - base_z * sin_p) / top_depth
    a = (plane_x - base_x / depth) * np.float32(depth)
    h = (base_y - plane_y) / np.float32(base_y - top_y) * np.float32(height)
    colors = np.empty((*a.shape, 3), np.float32)
    kind, half = obj["kind"], obj["width"] / 2.0
    if kind == "car":
        body = (np.abs(a) < half) & (h >= 0.18) & (h < 0.58 * height)
        wheels = (h >= 0.0) & (h < 0.25) & (np.abs(np.abs(a) - 0.7 * half) < 0.2 * half)
        rise = np.clip((h - 0.58 * height) / (0.42 * height), 0.0, 1.0)
        cabin = (h >= 0.58 * height) & (h < height) & (np.abs(a) < half * (0.86 - 0.14 * rise))
        glass = cabin & (h >= 0.63 * height) & (h < 0.94 * height)
        glass &= np.abs(a) < half * (0.76 - 0.14 * rise)
        lamps = body & (h > 0.38 * height) & (h < 0.5 * height) & (np.abs(a) > 0.68 * half)
        cover = body | wheels | cabin
        colors[:] = _rgb(obj["color"])
        colors *= (0.8 + 0.3 * np.clip(h / height, 0.0, 1.0))[..., None]
        colors[wheels & ~body] = _rgb([0.05, 0.05, 0.05])
        colors[glass] = _rgb([0.1, 0.12, 0.16]) + 0.25 * _rgb(params["sky"])
        colors[lamps] = _rgb(obj["lamp"])
        return cover, cover, colors
    if kind == "pedestrian":
        legs = (h >= 0.0) & (h < 0.47 * height)
        legs &= np.abs(np.abs(a - obj["lean"] * h) - obj["stride"]) < 0.075
        rise = np.clip((h - 0.47 * height) / (0.35 * height), 0.0, 1.0)
        torso = (h >= 0.47 * height) & (h < 0.82 * height) & (np.abs(a) < half * (0.7 + 0.3 * rise))
        head = (a / 0.09) ** 2 + ((h - (height - 0.115)) / 0.115) ** 2 < 1.0
        neck = (np.abs(a) < 0.05) & (h >= 0.82 * height) & (h < height - 0.2)
        cover = legs | torso | head | neck
        colors[:] = _rgb(obj["skin"])
        colors[legs] = _rgb(obj["trousers"])
        colors[torso] = _rgb(obj["color"])
        colors *= (0.8 + 0.3 * np.clip(h / height, 0.0, 1.0))[..., None]
        return cover, cover, colors
    if kind == "traffic_sign":
        side = obj["width"]
        pole = (np.abs(a) < 0.04) & (h >= 0.0) & (h < height - side)
        across, up = np.abs(a), h - (height - side / 2.0)
        if obj["shape"] == "circle":
            board = across**2 + up**2 < (side / 2.0) ** 2
            inner = across**2 + up**2 < (0.36 * side) ** 2
        elif obj["shape"] == "triangle":
            below_top = height - h
            board = (below_top >= 0.0) & (below_top < 0.87 * side)
            board &= across < below_top / (0.87 * side) * half
            inner = (below_top >= 0.2 * side) & (below_top < 0.75 * side)
            inner &= across < (below_top - 0.2 * side) / (0.87 * side) * half
        else:
            board = (across < half) & (np.abs(up) < half)
            inner = (across < 0.12 * side) & (np.abs(up) < 0.3 * side)
        colors[:] = _rgb([0.55, 0.55, 0.58])
        colors[board] = _rgb(obj["color"])
        colors[board & inner] = _rgb([0.92, 0.92, 0.9])
        return pole | board, board, colors
    # traffic_light: a dark housing of three lamps, one lit, on a pole
    housing_h = 2.5 * obj["width"]
    pole = (np.abs(a) < 0.06) & (h >= 0.0) & (h < height - housing_h)
    housing = (np.abs(a) < half) & (h >= height - housing_h) & (h < height)
    colors[:] = _rgb([0.3, 0.3, 0.32])
    colors[housing] = _rgb(obj["color"])
    for lamp, lit_color in enumerate(((1.0, 0.15, 0.1), (1.0, 0.7, 0.1), (0.2, 1.0, 0.45))):
        centre = height - housing_h * (2 * lamp + 1) / 6.0
        bulb = housing & (a**2 + (h - centre) ** 2 < (0.32 * obj["width"]) ** 2)
        colors[bulb] = _rgb(lit_color if lamp == obj["lit"] else [0.18, 0.18, 0.18])
    return pole | housing, housing, colors


def _in_polygon(px: np.ndarray, py: np.ndarray, xs: list[float], ys: list[float]) -> np.ndarray:
    """Even-odd point-in-polygon test, vectorised over points, looping over the few edges."""
    inside = np.zeros(px.shape, dtype=bool)
    box = (px >= min(xs)) & (px <= max(xs)) & (py >= min(ys)) & (py <= max(ys))
    if not box.any():
        return inside
    bx, by = px[box], py[box]
    hit = np.zeros(bx.shape, dtype=bool)
    for i in range(len(xs)):
        x1, y1, x2, y2 = xs[i - 1], ys[i - 1], xs[i], ys[i]
        if y1 == y2:
            continue
        crosses = (y1 > by) != (y2 > by)
        hit ^= crosses & (bx < x1 + (by - y1) * (x2 - x1) / (y2 - y1))
    inside[box] = hit
    return inside


def _cell_noise(grid: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Blocky value noise in [0, 1): one random value per unit cell, wrapping."""
    wrap = grid.shape[0] - 1  # the side is a power of two
    ia = np.floor(a).astype(np.int32) & wrap
    ib = np.floor(b).astype(np.int32) & wrap
    return grid.ravel().take(ia * grid.shape[0] + ib)


def _smooth_noise(grid: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Bilinear value noise in [0, 1), wrapping."""
    side = grid.shape[0]
    wrap, flat = side - 1, grid.ravel()
    fa, fb = np.floor(a), np.floor(b)
    ta, tb = a - fa, b - fb
    ia, ib = fa.astype(np.int32) & wrap, fb.astype(np.int32) & wrap
    ja, jb = ((ia + 1) & wrap) * side, (ib + 1) & wrap
    ia *= side
    top = _lerp(flat.take(ia + ib), flat.take(ia + jb), tb)
    bottom = _lerp(flat.take(ja + ib), flat.take(ja + jb), tb)
    return _lerp(top, bottom, ta)


def _downsample(image: np.ndarray, factor: int) -> np.ndarray:
    """Average factor x factor blocks of the first two axes."""
    total = image[::factor, ::factor].copy()
    for i in range(factor):
        for j in range(factor):
            if i or j:
                total += image[i::factor, j::factor]
    return total * np.float32(1.0 / (factor * factor))


def _lerp(a: Any, b: Any, t: Any) -> Any:
    return a + (b - a) * t


def _rgb(color: list[float]) -> np.ndarray:
    return np.asarray(color, dtype=np.float32)


# --------------------------------------------------------------------------------------
# Scene palettes and samplers
# --------------------------------------------------------------------------------------

_SKIES = ((0.45, 0.62, 0.88), (0.62, 0.7, 0.8), (0.78, 0.78, 0.8), (0.85, 0.62, 0.45))
_GROUNDS = (
    (0.3, 0.45, 0.18),  # grass
    (0.45, 0.5, 0.25),  # dry grass
    (0.52, 0.42, 0.28),  # dirt
    (0.72, 0.64, 0.46),  # sand
    (0.82, 0.84, 0.86),  # snow
    (0.22, 0.32, 0.16),  # dark vegetation
)
_ASPHALTS = ((0.3, 0.3, 0.31), (0.4, 0.4, 0.4), (0.22, 0.22, 0.24), (0.55, 0.54, 0.52))
_OBJECTS = {  # kind: (width range m, height range m, distance from road edge m, colours)
    "pole": ((0.15, 0.35), (4.0, 9.0), (0.5, 4.0), ((0.45, 0.42, 0.38), (0.6, 0.6, 0.6))),
    "tree": ((2.0, 6.0), (4.0, 12.0), (1.5, 10.0), ((0.15, 0.32, 0.12), (0.25, 0.38, 0.15))),
    "sign": ((0.6, 1.4), (2.0, 3.5), (0.5, 3.0), ((0.85, 0.1, 0.1), (0.1, 0.3, 0.8))),
    "building": ((6.0, 20.0), (4.0, 15.0), (6.0, 25.0), ((0.6, 0.5, 0.45), (0.7, 0.7, 0.72))),
    "bush": ((0.8, 2.5), (0.5, 1.4), (0.8, 6.0), ((0.2, 0.35, 0.12), (0.35, 0.4, 0.2))),
}


def _pick(rng: np.random.Generator, options: tuple) -> Any:
    return options[int(rng.integers(len(options)))]


def _jitter(rng: np.random.Generator, color: tuple, amount: float) -> np.ndarray:
    return np.clip(np.array(color) + rng.normal(0.0, amount, 3), 0.0, 1.0)


def _count(rng: np.random.Generator, chance: float, most: int) -> int:
    """Zero with probability 1 - chance, else 1..most."""
    return int(rng.integers(1, most + 1)) if rng.random() < chance else 0


def _sample_hills(rng: np.random.Generator) -> dict[str, Any]:
    freqs = [float(f) for f in rng.uniform(2.0, 14.0, 3)]
    return {
        "base": float(rng.uniform(0.0, 0.04)),
        "freq": freqs,
        "cos": [float(c) for c in rng.normal(0.0, 0.012, 3)],
        "sin": [float(c) for c in rng.normal(0.0, 0.012, 3)],
        "color": [float(c) for c in _jitter(rng, (0.3, 0.4, 0.3), 0.06)],
    }


def _sample_shadow(rng: np.random.Generator) -> dict[str, Any]:
    """A ground polygon (arc length s, lateral n) darkened as if by a tree or building."""
    centre_s, centre_n = rng.uniform(3.0, 45.0), rng.uniform(-12.0, 12.0)
    corners = int(rng.integers(3, 7))
    angles = np.sort(rng.uniform(0.0, 2.0 * math.pi, corners))
    reach_s, reach_n = rng.uniform(1.0, 10.0), rng.uniform(0.5, 6.0)
    radii = rng.uniform(0.5, 1.0, corners)
    return {
        "s": [float(v) for v in centre_s + reach_s * radii * np.cos(angles)],
        "n": [float(v) for v in centre_n + reach_n * radii * np.sin(angles)],
        "darkness": float(rng.uniform(0.35, 0.7)),
    }


def _sample_object(rng: np.random.Generator) -> dict[str, Any]:
    kind = str(_pick(rng, tuple(_OBJECTS)))
    widths, heights, gaps, colors = _OBJECTS[kind]
    width = float(rng.uniform(*widths))
    # n is measured from the car's lane centre; keep objects clear of a ~9 m wide road.
    side = float(rng.choice((-1.0, 1.0)))
    lateral = side * (5.5 + rng.uniform(*gaps) + width / 2.0)
    return {
        "kind": kind,
        "s": float(rng.uniform(6.0, 90.0)),
        "n": float(lateral),
        "width": width,
        "height": float(rng.uniform(*heights)),
        "color": [float(c) for c in _jitter(rng, _pick(rng, colors), 0.05)],
    }


_CAR_COLORS = ((0.75, 0.75, 0.78), (0.12, 0.12, 0.14), (0.6, 0.08, 0.08), (0.1, 0.2, 0.5),
               (0.92, 0.92, 0.9), (0.45, 0.45, 0.48), (0.2, 0.35, 0.25), (0.8, 0.6, 0.1))
_CLOTHES = ((0.1, 0.1, 0.12), (0.2, 0.25, 0.45), (0.7, 0.15, 0.15), (0.85, 0.85, 0.8),
            (0.35, 0.3, 0.25), (0.2, 0.45, 0.25), (0.9, 0.6, 0.1))
_SKIN = ((0.95, 0.8, 0.68), (0.8, 0.6, 0.45), (0.55, 0.38, 0.26), (0.35, 0.24, 0.16))


def _sample_traffic(rng: np.random.Generator, params: dict[str, Any]) -> list[dict[str, Any]]:
    """Cars in both lanes, pedestrians beside and across the road, signs and lights beside it.

    Positions are drawn across the road centre (``c``, the middle of the two lanes) and
    converted to ``n``, measured from the car's lane centre like the roadside objects.
    """
    lane, side = params["lane_width"], params["lane_side"]
    edge = lane + params["shoulder"]

    def at(across: float, along: float) -> dict[str, Any]:
        return {"s": float(along), "n": float(across - side * lane / 2.0)}

    def either() -> float:
        return float(rng.choice((-1.0, 1.0)))

    objects: list[dict[str, Any]] = []
    for _ in range(int(rng.integers(0, 5))):
        which = either()
        objects.append({
            "kind": "car", **at(which * lane / 2.0 + rng.normal(0.0, 0.15), rng.uniform(9, 50)),
            "width": float(rng.uniform(1.65, 2.0)), "height": float(rng.uniform(1.35, 1.9)),
            "color": [float(v) for v in _jitter(rng, _pick(rng, _CAR_COLORS), 0.04)],
            # tail lights on cars going our way, headlights on oncoming ones
            "lamp": [0.85, 0.1, 0.08] if which == side else [0.95, 0.95, 0.8],
        })
    for _ in range(int(rng.integers(0, 4))):
        across = (rng.uniform(-edge, edge) if rng.random() < 0.2
                  else either() * (edge + rng.uniform(0.3, 2.5)))
        objects.append({
            "kind": "pedestrian", **at(across, rng.uniform(6, 22)),
            "width": float(rng.uniform(0.55, 0.7)), "height": float(rng.uniform(1.5, 1.9)),
            "stride": float(rng.uniform(0.06, 0.2)), "lean": float(rng.normal(0.0, 0.04)),
            "color": [float(v) for v in _jitter(rng, _pick(rng, _CLOTHES), 0.05)],
            "trousers": [float(v) for v in _jitter(rng, _pick(rng, _CLOTHES), 0.05)],
            "skin": [float(v) for v in _pick(rng, _SKIN)],
        })
    for _ in range(int(rng.integers(0, 4))):
        shape = str(_pick(rng, ("circle", "triangle", "square")))
        color = (0.1, 0.25, 0.7) if shape == "square" else (0.8, 0.08, 0.08)
        objects.append({
            "kind": "traffic_sign", **at(either() * (edge + rng.uniform(0.4, 1.5)),
                                         rng.uniform(7, 30)),
            "width": float(rng.uniform(0.7, 1.0)), "height": float(rng.uniform(2.1, 2.8)),
            "shape": shape, "color": [float(v) for v in _jitter(rng, color, 0.04)],
        })
    for _ in range(int(rng.integers(0, 3))):
        housing = (0.08, 0.08, 0.09) if rng.random() < 0.7 else (0.6, 0.5, 0.12)
        objects.append({
            "kind": "traffic_light", **at(either() * (edge + rng.uniform(0.3, 1.2)),
                                          rng.uniform(10, 32)),
            "width": float(rng.uniform(0.55, 0.75)), "height": float(rng.uniform(2.8, 4.0)),
            "lit": int(rng.integers(3)), "color": [float(v) for v in _jitter(rng, housing, 0.02)],
        })
    return objects


def _sample_patch(rng: np.random.Generator, lane_width: float) -> dict[str, Any]:
    """A flat ellipse on the ground: repair patches and puddles on the road, paint off it."""
    on_road = rng.random() < 0.5
    if on_road:
        lateral = rng.uniform(-1.5, 1.5) * lane_width
        color = _jitter(rng, (0.18, 0.18, 0.2), 0.04) if rng.random() < 0.6 else rng.random(3)
    else:
        lateral = float(rng.choice((-1.0, 1.0))) * rng.uniform(2.5 * lane_width, 15.0)
        color = rng.random(3)
    return {
        "s": float(rng.uniform(4.0, 60.0)),
        "n": float(lateral),
        "rs": float(rng.uniform(0.6, 4.0)),
        "rn": float(rng.uniform(0.3, 2.0)),
        "color": [float(c) for c in color],
        "alpha": float(rng.uniform(0.3, 0.8)),
    }


# --------------------------------------------------------------------------------------
# Argument checks and progress
# --------------------------------------------------------------------------------------


def _check_seed(seed: Any) -> None:
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _image_side(name: str, value: Any) -> int:
    value = _positive_int(name, value)
    if value < MIN_SIDE:
        raise ValueError(f"{name} must be at least {MIN_SIDE} pixels, got {value}")
    return value


def _check_target(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out} is a file; give a folder path for the dataset")
    if out.is_dir() and any(out.iterdir()):
        raise FileExistsError(f"{out} is not empty; choose a new folder or empty it first")


class _Progress:
    """A one-line progress bar on stderr, redrawn about every 5%."""

    def __init__(self, total: int, label: str) -> None:
        self.total, self.label = total, label
        self.step = max(1, total // 20)
        self.drawn = 0
        self.start = time.perf_counter()

    def update(self, done: int) -> None:
        # `done` may jump (frames written by other workers) and repeat; draw each step once.
        if done <= self.drawn or (done - self.drawn < self.step and done != self.total):
            return
        self.drawn = done
        rate = done / max(time.perf_counter() - self.start, 1e-9)
        filled = int(20 * done / self.total)
        bar = "#" * filled + "." * (20 - filled)
        end = "\n" if done == self.total else ""
        sys.stderr.write(f"\r{self.label} [{bar}] {done}/{self.total} {rate:.0f} frames/s{end}")
        sys.stderr.flush()
