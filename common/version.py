"""The package's version, in one place.

A paper that cites a result of this package names a release; the release
is this number. Everything that shows it reads it from here: every
command's `--version` (common/cli.py), the provenance of every report
(common/provenance.py: results.json, the results.md footer, the page's
Provenance block). CITATION.cff and CHANGELOG.md, text files that cannot
import it, repeat it, and tests/test_release.py compares both with it.

The version names a release; it computes nothing. A bump alone must not
make the workflow remake a stage, so the module says it decides no result
(common/code_fingerprint.py leaves its digest out of every stage's code
fingerprint); the git commit, recorded beside it, still tells one build of
the code from another.
"""

DECIDES_RESULTS = False   # names the release, computes nothing (common/code_fingerprint.py)

NAME = "reid-caffe"       # what the project calls itself: its images, its Caffe cache folder
VERSION = "1.0.0"
