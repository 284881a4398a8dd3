"""The documentation is checked, not hoped: every relative link and image
in README.md and docs/*.md resolves to a file of the checkout (and an
anchor to a heading of its page), every command shown as `python -m X`
names a module that exists and, for the commands in tools/, answers
--help; every entry point's --help ends with an example; the README stays
a map (at most 200 lines); and nothing the repository tracks points to
notes outside it. Pure Python, no Caffe."""
import functools
import glob
import importlib.util
import json
import os
import re
import subprocess
import sys

import pytest

from common.config import ROOT
from tests.test_cli import entry_points

README_MAX_LINES = 200
PAGES = ["README.md"] + sorted(os.path.relpath(p, ROOT)
                               for p in glob.glob(os.path.join(ROOT, "docs", "*.md")))

FENCE = re.compile(r"^```.*?^```", re.M | re.S)
CODE_SPAN = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*\s*$", re.M)
COMMAND = re.compile(r"(?:\.venv/bin/)?python3?\s+-m\s+([A-Za-z_][\w.]*)")
# What must not be named: notes kept outside the repository, and the
# tracker's numbers, which mean nothing to a reader of the code.
OUTSIDE_NOTES = "REFERENCE" + ".md"
TRACKER_NUMBER = re.compile(r"\bissues?\s+\d+", re.I)


def text(page):
    with open(os.path.join(ROOT, page), encoding="utf-8") as f:
        return f.read()


def prose(markdown):
    """The text outside fenced code blocks and code spans, where links live."""
    return CODE_SPAN.sub("", FENCE.sub("", markdown))


def slug(heading):
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces
    as hyphens."""
    heading = re.sub(r"[`*_]|\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


@functools.lru_cache(maxsize=None)
def anchors(page):
    seen, out = {}, set()
    for heading in HEADING.findall(FENCE.sub("", text(page))):
        base = slug(heading)
        n = seen.get(base, 0)
        out.add(base if n == 0 else "%s-%d" % (base, n))
        seen[base] = n + 1
    return out


def links(page):
    return [t for t in LINK.findall(prose(text(page)))
            if not re.match(r"^[a-z][a-z0-9+.-]*:", t, re.I)]   # http:, https:, mailto:


def test_pages_are_found():
    assert "docs/reproducing.md" in PAGES and len(PAGES) > 5


@pytest.mark.parametrize("page", PAGES)
def test_every_relative_link_and_image_resolves(page):
    broken = []
    for target in links(page):
        path, _, anchor = target.partition("#")
        if path:
            resolved = os.path.normpath(os.path.join(ROOT, os.path.dirname(page), path))
            if not os.path.exists(resolved):
                broken.append("%s: no such file (%s)" % (target, os.path.relpath(resolved, ROOT)))
                continue
            linked = os.path.relpath(resolved, ROOT)
        else:
            linked = page
        if anchor and linked.endswith(".md") and anchor not in anchors(linked):
            broken.append("%s: no heading #%s in %s" % (target, anchor, linked))
    assert broken == [], "%s: broken links:\n  %s" % (page, "\n  ".join(broken))


def test_slug_follows_github():
    assert slug("Market-1501's official rule") == "market-1501s-official-rule"
    assert slug("MTDnet's tests: CIR and -trp") == "mtdnets-tests-cir-and--trp"
    assert slug("What a seed reproduces, measured") == "what-a-seed-reproduces-measured"


def commands():
    """{module: [pages showing it]} of every `python -m X` in the pages,
    code blocks included."""
    out = {}
    for page in PAGES:
        for module in COMMAND.findall(text(page)):
            out.setdefault(module.rstrip("."), []).append(page)
    return out


def test_pages_show_commands():
    assert "tools.reproduce" in commands()


@pytest.mark.parametrize("module", sorted(commands()))
def test_every_command_names_a_module(module):
    assert importlib.util.find_spec(module) is not None, \
        "python -m %s (in %s): no such module" % (module, ", ".join(sorted(set(commands()[module]))))


def venv_python():
    venv = os.path.join(ROOT, ".venv", "bin", "python")
    return venv if os.path.exists(venv) else sys.executable


@pytest.mark.parametrize("module", sorted(m for m in commands() if m.startswith("tools.")))
def test_every_tools_command_answers_help(module):
    run = subprocess.run([venv_python(), "-m", module, "--help"], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, "python -m %s --help: exit %d\n%s" % (
        module, run.returncode, run.stderr[-2000:])
    assert "usage" in run.stdout.lower()


# Runs each entry point's --help as `python -m` does, all in one interpreter
# (one cold start instead of one per command).
HELP_DRIVER = r"""
import contextlib, io, json, runpy, sys
out = {}
for module in json.loads(sys.argv[1]):
    sys.argv, text, code = [module, "--help"], io.StringIO(), None
    with contextlib.redirect_stdout(text):
        try:
            runpy.run_module(module, run_name="__main__", alter_sys=True)
        except SystemExit as stop:
            code = stop.code
    out[module] = [code, text.getvalue()]
print(json.dumps(out))
"""


def test_every_entry_point_help_ends_with_an_example():
    modules = sorted(entry_points())
    assert "data_prep" in modules and "bench" in modules and "tools.reproduce" in modules
    run = subprocess.run([venv_python(), "-c", HELP_DRIVER, json.dumps(modules)], cwd=ROOT,
                         capture_output=True, text=True, timeout=300,
                         env=dict(os.environ, GLOG_minloglevel="2", PYTHONPATH=ROOT))
    assert run.returncode == 0, run.stderr[-2000:]
    helps = json.loads(run.stdout.strip().splitlines()[-1])
    bad = ["python -m %s --help: %s" % (m, "exit %s" % code if code not in (0, None)
                                         else "its last paragraph is not an example")
           for m, (code, text) in sorted(helps.items())
           if code not in (0, None)
           or not text.strip().split("\n\n")[-1].lower().startswith("example")]
    assert bad == [], "\n".join(bad)


def test_readme_is_a_map():
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        lines = f.read().splitlines()
    assert len(lines) <= README_MAX_LINES, "README.md has %d lines (at most %d)" % (
        len(lines), README_MAX_LINES)


def naming_outside(name, content):
    """'path:line: text' of each line that names notes outside the repository
    or a tracker number."""
    return ["%s:%d: %s" % (name, i, line.strip()[:120])
            for i, line in enumerate(content.splitlines(), 1)
            if OUTSIDE_NOTES in line or TRACKER_NUMBER.search(line)]


def test_the_pages_point_nowhere_outside():
    found = [hit for page in PAGES for hit in naming_outside(page, text(page))]
    assert found == [], "\n".join(found)


def tracked_text_files():
    try:
        names = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True,
                               check=True).stdout.decode().split("\0")
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout: no list of tracked files")
    for name in filter(None, names):
        path = os.path.join(ROOT, name)
        if not os.path.isfile(path):
            continue
        with open(path, "rb") as f:
            data = f.read()
        if b"\0" in data:
            continue                     # binary: images, models, LMDBs
        try:
            yield name, data.decode("utf-8")
        except UnicodeDecodeError:
            continue


def test_no_tracked_file_points_outside():
    found = [hit for name, content in tracked_text_files() for hit in naming_outside(name, content)]
    assert found == [], "%d lines name notes outside the repository or tracker numbers:\n%s" % (
        len(found), "\n".join(found[:50]))
