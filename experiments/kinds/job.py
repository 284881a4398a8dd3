"""What the training and evaluation kinds share: the library's stage
context rooted at a job's work folder, and publishing a trained model into
the stage's output."""
import json
import os
import shutil

from common.atomic import write_text
from common.layout import FINAL, STAGE
from steps.stages import Context


def context(stage, work, settings, inside=False):
    """steps/stages.py's Context rooted at the work folder's parent,
    the stage named by the work folder (`inside`: rooted at the work folder,
    for a stage that writes many folders of its own); records inside it
    that differ are remade (the workflow has decided that the stage runs)."""
    c = stage.config
    work = os.path.abspath(work)
    return Context(work if inside else os.path.dirname(work), scale=c.get("scale", 1.0),
                   gpu=settings.get("gpu"), seed=c.get("seed"),
                   progress=settings.get("progress", True),
                   snapshot_every=settings.get("snapshot_every", 1000), recompute=True)


def publish(model, work, out):
    """The final model of a work folder into the output folder (a hard link
    where the filesystem allows), with where it was trained."""
    os.makedirs(out, exist_ok=True)
    target = os.path.join(out, FINAL)
    try:
        os.link(model, target)
    except OSError:
        shutil.copyfile(model, target)
    write_text(os.path.join(out, STAGE), json.dumps(
        {"work": os.path.relpath(os.path.abspath(work))}, indent=1) + "\n")
