"""Offline data augmentation of Geng16 §5.2 ("for each training image, we
generate 5 augmented images around the image center by performing random 2D
transformation", following their reference [1], Ahmed et al. CVPR 2015).

Each copy is one random affine map about the image centre: rotation, an
isotropic scale, a shear and a translation, each drawn uniformly from a
small range. Geng16 gives no ranges; the translation range is Ahmed et al.'s
(±5 % of the width and height); the others are ours, kept small so that a
person stays whole and upright. Pixels that come from outside the image
repeat the border (no black wedges for the net to learn).
"""
import numpy as np
from scipy import ndimage

COPIES = 5                 # augmented images per training image (Geng16 §5.2)
TRANSLATION = 0.05         # ± fraction of width / height (Ahmed et al. 2015, Geng16's [1])
ROTATION_DEG = 5.0         # ± degrees (ours: Geng16 §5.2 gives no range)
SCALE = (0.95, 1.05)       # isotropic scale range (ours)
SHEAR = 0.05               # ± horizontal shear factor (ours)


def random_transforms(n, height, width, rng, rotation_deg=ROTATION_DEG, scale=SCALE,
                      shear=SHEAR, translation=TRANSLATION):
    """n forward affine maps (3×3, homogeneous (row, col) coordinates) about
    the centre of a height × width image, drawn from `rng`."""
    theta = np.deg2rad(rng.uniform(-rotation_deg, rotation_deg, n))
    s = rng.uniform(scale[0], scale[1], n)
    sh = rng.uniform(-shear, shear, n)
    ty = rng.uniform(-translation, translation, n) * height
    tx = rng.uniform(-translation, translation, n) * width
    centre = np.array([(height - 1) / 2.0, (width - 1) / 2.0])
    out = np.zeros((n, 3, 3))
    for k in range(n):
        c, si = np.cos(theta[k]), np.sin(theta[k])
        rot = np.array([[c, -si], [si, c]])
        shear_m = np.array([[1.0, 0.0], [sh[k], 1.0]])  # col += shear · row
        lin = rot @ shear_m * s[k]
        out[k, :2, :2] = lin
        out[k, :2, 2] = centre + np.array([ty[k], tx[k]]) - lin @ centre
        out[k, 2, 2] = 1.0
    return out


def apply_transform(img, forward):
    """uint8 H×W×3 image warped by the forward map `forward` (3×3, (row,
    col)), bilinear, border pixels repeated."""
    inv = np.linalg.inv(forward)
    matrix = np.eye(3)
    matrix[:2, :2] = inv[:2, :2]
    offset = np.array([inv[0, 2], inv[1, 2], 0.0])
    out = ndimage.affine_transform(img.astype(np.float32), matrix, offset=offset, order=1,
                                   mode="nearest")
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def augment_copies(img, n, rng, **ranges):
    """n randomly transformed copies of the uint8 H×W×3 image `img`."""
    if n <= 0:
        return []
    h, w = img.shape[:2]
    return [apply_transform(img, m) for m in random_transforms(n, h, w, rng, **ranges)]
