"""The experiments as one Snakemake workflow (issue 13): experiments/Snakefile
has one rule per kind of stage (experiments/plan.py); this module is what
the Snakefile calls (the graph of its config, each rule's inputs, params
and resources, the job itself) and what runs it, through Snakemake's
Python API, locally on N cores or on a Slurm cluster.

Snakemake's own rerun triggers decide what runs: a missing output, changed
params (a stage's configuration, the code it runs, the Caffe build), newer
inputs. The store — every stage's folder, named after its configuration —
is `--run-dir` (default runs/); training stages keep their snapshots in
<store>/work/<kind>/<id>, outside the outputs Snakemake removes when a job
fails, so a rerun resumes them.
"""
import contextlib
import functools
import hashlib
import inspect
import io
import json
import os
import shlex
import shutil
import sys
import tempfile
from pathlib import Path

from common import cli
from common.atomic import write_text
from common.config import ROOT
from experiments import jobs
from experiments.plan import KINDS, Graph, Stage, training_cost

SNAKEFILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "Snakefile")
MARK = ".reid-workflow"          # a store this package made (never another folder)
CONFIG_DIR = ".workflow"         # the config of each run, by its SHA-1
WORK = "work"                    # training snapshots, outside Snakemake's outputs
EXECUTORS = ("local", "slurm")

# Memory a job asks a scheduler for (MB): GoogLeNet at Geng16's batch of 64
# images, the MTDnet nets at 3 x 128 images, with room for the data layers.
MEM_MB = {"geng16": 12000, "mtdnet": 12000, "unsupervised": 12000, "features": 6000,
          "scores": 6000, "lmdb": 4000}
DEFAULT_MEM_MB = 2000
# Seconds per training iteration by base and device, to ask a scheduler for
# a time limit: estimates (GPU figures are not measured here: issue 16),
# doubled below as a margin. At least MIN_RUNTIME minutes per job.
SECONDS_PER_ITER = {("googlenet", "gpu"): 0.5, ("googlenet", "cpu"): 12.0,
                    ("dgdnet", "gpu"): 0.1, ("dgdnet", "cpu"): 1.0,
                    ("mtdnet", "gpu"): 0.6, ("mtdnet", "cpu"): 25.0}
MIN_RUNTIME = 10
# A job's CPU arithmetic (issue 14 §1). OpenBLAS splits its work by its
# thread count and picks its kernels by the core it detects, and both change
# the floating-point results (measured: a seeded training's weights differ
# between 1 and 2 threads, and between the SkylakeX and Haswell kernels).
# So every job runs BLAS_THREADS threads whatever --cores is (Snakemake would
# give it the rule's threads, scaled to --cores), and "haswell" runs the
# same kernels on every CPU: Haswell's in Caffe's and NumPy's OpenBLAS, and
# NumPy's own loops kept to the same level (AVX2, FMA; x86-64-v3).
BLAS_THREADS = 1
CPU_KERNELS = {"detected": {},
               "haswell": {"OPENBLAS_CORETYPE": "Haswell",
                           "NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL AVX512_SPR"}}
# The code each kind of stage runs: a change to it reruns the stage.
CODE = {"data": ("common", "data_prep", "experiments/stages.py"),
        "weights": ("common", "training/fetch_weights.py"),
        "training": ("common", "data_prep", "layers", "networks", "training",
                     "experiments/stages.py"),
        "unsupervised": ("common", "data_prep", "layers", "networks", "training", "evaluation",
                         "unsupervised", "experiments/stages.py"),
        "evaluation": ("common", "networks", "training", "evaluation", "experiments/stages.py",
                       "experiments/demo.py")}
CODE_OF = {"split": "data", "merge": "data", "single_shot": "data", "lmdb": "data",
           "weights": "weights", "geng16": "training", "mtdnet": "training",
           "unsupervised": "unsupervised", "features": "evaluation", "scores": "evaluation",
           "report": "evaluation"}
USES_CAFFE = ("geng16", "mtdnet", "unsupervised", "features", "scores")


# ---- what the Snakefile asks ------------------------------------------------

@functools.lru_cache(maxsize=4)
def _graph(graph_text):
    return Graph.from_json(json.loads(graph_text))


def graph_of(config):
    """The Graph a workflow config carries (config["graph"], Graph.to_json)."""
    if "graph" not in config:
        raise cli.InputError("the workflow config has no graph: write it with "
                             "experiments/workflow.py (tools.reproduce, tools.demo)")
    return _graph(json.dumps(config["graph"], sort_keys=True))


def inputs_of(graph, kind):
    """Snakemake's input function of `kind`'s rule (stage_inputs)."""
    def inputs(wildcards):
        return stage_inputs(graph.get(kind, wildcards.id))
    return inputs


def params_of(graph, kind):
    def params(wildcards):
        return json.dumps(graph.get(kind, wildcards.id).config, sort_keys=True)
    return params


@functools.lru_cache(maxsize=None)
def _code_hash(kind):
    digest = hashlib.sha1(inspect.getsource(jobs.RUNNERS[kind]).encode())
    files = []
    for part in CODE[CODE_OF[kind]]:
        path = os.path.join(ROOT, part)
        if os.path.isfile(path):
            files.append(path)
        for folder, dirs, names in os.walk(path):
            dirs[:] = sorted(d for d in dirs if d != "__pycache__")
            files += [os.path.join(folder, n) for n in sorted(names) if n.endswith(".py")]
    for path in files:
        digest.update(os.path.relpath(path, ROOT).encode())
        with open(path, "rb") as f:
            digest.update(f.read())
    if kind in USES_CAFFE:
        from common import provenance
        digest.update(json.dumps(provenance.caffe_build(), sort_keys=True).encode())
    return digest.hexdigest()


def arithmetic(run):
    """{variable: value} of the environment every job of a workflow runs
    in, from its run settings ("blas_threads", "cpu_kernels")."""
    kernels = run.get("cpu_kernels", "detected")
    if kernels not in CPU_KERNELS:
        raise cli.InputError("cpu kernels %r: one of %s" % (kernels, ", ".join(CPU_KERNELS)))
    threads = run.get("blas_threads", BLAS_THREADS)
    if not isinstance(threads, int) or isinstance(threads, bool) or threads < 1:
        raise cli.InputError("blas threads %r: a positive integer" % (threads,))
    return dict(CPU_KERNELS[kernels], OPENBLAS_NUM_THREADS=str(threads))


def add_arithmetic_options(parser):
    """--blas-threads and --cpu-kernels (the run settings of `arithmetic`),
    for the commands that run the workflow."""
    from common.cli import positive_int
    parser.add_argument("--blas-threads", type=positive_int, default=BLAS_THREADS,
                        help="OpenBLAS threads of every job, whatever --cores is (default %d): "
                             "the thread count changes a training's floating-point results"
                             % BLAS_THREADS)
    parser.add_argument("--cpu-kernels", choices=sorted(CPU_KERNELS), default="detected",
                        help="detected: the BLAS and NumPy kernels of this CPU (default); "
                             "haswell: the same kernels on every x86-64 CPU with AVX2 and FMA, "
                             "so that a seeded CPU run gives the same numbers on each")


def job_command(run):
    """The shell command of a job, the stage's kind and id left as the
    rule's {params.kind} and {wildcards.id}: tools.stage in the
    environment of `arithmetic`."""
    env = " ".join("%s=%s" % (k, shlex.quote(v)) for k, v in sorted(arithmetic(run).items()))
    return "env %s %s -m tools.stage {params.kind} {wildcards.id}" % (
        env, shlex.quote(sys.executable))


def threads_of(graph, kind):
    """The CPU threads a job of `kind` asks for: its BLAS threads where it
    runs Caffe (the data layers' prefetch processes mostly wait), one for
    the rest."""
    return int(arithmetic(graph.run)["OPENBLAS_NUM_THREADS"]) if kind in USES_CAFFE else 1


def arithmetic_of(graph, kind):
    """The params entry of `kind`'s rule for the arithmetic its jobs run
    with: a change reruns the stages that compute with Caffe."""
    return json.dumps(arithmetic(graph.run), sort_keys=True) if kind in USES_CAFFE else ""


def code_version(kind):
    """SHA-1 of the sources `kind`'s stages run (its job function in
    experiments/jobs.py, the packages it calls, the Caffe build for those
    that run Caffe): Snakemake's params trigger reruns them on a change."""
    return _code_hash(kind)


def runtime_minutes(stage, device):
    iters, _ = training_cost(stage)
    if not iters:
        return MIN_RUNTIME
    if stage.kind == "mtdnet":
        base = "mtdnet"
    else:
        base = stage.config.get("net", {}).get("base", stage.config.get("base", "googlenet"))
    return max(MIN_RUNTIME, int(2 * iters * SECONDS_PER_ITER[(base, device)] / 60) + 1)


def resource_of(graph, kind, name):
    def resource(wildcards):
        stage = graph.get(kind, wildcards.id)
        gpu = graph.run.get("gpu") is not None and kind in USES_CAFFE
        if name == "gpu":
            return 1 if gpu else 0
        if name == "runtime":
            return runtime_minutes(stage, "gpu" if gpu else "cpu")
        return MEM_MB.get(kind, DEFAULT_MEM_MB)
    return resource


CONFIG_ENV = "REID_WORKFLOW_CONFIG"   # the workflow's config file, for each job's command


def stage_inputs(stage):
    """{name: path} of a stage's inputs: stage folders relative to the
    store, existing files as given."""
    return {name: (i.path if isinstance(i, Stage) else os.path.abspath(i))
            for name, i in stage.inputs.items()}


def run_job(kind, stage_id, configfile=None):
    """One job (what tools.stage runs for each rule, in the store): the
    stage `stage_id` of the workflow of `configfile` (default: $%s).
    A failure raises, its one line kept for the command that ran the
    workflow to name the stage.""" % CONFIG_ENV
    configfile = configfile or os.environ.get(CONFIG_ENV)
    if not configfile:
        raise cli.InputError("no workflow config: give --config or set %s" % CONFIG_ENV)
    with open(configfile) as f:
        config = json.load(f)
    graph = graph_of(config)
    stage = graph.get(kind, stage_id)
    try:
        jobs.run(stage, stage_inputs(stage), stage.path, work_dir(stage), graph.run,
                 config.get("invocation"))
    except Exception as e:
        write_text(failure_file(stage), "%d\t%s: %s\n" % (cli.exit_status(e), stage.path,
                                                          cli.message(e)))
        raise


def work_dir(stage):
    return os.path.join(WORK, stage.kind, stage.id)


def failure_file(stage):
    return os.path.join(CONFIG_DIR, "failed", stage.id + ".txt")


# ---- running it -------------------------------------------------------------

def claim_store(store):
    """The store is ours: new, empty, or marked by an earlier run. A folder
    holding anything else (another tool's, or a run directory of the layout
    before the workflow) is refused, never written into."""
    mark = os.path.join(store, MARK)
    if os.path.isdir(store) and os.listdir(store) and not os.path.isfile(mark):
        old = os.path.isfile(os.path.join(store, "experiment.txt"))
        raise cli.InputError("%s %s; give another --run-dir" % (
            store, "is a run directory of the layout before the workflow (one folder per "
                   "experiment)" if old else "holds files this package did not make"))
    os.makedirs(store, exist_ok=True)
    if not os.path.isfile(mark):
        write_text(mark, "made by experiments/workflow.py: the stages of tools.reproduce\n")


def write_config(store, config):
    """The run's config as a file in the store (the jobs a cluster runs read
    it too), named by its SHA-1."""
    text = json.dumps(config, sort_keys=True, indent=1, default=str)
    path = os.path.join(store, CONFIG_DIR, "config-%s.json"
                        % hashlib.sha1(text.encode()).hexdigest()[:12])
    if not os.path.isfile(path):
        write_text(path, text + "\n")
    return path


def _executor_settings(executor, options):
    if executor == "slurm":
        from snakemake_executor_plugin_slurm import ExecutorSettings
        return ExecutorSettings(**options)
    return None


PROFILE_KEYS = ("executor", "jobs", "latency-wait", "default-resources", "slurm-*")


def load_profile(path):
    """A Snakemake profile (its folder or its config.yaml, cluster/slurm/ for
    one) as execute()'s arguments: executor, jobs, latency-wait, the Slurm
    plugin's slurm-* settings, default-resources."""
    import yaml
    file = os.path.join(path, "config.yaml") if os.path.isdir(path) else path
    if not os.path.isfile(file):
        raise FileNotFoundError("--profile %s: no profile file (config.yaml) there" % path)
    with open(file) as f:
        doc = yaml.safe_load(f) or {}
    if not isinstance(doc, dict):
        raise cli.InputError("%s: a profile is a mapping of settings" % file)
    out = {"executor_options": {}}
    for key, value in doc.items():
        if key == "executor":
            out["executor"] = value
        elif key == "jobs":
            out["jobs_at_once"] = int(value)
        elif key == "latency-wait":
            out["latency_wait"] = int(value)
        elif key == "default-resources":
            out["default_resources"] = dict(value)
        elif key.startswith("slurm-"):
            out["executor_options"][key[len("slurm-"):].replace("-", "_")] = value
        else:
            raise cli.InputError("%s: %s is not a setting tools.reproduce reads (%s)"
                                 % (file, key, ", ".join(PROFILE_KEYS)))
    return out


def execute(store, graph, targets=None, invocation=None, cores=1, jobs_at_once=None,
            executor="local", executor_options=None, default_resources=None, latency_wait=3,
            forceall=False, dryrun=False, quiet=False):
    """Make `targets` (stage paths; default: every experiment's reports) of
    `graph` in `store`; `invocation`: the command's provenance record, what
    the reports record as having made them. Raises cli.Failure naming the
    stage that failed."""
    import importlib
    from snakemake.settings import types as st
    from snakemake_interface_common.exceptions import WorkflowError
    # Snakemake's shell jobs write to the sys.stdout of the moment
    # snakemake.shell was first imported; a stream replaced since then (a
    # notebook's, pytest's capture) may be closed: jobs inherit descriptor 1.
    importlib.import_module("snakemake.shell").STDOUT = None
    if executor not in EXECUTORS:
        raise cli.InputError("--executor %s: one of %s" % (executor, ", ".join(EXECUTORS)))
    claim_store(store)
    configfile = write_config(store, {"graph": graph.to_json(), "invocation": invocation})
    targets = graph.targets() if targets is None else targets
    failed = os.path.join(store, CONFIG_DIR, "failed")
    if os.path.isdir(failed):  # an earlier run's
        shutil.rmtree(failed)
    try:
        with _dag(store, configfile, targets, cores, jobs_at_once, executor, default_resources,
                  forceall, dryrun, quiet) as dag:
            dag.execute_workflow(
                executor="dryrun" if dryrun else executor,
                executor_settings=_executor_settings(executor, executor_options or {}),
                execution_settings=st.ExecutionSettings(latency_wait=latency_wait))
    except WorkflowError as e:
        raise cli.Failure(_failure_text(store, graph, e)) from e


@contextlib.contextmanager
def _dag(store, configfile, targets, cores=1, jobs_at_once=None, executor="local",
         default_resources=None, forceall=False, dryrun=False, quiet=False, **dag_settings):
    """Snakemake's DAG of the Snakefile on `configfile` in `store`."""
    from snakemake.api import SnakemakeApi
    from snakemake.settings import types as st
    quietness = {st.Quietness.PROGRESS, st.Quietness.RULES} if quiet else None
    output = st.OutputSettings(quiet=quietness, dryrun=dryrun, printshellcmds=False)
    with SnakemakeApi(output) as api:
        wf = api.workflow(
            resource_settings=st.ResourceSettings(
                cores=cores, nodes=jobs_at_once if executor != "local" else None,
                default_resources=default_resources),
            config_settings=st.ConfigSettings(configfiles=[Path(configfile)]),
            storage_settings=st.StorageSettings(),
            snakefile=Path(SNAKEFILE), workdir=Path(store))
        yield wf.dag(st.DAGSettings(targets=list(targets), forceall=forceall,
                                    force_incomplete=True, **dag_settings))


def rulegraph(graph):
    """Snakemake's --rulegraph (DOT) of the workflow of `graph`: its rules
    and how they feed each other (docs/images/rulegraph.png)."""
    from snakemake.settings.enums import PrintDag
    with tempfile.TemporaryDirectory() as store:
        doc = graph.to_json()
        for item in doc["stages"]:  # the datasets and weights need not be here: stand-ins
            for name, value in item["inputs"].items():
                if not isinstance(value, dict):
                    item["inputs"][name] = os.path.join(store, "inputs", item["id"], name)
                    os.makedirs(item["inputs"][name])
        configfile = write_config(store, {"graph": doc})
        text = io.StringIO()
        # Snakemake 9.27 compares the setting with the enum's str, not the enum
        with _dag(store, configfile, graph.targets(), quiet=True,
                  print_dag_as=str(PrintDag.DOT)) as dag, contextlib.redirect_stdout(text):
            dag.printrulegraph()
    return text.getvalue()


def _failure_text(store, graph, error):
    """The failed stages' own one-line messages, or Snakemake's."""
    folder = os.path.join(store, CONFIG_DIR, "failed")
    lines = []
    if os.path.isdir(folder):
        for name in sorted(os.listdir(folder)):
            with open(os.path.join(folder, name)) as f:
                lines.append(f.read().strip().split("\t", 1)[-1])
    text = "; ".join(lines) or ("a job did not complete (interrupted or killed; a training "
                                "keeps its snapshot): rerun the same command to go on")
    return "the workflow stopped: %s (log: %s)" % (text, os.path.join(store, ".snakemake", "log"))
