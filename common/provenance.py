"""Where every number comes from: the facts a report records
so that a reader can tell what made it and run the same command again.

- the command: its argv, working directory and a cwd-independent line to
  rerun it (`cd DIR && PYTHON -m MODULE ARGS`), every option (seeds are
  options) and, for a step run inside another command (tools.evaluate inside
  tools.reproduce), the step's own command and options too;
- the code: the package's version (common/version.py), the checkout's git
  commit and whether its tree was dirty; the Caffe build (install prefix,
  build key, source hash, patch set with the SHA-1 of each patch);
- the software and machine: Python, NumPy, protobuf; each OpenBLAS loaded
  (NumPy's own and the one libcaffe links) with the core it detected; the
  CPU model; the GPU when one is used;
- the data and training: the SHA-1 of each split file used, the iterations
  each training stage under the run directory actually trained (its
  state.json "iter"), and the wall time.

An entry point wraps its work in `invocation(...)`; whatever writes a report
during it calls `gather(...)`, which reads the invocation. Without one (a
library call), the process's own command line stands for it.
"""
import contextlib
import ctypes
import datetime
import glob
import json
import os
import platform
import shlex
import subprocess
import sys
import time

from common.config import ROOT
from common.layout import SPLIT, STATE
from common import records
from common.records import sha1
from common.version import NAME, VERSION

DECIDES_RESULTS = False   # records where a result came from (common/code_fingerprint.py)

PATCH_DIR = os.path.join(ROOT, "caffe_build", "caffe_patches")
# The venv records the prefix that caffe_build/setup.sh wired in (used when pycaffe
# is not imported in this process).
PREFIX_FILE = os.path.join(ROOT, ".venv", "caffe-prefix")
_INVOCATIONS = []           # the entry points running in this process, outermost first


def _jsonable(value):
    return json.loads(json.dumps(value, default=str))


def step(module, argv, options=None):
    """What one command is: its module, argv, options, cwd and start time."""
    return {"module": module, "argv": [str(a) for a in (sys.argv[1:] if argv is None else argv)],
            "options": _jsonable(options or {}), "cwd": os.getcwd(), "started": time.time()}


def invocation(module, argv, options=None, run_dir=None, gpu=None):
    """The entry point `module` running with `argv` (its parsed `options`,
    the run directory it writes, the GPU it uses): reports written inside
    record it as their command."""
    record = step(module, argv, options)
    record.update(run_dir=os.path.abspath(run_dir) if run_dir else None, gpu=gpu)
    return resumed(record)


@contextlib.contextmanager
def resumed(record):
    """An invocation's record (invocation's, or one a workflow job was
    handed: step()'s fields with run_dir, gpu, and optionally "stages",
    "splits" and "data", the training folders under run_dir, the split
    files and the fingerprints of the datasets its reports were made from)
    as the command of the reports written inside."""
    _INVOCATIONS.append(record)
    try:
        yield record
    finally:
        _INVOCATIONS.remove(record)


def command(record):
    """{"argv", "cwd", "rerun"} of a step; "rerun" works from any directory."""
    python = sys.executable or "python3"
    if record.get("module"):
        line = [python, "-m", record["module"]] + record["argv"]
    else:
        line = [python] + record["argv"]
    return {"module": record.get("module"), "argv": record["argv"], "cwd": record["cwd"],
            "rerun": "cd %s && %s" % (shlex.quote(record["cwd"]), shlex.join(line))}


def _process():
    """The process's own command line, for a report written by a library call."""
    record = step(None, sys.argv, {})
    argv = list(sys.argv)
    if argv and os.path.isfile(argv[0]):
        argv[0] = os.path.abspath(argv[0])  # cwd-independent
    record["argv"] = argv
    return record


def package():
    """{"name", "version"} of this package (common/version.py): the
    release a result can be cited by, beside the commit that made it."""
    return {"name": NAME, "version": VERSION}


def git_state(root=ROOT):
    """{"commit", "dirty", "changed"} of the checkout at `root` ("changed":
    how many paths `git status` lists, untracked ones included, since they
    may be imported). Outside a git checkout, the record a container image
    was built with (SOURCE_STATE under `root`, the same fields and
    "recorded": its path); {"commit": None, "error"} without either."""
    def git(*args):
        return subprocess.run(["git", "-C", root] + list(args), check=True, capture_output=True,
                              text=True, timeout=30).stdout
    try:
        commit = git("rev-parse", "HEAD").strip()
        changed = [line for line in git("status", "--porcelain").splitlines() if line.strip()]
    except (OSError, subprocess.SubprocessError) as err:
        return recorded_state(root) or {"commit": None, "error": " ".join(str(err).split())}
    return {"commit": commit, "dirty": bool(changed), "changed": len(changed)}


# The checkout's state as the Dockerfile writes it into an image, which holds
# no .git: {"commit": SOURCE_COMMIT, "dirty": SOURCE_CHANGED > 0, "changed":
# SOURCE_CHANGED}, the build arguments containers/build_image.sh reads off git.
SOURCE_STATE = ".source-state.json"


def recorded_state(root=ROOT):
    """git_state's fields from `root`'s SOURCE_STATE with "recorded": its
    path; None when there is none (a checkout, or a tree without a record)."""
    path = os.path.join(root, SOURCE_STATE)
    try:
        with open(path) as f:
            doc = json.load(f)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as err:
        return {"commit": None, "error": "%s: %s" % (path, err), "recorded": path}
    return {"commit": doc.get("commit"), "dirty": doc.get("dirty"), "changed": doc.get("changed"),
            "recorded": path}


def caffe_prefix():
    """Install prefix of the pycaffe imported here, else the one the venv
    names; None when neither is known."""
    caffe = sys.modules.get("caffe")
    if caffe is not None and getattr(caffe, "__file__", None):
        return os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(caffe.__file__))))
    try:
        with open(PREFIX_FILE) as f:
            return f.read().strip() or None
    except OSError:
        return None


def patch_set(patch_dir=PATCH_DIR):
    """[{"name", "sha1"}] of the checkout's Caffe patches, in series order."""
    try:
        with open(os.path.join(patch_dir, "series")) as f:
            names = [line.strip() for line in f if line.strip()]
    except OSError:
        return []
    out = []
    for name in names:
        path = os.path.join(patch_dir, name)
        out.append({"name": name, "sha1": sha1(path) if os.path.isfile(path) else None})
    return out


def caffe_build(prefix=None):
    """{"prefix", "variant", "key", "source", "built", "patches"} of a Caffe
    build installed by caffe_build/build_caffe.sh into <cache>/<variant>-<key>; its
    .complete stamp holds "source <hash>; built in …; <date>". The patches
    are the checkout's series (they are part of the key)."""
    prefix = prefix or caffe_prefix()
    out = {"prefix": prefix, "variant": None, "key": None, "source": None, "built": None,
           "patches": patch_set()}
    if not prefix:
        return out
    variant, _, key = os.path.basename(os.path.normpath(prefix)).partition("-")
    out.update(variant=variant or None, key=key or None)
    try:
        with open(os.path.join(prefix, ".complete")) as f:
            stamp = f.read().strip()
    except OSError:
        return out
    parts = [p.strip() for p in stamp.split(";")]
    if parts and parts[0].startswith("source "):
        out["source"] = parts[0][len("source "):]
    out["built"] = parts[-1] if len(parts) > 1 else None
    return out


def versions():
    """Python, NumPy, protobuf (and pycaffe where imported) versions."""
    import numpy
    out = {"python": platform.python_version(), "numpy": numpy.__version__}
    try:
        from google import protobuf
        out["protobuf"] = protobuf.__version__
    except ImportError:
        out["protobuf"] = None
    caffe = sys.modules.get("caffe")
    if caffe is not None:
        out["caffe"] = getattr(caffe, "__version__", None)
    return out


def _mapped(word):
    """Real paths of the shared libraries mapped in this process whose file
    name contains `word`."""
    found = []
    try:
        with open("/proc/self/maps") as maps:
            for line in maps:
                path = line.split(None, 5)[-1].strip()
                if path.startswith("/") and word in os.path.basename(path).lower():
                    path = os.path.realpath(path)
                    if path not in found:
                        found.append(path)
    except OSError:
        pass
    return found


def _linked(library):
    """Real paths of the libraries `ldd` resolves for `library`."""
    try:
        out = subprocess.run(["ldd", library], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    paths = []
    for line in out.splitlines():
        if "=>" in line:
            target = line.split("=>", 1)[1].split("(")[0].strip()
            if target.startswith("/"):
                paths.append(os.path.realpath(target))
    return paths


def _openblas_call(lib, names):
    for name in names:
        try:
            fn = getattr(lib, name)
        except AttributeError:
            continue
        fn.restype = ctypes.c_char_p
        value = fn()
        return value.decode(errors="replace").strip() if value else None
    return None


def openblas_info(path):
    """{"library", "corename", "config"} of one loaded OpenBLAS: the core it
    detected (a DYNAMIC_ARCH build picks its kernels at load time), through
    openblas_get_corename / _config under the names each build exports."""
    info = {"library": path, "corename": None, "config": None}
    try:
        lib = ctypes.CDLL(path)
    except OSError as err:
        info["error"] = str(err)
        return info
    for suffix in ("", "64_"):
        for prefix in ("openblas", "scipy_openblas"):
            if info["corename"] is None:
                info["corename"] = _openblas_call(lib, ["%s_get_corename%s" % (prefix, suffix)])
            if info["config"] is None:
                info["config"] = _openblas_call(lib, ["%s_get_config%s" % (prefix, suffix)])
    return info


def blas():
    """The BLAS of NumPy and of Caffe: threadpoolctl's view where it is
    installed, and for each OpenBLAS loaded here its library and detected
    core, labelled by who uses it (NumPy's wheel bundles its own; libcaffe
    links the system's)."""
    import numpy
    out = {}
    try:
        from threadpoolctl import threadpool_info
        out["threadpoolctl"] = _jsonable(threadpool_info())
    except ImportError:
        pass
    numpy_dirs = [os.path.realpath(os.path.dirname(numpy.__file__))]
    numpy_dirs.append(numpy_dirs[0] + ".libs")
    caffe_libs = [p for lib in _mapped("libcaffe") for p in _linked(lib)]
    for path in _mapped("openblas"):
        if any(path.startswith(d + os.sep) for d in numpy_dirs):
            who = "numpy"
        elif path in caffe_libs:
            who = "caffe"
        else:
            who = os.path.basename(os.path.dirname(path)).replace(".libs", "")  # e.g. scipy's wheel
        out.setdefault(who, openblas_info(path))
    if "caffe" not in out and _mapped("libcaffe"):
        linked = [p for p in caffe_libs if "blas" in os.path.basename(p).lower()]
        out["caffe"] = {"library": linked[0] if linked else None, "corename": None, "config": None}
    return out


# The environment that fixes a job's CPU arithmetic (experiments/workflow.py
# CPU_KERNELS, BLAS_THREADS): what a report records of it.
ARITHMETIC_VARS = ("OPENBLAS_NUM_THREADS", "OPENBLAS_CORETYPE", "NPY_DISABLE_CPU_FEATURES")


def arithmetic():
    """{variable: value} of ARITHMETIC_VARS set in this process."""
    return {v: os.environ[v] for v in ARITHMETIC_VARS if v in os.environ}


def cpu():
    """{"model", "cores", "machine"} of this machine's CPU."""
    model = None
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {"model": model or platform.processor() or None, "cores": os.cpu_count(),
            "machine": platform.machine()}


def gpu_info(device):
    """The GPU of device number `device` (None: the run used the CPU)."""
    if device is None:
        return None
    out = {"device": device, "name": None}
    try:
        res = subprocess.run(["nvidia-smi", "-i", str(device), "--format=csv,noheader",
                              "--query-gpu=name,driver_version,memory.total"],
                             capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return out
    if res.returncode == 0 and res.stdout.strip():
        parts = [p.strip() for p in res.stdout.strip().splitlines()[0].split(",")]
        out.update(zip(("name", "driver", "memory"), parts))
    return out


def split_checksums(paths):
    """{absolute path: SHA-1} of the split files (missing ones: None)."""
    out = {}
    for path in paths:
        path = os.path.abspath(path)
        out[path] = sha1(path) if os.path.isfile(path) else None
    return out


def run_splits(run_dir):
    """The split files an experiment made under its run directory
    (steps/stages.split writes <run_dir>/data/<name>.json; the
    records beside some of them are not splits)."""
    if not run_dir:
        return []
    return sorted(p for p in glob.glob(os.path.join(run_dir, "data", "*.json"))
                  if not p.endswith(records.SIDECAR))


def stage_iterations(run_dir, stages=None):
    """{stage folder relative to run_dir: iterations trained} from every
    state.json under run_dir, or under its folders `stages` only
    (temporaries of unfinished writes skipped)."""
    out = {}
    if not run_dir or not os.path.isdir(run_dir):
        return out
    tops = [run_dir] if stages is None else [os.path.join(run_dir, s) for s in stages]
    for folder, dirs, files in (w for top in tops for w in os.walk(top)):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        if STATE in files:
            try:
                with open(os.path.join(folder, STATE)) as f:
                    out[os.path.relpath(folder, run_dir)] = json.load(f).get("iter")
            except (OSError, ValueError, AttributeError):
                out[os.path.relpath(folder, run_dir)] = None
    return out


def gather(own=None, splits=(), run_dir=None, gpu=None):
    """The provenance record of a report written now. `own`: step(...) of the
    command writing it (tools.evaluate's), recorded as "step" when it runs
    inside another entry point's invocation; `splits`: split files it used
    (the run directory's are added); `run_dir`, `gpu`: default to the
    invocation's."""
    top = _INVOCATIONS[0] if _INVOCATIONS else (own or _process())
    run_dir = run_dir or top.get("run_dir")
    gpu = top.get("gpu") if gpu is None else gpu
    doc = {"command": command(top), "options": top["options"]}
    if own is not None and own is not top:
        doc["step"] = {"command": command(own), "options": own["options"]}
    now = time.time()
    doc.update({
        "package": package(),
        "git": git_state(),
        "caffe": caffe_build(),
        "versions": versions(),
        "blas": blas(),
        "arithmetic": arithmetic(),
        "cpu": cpu(),
        "gpu": gpu_info(gpu),
        "splits": split_checksums(list(dict.fromkeys(list(splits) + (
            top["splits"] if "splits" in top else run_splits(run_dir))))),
        "run_dir": os.path.abspath(run_dir) if run_dir else None,
        # the datasets and weights files by content, and where they were read
        "data": top.get("data", {}),
        "stage_iterations": stage_iterations(run_dir, top.get("stages")),
        "wall_time_s": round(now - top["started"], 3),
        "finished": datetime.datetime.fromtimestamp(now, datetime.timezone.utc)
        .isoformat(timespec="seconds"),
    })
    return doc


def _split_name(path):
    """A split file's name, or its stage's for the workflow's split.json."""
    name = os.path.basename(path)
    return os.path.basename(os.path.dirname(path)) if name == SPLIT else name


def _short(value, n=12):
    return value[:n] if isinstance(value, str) else "unknown"


def blas_summary(doc):
    """Each OpenBLAS of a record with the core it ran, and the environment
    that fixed its arithmetic, in one line."""
    text = ", ".join("%s %s (%s)" % (who, os.path.basename(info.get("library") or "?"),
                                     info.get("corename") or "core unknown")
                     for who, info in sorted((doc.get("blas") or {}).items())
                     if who != "threadpoolctl")
    if doc.get("arithmetic"):
        text += "; " + ", ".join("%s=%s" % kv for kv in sorted(doc["arithmetic"].items()))
    return text


def footer(doc):
    """The short Markdown footer of a provenance record (results.md)."""
    git, build, ver = doc["git"], doc["caffe"], doc["versions"]
    code = "git %s%s" % (_short(git.get("commit")), " (uncommitted changes)" if git.get("dirty") else "")
    if doc.get("package"):   # records made before the version was recorded have none
        code = "%s %s, %s" % (doc["package"].get("name"), doc["package"].get("version"), code)
    caffe = "Caffe build %s, source %s, %d patch(es)" % (
        os.path.basename(build["prefix"]) if build.get("prefix") else "unknown",
        _short(build.get("source"), 24), len(build.get("patches") or []))
    blas_text = blas_summary(doc)
    machine = doc["cpu"].get("model") or "unknown CPU"
    gpu = doc.get("gpu")
    lines = ["Made by: `%s`" % doc["command"]["rerun"]]
    if doc.get("step"):
        lines.append("Step: `%s`" % doc["step"]["command"]["rerun"])
    options = dict(doc.get("options") or {})
    lines += ["Options: %s" % (", ".join("%s=%s" % (k, json.dumps(v)) for k, v in sorted(options.items()))
                               or "none"),
              "Code: %s; %s" % (code, caffe),
              "Software: Python %s, NumPy %s, protobuf %s; BLAS: %s" % (
                  ver.get("python"), ver.get("numpy"), ver.get("protobuf"), blas_text or "unknown"),
              "Machine: %s, %s cores; GPU: %s" % (machine, doc["cpu"].get("cores"),
                                                  (gpu.get("name") or "device %s" % gpu["device"])
                                                  if gpu else "none")]
    if doc.get("splits"):
        lines.append("Splits (SHA-1): " + ", ".join(
            "%s %s" % (_split_name(p), _short(s)) for p, s in doc["splits"].items()))
    if doc.get("data"):
        lines.append("Data (content fingerprint): " + ", ".join(
            "%s %s (%d files)" % (p, _short(d["content"], 16), d["files"])
            for p, d in sorted(doc["data"].items()) if d))
    if doc.get("stage_iterations"):
        lines.append("Trained (iterations): " + ", ".join(
            "%s %s" % (k, v) for k, v in sorted(doc["stage_iterations"].items())))
    lines.append("Wall time: %.1f s (finished %s)" % (doc["wall_time_s"], doc["finished"]))
    return "\n---\n\nProvenance (all of it in results.json):\n\n" + "".join(
        "- %s\n" % line for line in lines)
