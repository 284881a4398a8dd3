"""What decides a result, as fingerprints (common/code_fingerprint.py,
common/data_fingerprint.py): code by its syntax without comments,
docstrings or formatting, found by following imports and the Python layers
a net names; data by content, wherever it lies."""
import os
import shutil
import textwrap

from common import code_fingerprint as cf
from common import data_fingerprint as df


def package(root, files):
    """A small project under root: {relative path: source}."""
    for rel, text in files.items():
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(textwrap.dedent(text))
    return str(root)


PROJECT = {
    "lib/__init__.py": "from lib.heavy import everything\n",
    "lib/heavy.py": "everything = 1\n",
    "lib/maths.py": '"""Maths."""\nimport numpy as np\n\n\ndef double(x):\n    return 2 * x\n',
    "lib/bars.py": "DECIDES_RESULTS = False\nimport lib.drawing\n\n\ndef bar():\n    return '#'\n",
    "lib/drawing.py": "def draw():\n    return 0\n",
    "app/__init__.py": "",
    "app/main.py": "from lib import maths\n\n\ndef run():\n    from lib import bars\n    return maths.double(1)\n",
}


def test_comments_docstrings_and_formatting_do_not_count(tmp_path):
    root = package(tmp_path, PROJECT)
    path = os.path.join(root, "lib", "maths.py")
    before = cf.module_digest(path)
    package(tmp_path, {"lib/maths.py": '"""Other words."""\nimport numpy as np  # why\n\n\n'
                                       'def double(x):\n    """Twice x."""\n\n    return 2*x\n'})
    assert cf.module_digest(path) == before
    package(tmp_path, {"lib/maths.py": '"""Maths."""\nimport numpy as np\n\n\n'
                                       'def double(x):\n    return 3 * x\n'})
    assert cf.module_digest(path) != before


def test_the_closure_follows_imports_but_not_a_parents_imports(tmp_path):
    root = package(tmp_path, PROJECT)
    found = cf.closure(["app.main"], root)
    # app.main imports lib.maths and (inside a function) lib.bars; lib's
    # __init__ runs, but what it imports (lib.heavy) is not app.main's, and
    # what lib.bars, which decides no result, imports (lib.drawing) neither
    assert sorted(found) == ["app", "app.main", "lib", "lib.bars", "lib.maths"]
    prints = cf.fingerprint(["app.main"], root)
    # lib/bars.py says it decides no result: its digest is left out
    assert sorted(prints) == ["app/__init__.py", "app/main.py", "lib/__init__.py", "lib/maths.py"]
    package(tmp_path, {"lib/bars.py": "DECIDES_RESULTS = False\n\n\ndef bar():\n    return '='\n"})
    assert cf.fingerprint(["app.main"], root) == prints
    package(tmp_path, {"lib/drawing.py": "def draw():\n    return 1\n"})
    assert cf.fingerprint(["app.main"], root) == prints
    package(tmp_path, {"lib/heavy.py": "everything = 2\n"})
    assert cf.fingerprint(["app.main"], root) == prints
    package(tmp_path, {"lib/maths.py": "def double(x):\n    return x + x\n"})
    assert cf.changed(prints, cf.fingerprint(["app.main"], root)) == ["lib/maths.py"]


def test_the_python_layers_a_net_names():
    text = ('layer { name: "d" type: "Python" python_param {\n  module: "layers.pair_dropout"\n'
            '  layer: "PairDropout" } }\nlayer { type: "Python"\n python_param {\n'
            '    module: "layers.identity_sampled_data" } }\n')
    assert cf.python_layer_modules(text) == ["layers.identity_sampled_data", "layers.pair_dropout"]


def _tree(root):
    return package(root, {"a/1.jpg": "one", "a/2.jpg": "two", "b/3.jpg": "three",
                          ".hidden": "not data"})


def test_data_by_content_wherever_it_lies(tmp_path):
    first = df.fingerprint(_tree(tmp_path / "here"))
    assert first["files"] == 3 and first["bytes"] == len("onetwothree")
    shutil.copytree(tmp_path / "here", tmp_path / "there")          # other path, other times
    assert df.fingerprint(str(tmp_path / "there")) == first
    os.rename(tmp_path / "there", tmp_path / "moved")
    assert df.fingerprint(str(tmp_path / "moved")) == first
    (tmp_path / "moved" / "a" / "1.jpg").write_text("uno")            # rewritten, same size
    assert df.fingerprint(str(tmp_path / "moved"))["content"] != first["content"]
    (tmp_path / "here" / "a" / "4.jpg").write_text("four")            # added
    assert df.fingerprint(str(tmp_path / "here"))["content"] != first["content"]
    os.remove(tmp_path / "here" / "a" / "4.jpg")
    os.remove(tmp_path / "here" / "b" / "3.jpg")                      # removed
    assert df.fingerprint(str(tmp_path / "here"))["content"] != first["content"]


def test_the_cache_trusts_a_listing_and_verify_does_not(tmp_path):
    root = _tree(tmp_path / "data")
    cache = df.Cache(str(tmp_path / "cache.json"))
    first = df.fingerprint(root, cache)
    # rewritten with its size and modification time kept: the listing is the same
    path = os.path.join(root, "a", "1.jpg")
    st = os.stat(path)
    with open(path, "w") as f:
        f.write("uno")
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert df.fingerprint(root, df.Cache(str(tmp_path / "cache.json"))) == first
    verified = df.fingerprint(root, df.Cache(str(tmp_path / "cache.json")), verify=True)
    assert verified["content"] != first["content"]
    # and the cache now holds what was verified
    assert df.fingerprint(root, df.Cache(str(tmp_path / "cache.json"))) == verified
