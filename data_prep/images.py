"""Reading and shaping images, once for every stage (parsers, LMDB builder,
feature extraction): Caffe's convention is uint8 BGR, H×W×3 on disk and in
memory, float32 C×H×W minus the mean at the net's input."""
import numpy as np
from PIL import Image, UnidentifiedImageError

from common.config import MEAN_BGR


class ImageError(ValueError):
    """An image that cannot be read; the message names the file."""


def load_bgr(path):
    """The image at `path` as uint8 H×W×3 BGR. Raises ImageError for a
    missing, unreadable or truncated file."""
    try:
        with Image.open(path) as im:
            im.load()  # decode now, so a truncated file fails here
            rgb = np.asarray(im.convert("RGB"))
    except FileNotFoundError:
        raise ImageError("image not found: %s" % path) from None
    except (UnidentifiedImageError, OSError, SyntaxError) as err:
        raise ImageError("unreadable image %s (%s)" % (path, err)) from None
    return np.ascontiguousarray(rgb[:, :, ::-1])


def resize_bgr(img, height, width):
    """Bilinear resize of a uint8 H×W×3 image to height × width."""
    if img.shape[:2] == (height, width):
        return img
    out = Image.fromarray(img[:, :, ::-1]).resize((width, height), Image.BILINEAR)
    return np.ascontiguousarray(np.asarray(out)[:, :, ::-1])


def to_net_input(img, mean=MEAN_BGR):
    """uint8 H×W×3 BGR → float32 3×H×W minus the per-channel mean."""
    chw = img.transpose(2, 0, 1).astype(np.float32)
    if mean is not None:
        chw -= np.asarray(mean, np.float32).reshape(3, 1, 1)
    return chw
