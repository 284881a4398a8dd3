"""A synthetic person re-identification dataset in Market-1501's exact layout
and naming, the data of the demo (`make demo`, docs/teaching.md): it
exercises the real Market-1501 parser (data_prep/market1501.py) and needs no
download.

Pedestrians are drawn procedurally with numpy, a whole batch of images at a
time (no external assets):

- per identity: clothing colours (upper, lower, pattern, shoes, hair, skin),
  a pattern on the upper body (plain, horizontal stripes or checks; its
  period), short or long sleeves, shorts or trousers, a shoulder bag or not
  (colour, side), body proportions (height, width, leg length, head size);
- per camera: illumination gain, a colour cast, viewpoint (mirrored, seen
  from the back, a slight shear), the person's scale, blur, sensor noise and
  a background of its own;
- per image: position and scale jitter, stride, and a little lighting.

So the same person looks different in each camera (cast, gain, a bag that
changes side, a face that turns into hair, blur, background) while the
identity cues survive: separable, but not trivially.

Tree under `root`: ``bounding_box_train/``, ``bounding_box_test/`` (with
distractors ``0000_*`` — people of no test identity, badly framed — and junk
``-1_*`` — near-empty detections), ``query/`` (one image per test identity per
camera it appears in) and ``gt_bbox/`` (per query identity and camera, the
query's own file and 1–3 more frames); names ``PPPP_cCsS_FFFFFF_BB.jpg``, 6
cameras, 128×64 images like Market's. ``synthetic.json`` in the root records
the generator's parameters, and so does the tree's common.atomic marker: a
tree generated with the same parameters is reused as is, one with other
parameters replaced; a folder the package did not make (or one of its trees
that a user added files to) is refused, never emptied.
"""
import json
import os
import shutil

import numpy as np
from PIL import Image
from scipy import ndimage
from tqdm import tqdm

from common.progress import mininterval
from common.atomic import atomic_path, reuse

NUM_IDS = 200              # identities, half for training, half for test (a CPU demo; Market has 1,501)
CAMERAS = 6                # as Market-1501 (its file names' c1–c6)
HEIGHT, WIDTH = 128, 64    # Market-1501's image size
MIN_CAMS = 2               # every identity is seen by at least two cameras (Market's rule)
TRAIN_PER_CAM = (1, 4)     # images per identity and camera, inclusive range
GALLERY_PER_CAM = (1, 3)
GT_EXTRA = (1, 3)          # gt_bbox frames besides the query's own, per identity and camera
DISTRACTOR_FRACTION = 0.10  # of the gallery's person images
JUNK_FRACTION = 0.05
JPEG_QUALITY = 90
PARAMS_FILE = "synthetic.json"
VERSION = 1
KIND = "synthetic-market1501"   # the common.atomic marker's kind
FOLDERS = ("bounding_box_train", "bounding_box_test", "query", "gt_bbox")
CHUNK = 128                # images drawn at once

KIND_PERSON, KIND_DISTRACTOR, KIND_JUNK = 0, 1, 2
# body parts, painted back to front; index = part number in render()
PARTS = ("background", "lower", "skin", "shoes", "upper", "second", "hair", "bag_rgb")
LOWER, SKIN, SHOES, UPPER, SECOND, HAIR, BAG = range(1, 8)


def _hsv_to_rgb(h, s, v):
    """Vectorised HSV (each in [0, 1]) → RGB in [0, 1], shape (..., 3)."""
    i = np.floor(h * 6).astype(int) % 6
    f = h * 6 - np.floor(h * 6)
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    table = np.stack([np.stack(c, -1) for c in
                      [(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)]])
    return table[i, np.arange(len(h))]


def _colours(rng, n, grey_fraction=0.3):
    """n clothing colours: saturated hues, with greys, blacks and whites."""
    rgb = _hsv_to_rgb(rng.rand(n), rng.uniform(0.35, 0.95, n), rng.uniform(0.25, 0.95, n))
    grey = rng.rand(n) < grey_fraction
    rgb[grey] = rng.uniform(0.08, 0.92, (grey.sum(), 1))
    return rgb


def identities(rng, n):
    """Appearance of n people (arrays of length n)."""
    skin = np.array([[0.96, 0.80, 0.69], [0.87, 0.67, 0.52], [0.65, 0.46, 0.33], [0.42, 0.29, 0.20]])
    hair = np.array([[0.08, 0.06, 0.05], [0.30, 0.20, 0.10], [0.55, 0.40, 0.20], [0.75, 0.70, 0.60]])
    return {
        "upper": _colours(rng, n), "lower": _colours(rng, n), "second": _colours(rng, n),
        "shoes": _colours(rng, n, grey_fraction=0.7) * 0.6, "bag_rgb": _colours(rng, n),
        "skin": skin[rng.randint(len(skin), size=n)], "hair": hair[rng.randint(len(hair), size=n)],
        "pattern": rng.randint(3, size=n),           # 0 plain, 1 stripes, 2 checks
        "period": rng.uniform(0.025, 0.06, n),       # pattern period, in person heights
        "short_sleeves": rng.rand(n) < 0.35, "shorts": rng.rand(n) < 0.2,
        "bag": rng.rand(n) < 0.4, "bag_side": rng.choice([-1.0, 1.0], n),
        "height": rng.uniform(0.86, 1.0, n), "width": rng.uniform(0.8, 1.25, n),
        "legs": rng.uniform(0.42, 0.52, n), "head": rng.uniform(0.055, 0.07, n),
    }


def cameras(rng, n=CAMERAS):
    """Per-camera imaging conditions."""
    return {
        "gain": rng.uniform(0.65, 1.25, n),
        "cast": rng.uniform(0.82, 1.18, (n, 3)),
        "offset": rng.uniform(-0.05, 0.05, (n, 3)),
        "flip": rng.rand(n) < 0.5, "back": rng.rand(n) < 0.35,
        "shear": rng.uniform(-0.12, 0.12, n),
        "scale": rng.uniform(0.78, 0.95, n),
        "blur": rng.uniform(0.0, 1.3, n),
        "noise": rng.uniform(0.01, 0.035, n),
        "bg_top": _colours(rng, n, grey_fraction=0.6) * 0.8 + 0.1,
        "bg_floor": _colours(rng, n, grey_fraction=0.6) * 0.7 + 0.1,
        "horizon": rng.uniform(0.55, 0.8, n),
    }


def _take(table, idx):
    return {k: v[idx] for k, v in table.items()}


def _lerp(size, points):
    """size × points matrix of linear interpolation weights (upsampling)."""
    pos = np.linspace(0, points - 1, size)
    lo = np.minimum(np.floor(pos).astype(int), points - 2)
    w = (pos - lo).astype(np.float32)
    out = np.zeros((size, points), np.float32)
    out[np.arange(size), lo] = 1 - w
    out[np.arange(size), lo + 1] = w
    return out


def render(people, cams, jitter, rng, height=HEIGHT, width=WIDTH):
    """Draw N images (uint8 N×H×W×3 RGB). `people` and `cams` are identity
    and camera tables already indexed per image, `jitter` per-image draws,
    `rng` a numpy Generator for the textures and the noise."""
    n = len(jitter["dx"])

    def col(a):  # per-image scalar → broadcastable over (N, H, W)
        return np.asarray(a, np.float32).reshape(n, 1, 1)

    def rgb(a):  # per-image colour → (N, 1, 1, 3)
        return np.asarray(a, np.float32).reshape(n, 1, 1, 3)

    yy = np.arange(height, dtype=np.float32).reshape(1, height, 1)
    xx = np.arange(width, dtype=np.float32).reshape(1, 1, width)

    # background: camera colours, a horizon to the floor, a low-frequency texture
    horizon = col(cams["horizon"]) * height
    floor = 1.0 / (1.0 + np.exp(-(yy - horizon) / 3.0))
    img = rgb(cams["bg_top"]) * (1 - floor[..., None]) + rgb(cams["bg_floor"]) * floor[..., None]
    coarse = rng.uniform(-0.08, 0.08, (n, height // 16 + 1, width // 16 + 1)).astype(np.float32)
    texture = np.einsum("yh,nhw,xw->nyx", _lerp(height, coarse.shape[1]), coarse,
                        _lerp(width, coarse.shape[2]), optimize=True)
    img = img * (1 + texture[..., None])

    # person coordinates: v from head top (0) to feet (1), u across, in person heights
    ph = col(cams["scale"] * people["height"] * jitter["scale"]) * height
    top = (height - ph) / 2 + col(jitter["dy"])
    v = (yy - top) / ph
    centre_x = width / 2.0 + col(jitter["dx"])
    u = (xx - centre_x - col(cams["shear"]) * (yy - height / 2.0)) / ph
    u = np.where(col(cams["flip"]) > 0, -u, u)
    wf, hs, leg = col(people["width"]), col(people["head"]), col(people["legs"])
    hip = 1 - leg
    neck = 2 * hs
    tw = 0.12 * wf * (1 - 0.15 * np.clip((v - neck) / (hip - neck), 0, 1))  # torso half-width, tapering

    # each pixel gets a part number, then its colour from the image's palette
    part = np.zeros((n, height, width), np.uint8)
    stride = col(jitter["stride"])
    leg_c = 0.045 * wf + stride * np.clip(v - hip, 0, None) * 0.35
    leg_mask = (v >= hip) & (v <= 1) & ((np.abs(u - leg_c) < 0.045 * wf) | (np.abs(u + leg_c) < 0.045 * wf))
    knee = hip + leg / 2
    part[leg_mask] = LOWER
    part[leg_mask & (col(people["shorts"]) > 0) & (v > knee)] = SKIN
    part[leg_mask & (v > 0.965)] = SHOES

    arm = (np.abs(u) >= tw) & (np.abs(u) < tw + 0.045 * wf) & (v > neck + 0.01) & (v < hip + 0.07)
    torso = (np.abs(u) < tw) & (v >= neck) & (v < hip + 0.02)
    t = np.floor((v - neck) / col(people["period"]))
    pattern = col(people["pattern"])
    stripes = (t % 2 == 1) & (pattern == 1)
    checks = ((t + np.floor(u / col(people["period"]))) % 2 == 1) & (pattern == 2)
    part[torso | arm] = UPPER
    part[(torso | arm) & (stripes | checks)] = SECOND
    sleeve_end = neck + 0.12
    part[arm & (((col(people["short_sleeves"]) > 0) & (v > sleeve_end)) | (v > hip + 0.04))] = SKIN  # + hands

    # head: face towards the camera, or hair only when the camera sees the back
    head = ((u / (0.8 * hs)) ** 2 + ((v - hs) / hs) ** 2) <= 1
    back = col(cams["back"]) > 0
    part[head] = SKIN
    part[head & ((v < hs * 0.8) | back)] = HAIR

    # shoulder bag: strap across the torso and the bag at the hip, on the person's side
    side = col(people["bag_side"])
    strap_u = side * tw * (1 - 2 * (v - neck) / (hip - neck))  # shoulder to opposite hip
    strap = torso & (np.abs(u - strap_u) < 0.012) & ~back
    bag = (side * u > tw - 0.01) & (side * u < tw + 0.1) & (v > hip - 0.1) & (v < hip + 0.06)
    part[(col(people["bag"]) > 0) & (strap | bag)] = BAG

    palette = np.zeros((n, len(PARTS), 3), np.float32)
    for k, name in enumerate(PARTS[1:], 1):
        palette[:, k] = people[name]
    person = palette[np.arange(n).reshape(n, 1, 1), part]
    shade = 1 - 0.3 * np.clip(np.abs(u) / (tw + 0.05), 0, 1) ** 2   # round body: clothes darken at the sides
    cloth = (part == LOWER) | (part == UPPER) | (part == SECOND)
    person *= np.where(cloth, shade, np.float32(1))[..., None]
    img = np.where((part > 0)[..., None], person, img)

    # camera: illumination, colour cast, offset, blur, noise
    img *= rgb(cams["gain"][:, None] * cams["cast"] * jitter["light"][:, None]).astype(np.float32)
    img += rgb(cams["offset"]).astype(np.float32)
    for sigma in np.unique(cams["blur"]):
        sel = cams["blur"] == sigma
        if sigma > 0:
            img[sel] = ndimage.gaussian_filter(img[sel], (0, sigma, sigma, 0))
    noise = rng.random(img.shape, dtype=np.float32) - np.float32(0.5)
    noise *= (cams["noise"] * np.sqrt(12)).reshape(n, 1, 1, 1).astype(np.float32)  # uniform, that std
    img += noise
    img *= 255
    return np.clip(img + 0.5, 0, 255).astype(np.uint8)


def plan(num_ids, rng):
    """Every image of the tree as a record: folder, person id (-1 junk, 0
    distractor), camera, identity row, kind. Identity rows ≥ num_ids are
    distractor-only people."""
    pids = rng.permutation(np.arange(1, num_ids + 1))
    num_train = num_ids // 2
    train_rows, test_rows = np.arange(num_train), np.arange(num_train, num_ids)
    cams_of = [np.sort(rng.choice(CAMERAS, rng.randint(MIN_CAMS, CAMERAS + 1), replace=False)) + 1
               for _ in range(num_ids)]
    records = []

    def add(folder, row, cam, kind=KIND_PERSON, pid=None, same_as=None):
        records.append({"folder": folder, "row": int(row), "cam": int(cam), "kind": kind,
                        "pid": int(pids[row]) if pid is None else pid, "same_as": same_as})

    for row in train_rows:
        for cam in cams_of[row]:
            for _ in range(rng.randint(TRAIN_PER_CAM[0], TRAIN_PER_CAM[1] + 1)):
                add("bounding_box_train", row, cam)
    for row in test_rows:
        for cam in cams_of[row]:
            for _ in range(rng.randint(GALLERY_PER_CAM[0], GALLERY_PER_CAM[1] + 1)):
                add("bounding_box_test", row, cam)
            add("query", row, cam)
            add("gt_bbox", row, cam, same_as=len(records) - 1)  # the query's own box
            for _ in range(rng.randint(GT_EXTRA[0], GT_EXTRA[1] + 1)):
                add("gt_bbox", row, cam)
    persons = sum(r["folder"] == "bounding_box_test" for r in records)
    num_distractors = max(1, int(round(DISTRACTOR_FRACTION * persons)))
    num_junk = max(1, int(round(JUNK_FRACTION * persons)))
    for k in range(num_distractors):
        add("bounding_box_test", num_ids + k, rng.randint(CAMERAS) + 1, KIND_DISTRACTOR, pid=0)
    for _ in range(num_junk):
        add("bounding_box_test", rng.randint(num_ids), rng.randint(CAMERAS) + 1, KIND_JUNK, pid=-1)
    return records, num_distractors


def _jitter(rng, kinds):
    n = len(kinds)
    j = {"dx": rng.uniform(-3, 3, n), "dy": rng.uniform(-3, 3, n), "scale": rng.uniform(0.96, 1.04, n),
         "stride": rng.uniform(0, 1, n), "light": rng.uniform(0.92, 1.08, n)}
    # distractors: badly framed people (cut off at a side); junk: a fragment seen far too close
    d = kinds == KIND_DISTRACTOR
    j["dx"][d] = rng.choice([-1, 1], d.sum()) * rng.uniform(14, 24, d.sum())
    k = kinds == KIND_JUNK
    j["scale"][k] = rng.uniform(2.5, 4.0, k.sum())
    j["dy"][k] = rng.uniform(-120, 60, k.sum())
    j["dx"][k] = rng.uniform(-25, 25, k.sum())
    return j


def _names(records, rng):
    """Market-style names, unique: one frame counter per camera."""
    frame = np.zeros(CAMERAS + 1, int)
    names = []
    for r in records:
        if r["same_as"] is not None:
            names.append(names[r["same_as"]])
            continue
        frame[r["cam"]] += rng.randint(1, 60)
        pid = "-1" if r["pid"] < 0 else "%04d" % r["pid"]
        names.append("%s_c%ds%d_%06d_%02d.jpg" % (pid, r["cam"], rng.randint(1, 7), frame[r["cam"]],
                                                 rng.randint(1, 4)))
    return names


def _params(num_ids, seed):
    return {"generator": "data_prep.synthetic", "version": VERSION, "num_ids": num_ids, "seed": seed,
            "cameras": CAMERAS, "height": HEIGHT, "width": WIDTH, "layout": "Market-1501"}


def generate(root, num_ids=NUM_IDS, seed=0, quiet=False):
    """Write the tree under `root` (created; an earlier synthetic tree there
    is replaced, one with the same parameters reused; any other folder is
    refused, common.atomic.NotOurs) and return its absolute path.
    Deterministic from `seed`."""
    if not 4 <= num_ids <= 9998:
        raise ValueError("synthetic: num_ids must be in [4, 9998] (4-digit Market ids), got %d" % num_ids)
    root = os.path.abspath(root)
    params = _params(num_ids, seed)
    if reuse(root, params, recompute=True, kind=KIND):  # other parameters: made again
        return root
    rng = np.random.RandomState(seed)
    records, num_distractors = plan(num_ids, rng)
    people = identities(rng, num_ids + num_distractors)
    cams = cameras(rng)
    kinds = np.array([r["kind"] for r in records])
    jitter = _jitter(rng, kinds)
    names = _names(records, rng)
    rows = np.array([r["row"] for r in records])
    cam_idx = np.array([r["cam"] - 1 for r in records])
    with atomic_path(root, is_dir=True, kind=KIND, record=params) as tmp:
        for folder in FOLDERS:
            os.makedirs(os.path.join(tmp, folder))
        bar = tqdm(total=len(records), desc="synthetic: drawing", unit="img", disable=quiet,
                   mininterval=mininterval())
        for start in range(0, len(records), CHUNK):
            sel = np.arange(start, min(start + CHUNK, len(records)))
            images = render(_take(people, rows[sel]), _take(cams, cam_idx[sel]), _take(jitter, sel),
                            np.random.default_rng([seed, start]))
            for k, i in enumerate(sel):
                path = os.path.join(tmp, records[i]["folder"], names[i])
                if records[i]["same_as"] is not None:
                    src = records[records[i]["same_as"]]
                    shutil.copyfile(os.path.join(tmp, src["folder"], names[i]), path)
                else:
                    Image.fromarray(images[k]).save(path, quality=JPEG_QUALITY)
            bar.update(len(sel))
        bar.close()
        counts = {f: sum(r["folder"] == f for r in records) for f in FOLDERS}
        with open(os.path.join(tmp, PARAMS_FILE), "w") as f:
            json.dump({"params": params, "counts": counts, "train_ids": num_ids // 2,
                       "test_ids": num_ids - num_ids // 2, "distractors": num_distractors,
                       "junk": int((kinds == KIND_JUNK).sum())}, f, indent=1, sort_keys=True)
    return root
