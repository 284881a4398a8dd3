"""A release a paper can cite: one version (common/version.py) that every
report records (tests/test_provenance.py) and every command prints
(tests/test_cli.py), that CITATION.cff and CHANGELOG.md repeat, and that
decides no result; CITATION.cff valid against the Citation File Format
1.2.0 schema (vendored: tests/data/README.md). Pure Python, no Caffe."""
import json
import os
import re
import shutil

import jsonschema
import pytest
import yaml

from common import code_fingerprint as cf
from common import version
from common.config import ROOT

CITATION = os.path.join(ROOT, "CITATION.cff")
CHANGELOG = os.path.join(ROOT, "CHANGELOG.md")
SCHEMA = os.path.join(ROOT, "tests", "data", "cff-1.2.0.schema.json")
SEMVER = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z.-]+)?$")
RELEASE = re.compile(r"^## \[([^\]]+)\](?: - (\d{4}-\d{2}-\d{2}))?\s*$", re.M)


class _CffLoader(yaml.SafeLoader):
    """YAML as the CFF schema asks a validator to read it: dates stay
    strings (the schema's "date" is a string pattern)."""


_CffLoader.add_constructor("tag:yaml.org,2002:timestamp", yaml.SafeLoader.construct_yaml_str)


def cff_errors(text):
    """The schema's complaints about a CITATION.cff text, one line each."""
    with open(SCHEMA) as f:
        schema = json.load(f)
    validator = jsonschema.Draft7Validator(
        schema, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)
    doc = yaml.load(text, Loader=_CffLoader)
    return ["%s: %s" % ("/".join(str(p) for p in e.absolute_path) or "(top)", e.message)
            for e in sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path))]


def citation():
    with open(CITATION, encoding="utf-8") as f:
        return f.read()


def releases():
    """[(version, date)] of CHANGELOG.md's headings, newest first."""
    with open(CHANGELOG, encoding="utf-8") as f:
        return RELEASE.findall(f.read())


def test_the_version_is_one_semantic_version():
    assert SEMVER.match(version.VERSION), version.VERSION
    assert version.NAME == "reid-caffe"


def test_citation_cff_is_valid():
    assert cff_errors(citation()) == []


@pytest.mark.parametrize("break_it, complaint", [
    (lambda t: re.sub(r"(?m)^date-released: .*$", "date-released: 2026-13-06", t), "date-released"),
    (lambda t: re.sub(r"(?m)^cff-version: .*$", "cff-version: 1.2", t), "cff-version"),
    (lambda t: re.sub(r"(?m)^title: .*\n", "", t), "'title' is a required property"),
    (lambda t: t.replace("type: conference-paper", "type: paper"), "references/1/type"),
])
def test_the_validation_catches_a_broken_file(break_it, complaint):
    broken = break_it(citation())
    assert broken != citation()
    errors = cff_errors(broken)
    assert any(complaint in e for e in errors), errors


def test_citation_and_changelog_name_the_version():
    doc = yaml.load(citation(), Loader=_CffLoader)
    assert doc["version"] == version.VERSION
    released = [(v, d) for v, d in releases() if v != "Unreleased"]
    assert releases()[0] == ("Unreleased", "")       # the heading new work goes under
    assert released[0] == (version.VERSION, doc["date-released"])
    # the two papers the package reproduces are cited with it
    titles = [r["title"] for r in doc["references"]]
    assert titles == ["Deep Transfer Learning for Person Re-identification",
                      "A Multi-task Deep Network for Person Re-identification"]


def test_a_version_bump_alone_reruns_nothing(tmp_path):
    """common/version.py says it decides no result, so even a module that
    decides results and imports it keeps its stages' code fingerprint when
    only the version changes; without the marker, it would not."""
    assert cf.module_digest(version.__file__) is None
    for package in ("common", "layers", "networks", "evaluation"):
        shutil.copytree(os.path.join(ROOT, package), tmp_path / package,
                        ignore=shutil.ignore_patterns("__pycache__"))
    metrics = tmp_path / "evaluation" / "cmc_user.py"   # a results module that reads the version
    metrics.write_text("from common.version import VERSION\n\n\ndef cmc():\n    return 1\n")
    stages = ["evaluation.cmc_user", "evaluation.report", "common.provenance", "common.cli"]
    before = cf.fingerprint(stages, str(tmp_path))
    assert "common/version.py" not in before and "evaluation/cmc_user.py" in before
    path = tmp_path / "common" / "version.py"
    text = path.read_text()
    bumped = text.replace('VERSION = "%s"' % version.VERSION, 'VERSION = "99.0.0"')
    assert bumped != text
    path.write_text(bumped)
    assert cf.fingerprint(stages, str(tmp_path)) == before
    path.write_text(text.replace("DECIDES_RESULTS = False", "DECIDES_RESULTS = True"))
    assert cf.changed(before, cf.fingerprint(stages, str(tmp_path))) == ["common/version.py"]
