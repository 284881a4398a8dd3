"""The experiments as one Snakemake workflow: experiments/Snakefile has one
rule per kind of stage (experiments/kinds/); this module is what the
Snakefile calls (the graph of its config, each rule's inputs and
resources, the job itself) and what runs it, through Snakemake's Python
API, locally on N cores or on a Slurm cluster.

What runs is decided before Snakemake starts, by experiments/causes.py
(what decides each stage's result: its configuration and data by its
folder's name, its code, the Caffe build, the arithmetic); Snakemake makes
the missing folders and those forced, and none of its own triggers adds to
that. Each job writes its stage's record when it completes, so a job that
never finished is made again. The store (experiments/store.py) is held by
one command at a time; training stages keep their snapshots in
<store>/work/<kind>/<id>, outside the outputs, so a rerun resumes them.
"""
import contextlib
import functools
import hashlib
import io
import json
import os
import shlex
import shutil
import sys
import tempfile
from pathlib import Path

from common import cli, provenance
from common.atomic import write_text
from experiments import causes, kinds, store as stores
from experiments.arithmetic import arithmetic
from experiments.monitor import Monitor
from experiments.plan import Graph, Stage, training_cost

SNAKEFILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "Snakefile")
EXECUTORS = ("local", "slurm")
KINDS = kinds.NAMES

# Seconds per training iteration by base and device, to ask a scheduler for
# a time limit: estimates (no GPU figure is measured yet), doubled below as
# a margin. At least MIN_RUNTIME minutes per job.
SECONDS_PER_ITER = {("googlenet", "gpu"): 0.5, ("googlenet", "cpu"): 12.0,
                    ("dgdnet", "gpu"): 0.1, ("dgdnet", "cpu"): 1.0,
                    ("mtdnet", "gpu"): 0.6, ("mtdnet", "cpu"): 25.0}
MIN_RUNTIME = 10
CONFIG_ENV = "REID_WORKFLOW_CONFIG"   # the workflow's config file, for each job's command


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


def job_command(run):
    """The shell command of a job, the stage's kind and id left as the
    rule's {params.kind} and {wildcards.id}: tools.stage in the
    environment of `arithmetic`. Its output goes to the terminal only where
    its bars are wanted (one job at a time, on a terminal); otherwise to
    its log (store.job_log), which a failure's line names, so that jobs
    side by side do not draw over each other and a log holds no redraws."""
    env = " ".join("%s=%s" % (k, shlex.quote(v)) for k, v in sorted(arithmetic(run).items()))
    command = "env %s %s -m tools.stage {params.kind} {wildcards.id}" % (
        env, shlex.quote(sys.executable))
    if run.get("progress", True):
        return command
    log = stores.job_log("{params.kind}", "{wildcards.id}")
    return "mkdir -p %s && %s >> %s 2>&1" % (os.path.dirname(log), command, log)


def threads_of(graph, kind):
    """The CPU threads a job of `kind` asks for: its BLAS threads where it
    runs Caffe (the data layers' prefetch processes mostly wait), one for
    the rest."""
    return int(arithmetic(graph.run)["OPENBLAS_NUM_THREADS"]) if kinds.get(kind).USES_CAFFE else 1


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
        gpu = graph.run.get("gpu") is not None and kinds.get(kind).USES_CAFFE
        if name == "gpu":
            return 1 if gpu else 0
        if name == "runtime":
            return runtime_minutes(stage, "gpu" if gpu else "cpu")
        return kinds.get(kind).MEM_MB
    return resource


def stage_inputs(stage):
    """{name: path} of a stage's inputs: stage folders relative to the
    store, existing files as given."""
    return {name: (i.path if isinstance(i, Stage) else os.path.abspath(i.path))
            for name, i in stage.inputs.items()}


def run_job(kind, stage_id, configfile=None):
    """One job (what tools.stage runs for each rule, in the store): the
    stage `stage_id` of the workflow of `configfile` (default: $%s). Its
    inputs are checked first; its record is written when it completes. A
    failure raises, its one line kept for the command that ran the workflow
    to name the stage.""" % CONFIG_ENV
    configfile = configfile or os.environ.get(CONFIG_ENV)
    if not configfile:
        raise cli.InputError("no workflow config: give --config or set %s" % CONFIG_ENV)
    with open(configfile) as f:
        config = json.load(f)
    graph = graph_of(config)
    stage = graph.get(kind, stage_id)
    module = kinds.get(kind)
    store = os.path.abspath(".")
    write_text(stores.running_file(stage), "%d\n" % os.getpid())
    try:
        stores.forget(store, stage)
        made = causes.causes(stage, arithmetic(graph.run))
        files = {name: (kinds.main_file(i.kind, i.path) if isinstance(i, Stage)
                        else os.path.abspath(i.path)) for name, i in stage.inputs.items()}
        if hasattr(module, "check"):
            module.check(stage, files)
        if os.path.isdir(stage.path):   # a stale or unfinished output of ours
            shutil.rmtree(stage.path)
        trained, splits = lineage(stage)
        record = dict(config.get("invocation") or provenance.step("experiments.workflow", []),
                      run_dir=store, stages=trained, splits=splits, gpu=graph.run.get("gpu"),
                      data=data_of(stage))
        with provenance.resumed(record):
            module.run(stage, files, stage.path, stores.work_dir(stage), graph.run)
        stores.write_record(store, stage, made)
    except Exception as e:
        write_text(stores.failure_file(stage), "%d\t%s: %s\n" % (
            cli.exit_status(e), stage.path, cli.message(e)))
        raise
    finally:
        os.remove(stores.running_file(stage))


def lineage(stage):
    """(training work folders, split files) of everything a stage was made
    from: what its report draws and records."""
    stages = stage.stages()
    trained = [stores.work_dir(s) for s in stages if s.kind in kinds.TRAINING]
    splits = [os.path.abspath(kinds.main_file(s.kind, s.path)) for s in stages
              if s.kind in ("split", "merge", "single_shot")]
    return trained, splits


def data_of(stage):
    """{path: fingerprint} of the datasets and weights files a stage was
    made from, whatever path they were read at."""
    return {i.path: i.data for s in stage.stages() for i in s.external().values()}


# ---- running it -------------------------------------------------------------

def write_config(store, config):
    """The run's config as a file in the store (the jobs a cluster runs read
    it too), named by its SHA-1."""
    text = json.dumps(config, sort_keys=True, indent=1, default=str)
    path = os.path.join(store, stores.CONFIG_DIR, "config-%s.json"
                        % hashlib.sha1(text.encode()).hexdigest()[:12])
    if not os.path.isfile(path):
        write_text(path, text + "\n")
    return path


def _executor_settings(executor, options):
    if executor == "slurm":
        from snakemake_executor_plugin_slurm import ExecutorSettings
        return ExecutorSettings(**options)
    return None


PROFILE_KEYS = ("executor", "jobs", "latency-wait", "default-resources", "shared-fs-usage", "slurm-*")


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
        elif key == "shared-fs-usage":
            out["shared_fs_usage"] = _shared_fs_usage(file, value)
        elif key.startswith("slurm-"):
            out["executor_options"][key[len("slurm-"):].replace("-", "_")] = value
        else:
            raise cli.InputError("%s: %s is not a setting tools.reproduce reads (%s)"
                                 % (file, key, ", ".join(PROFILE_KEYS)))
    return out


def _shared_fs_usage(file, value):
    """Snakemake's shared-fs-usage (what the cluster's nodes share with the
    submitting machine) from a profile's list of its names, as Snakemake's
    set (empty for `none`). Without
    `software-deployment`, a cluster job starts Snakemake with the `python`
    its node finds on PATH, not the submitting process's interpreter: a
    wrapper there can start it inside an Apptainer image (docs/containers.md)."""
    from snakemake_interface_executor_plugins.settings import SharedFSUsage
    names = value.split() if isinstance(value, str) else list(value or [])
    unknown = [n for n in names if n not in SharedFSUsage.choices()]
    if unknown:
        raise cli.InputError("%s: shared-fs-usage: unknown %s (expected some of %s)" % (
            file, ", ".join(map(str, unknown)), ", ".join(SharedFSUsage.choices())))
    return frozenset(SharedFSUsage.parse_choices_set(names))


def execute(store, graph, targets=None, invocation=None, cores=1, jobs_at_once=None,
            executor="local", executor_options=None, default_resources=None, latency_wait=3,
            shared_fs_usage=None, forceall=False, verbose=False, out=None):
    """Make `targets` (stage paths; default: every experiment's reports) of
    `graph` in `store`, holding the store; `invocation`: the command's
    provenance record, what the reports record as having made them. What
    runs and why (experiments/causes.py) is printed first, on `out`
    (default stdout), then a line as each stage starts and ends
    (experiments/monitor.py); Snakemake's own output goes to its log file
    unless `verbose`. A training's progress bar is drawn only where one
    job runs at a time on a terminal: bars of jobs side by side would
    overwrite each other. Returns the decisions; raises cli.Failure naming
    the stage that failed and why."""
    import importlib
    from snakemake_interface_common.exceptions import WorkflowError
    # Snakemake's shell jobs write to the sys.stdout of the moment
    # snakemake.shell was first imported; a stream replaced since then (a
    # notebook's, pytest's capture) may be closed: jobs inherit descriptor 1.
    importlib.import_module("snakemake.shell").STDOUT = None
    if executor not in EXECUTORS:
        raise cli.InputError("--executor %s: one of %s" % (executor, ", ".join(EXECUTORS)))
    out = out or sys.stdout
    stores.claim(store)
    with stores.held(store):
        targets = graph.targets() if targets is None else targets
        decisions = causes.decide(store, graph, targets)
        if forceall:
            for d in decisions:
                d.reasons = d.reasons or [("asked", "--recompute")]
        for line in causes.summary(decisions):
            print(line, file=out)
        out.flush()
        run = [d.stage for d in decisions if d.runs]
        if not run:
            return decisions
        alone = cores == 1 and executor == "local" and sys.stderr.isatty()
        graph.run = dict(graph.run, progress=graph.run.get("progress", True) and alone)
        configfile = write_config(store, {"graph": graph.to_json(), "invocation": invocation})
        failed = os.path.join(store, stores.FAILED)
        if os.path.isdir(failed):  # an earlier run's
            shutil.rmtree(failed)
        forced = [s.path for s in run if os.path.isdir(os.path.join(store, s.path))]
        running = os.path.join(store, stores.RUNNING)
        if os.path.isdir(running):  # marks of jobs killed with an earlier run
            shutil.rmtree(running)
        try:
            with _dag(store, configfile, targets, cores, jobs_at_once, executor,
                      default_resources, not verbose, shared_fs_usage, forcerun=forced) as dag, \
                    Monitor(store, run, out):
                dag.execute_workflow(
                    executor=executor,
                    executor_settings=_executor_settings(executor, executor_options or {}),
                    execution_settings=_execution_settings(latency_wait))
        except WorkflowError as e:
            raise cli.Failure(_failure_text(store, run, e)) from e
        unfinished = [s for s in run if stores.read_record(store, s) is None]
        if unfinished:
            raise cli.Failure(_failure_text(store, unfinished, None))
    return decisions


def _execution_settings(latency_wait):
    from snakemake.settings import types as st
    # whether a job finished is the stage's record's to say, not Snakemake's
    # marker (a command killed mid-job leaves one behind)
    return st.ExecutionSettings(latency_wait=latency_wait, ignore_incomplete=True)


@contextlib.contextmanager
def _dag(store, configfile, targets, cores=1, jobs_at_once=None, executor="local",
         default_resources=None, quiet=False, shared_fs_usage=None, **dag_settings):
    """Snakemake's DAG of the Snakefile on `configfile` in `store`: the jobs
    whose folders are missing and those `forcerun` names; none of
    Snakemake's rerun triggers (file times, params, code) adds any."""
    from snakemake.api import SnakemakeApi
    from snakemake.settings import types as st
    quietness = {st.Quietness.ALL} if quiet else None
    output = st.OutputSettings(quiet=quietness, printshellcmds=False)
    with SnakemakeApi(output) as api:
        wf = api.workflow(
            resource_settings=st.ResourceSettings(
                cores=cores, nodes=jobs_at_once if executor != "local" else None,
                default_resources=default_resources),
            config_settings=st.ConfigSettings(configfiles=[Path(configfile)]),
            storage_settings=st.StorageSettings() if shared_fs_usage is None else st.StorageSettings(
                shared_fs_usage=shared_fs_usage),
            snakefile=Path(SNAKEFILE), workdir=Path(store))
        yield wf.dag(st.DAGSettings(targets=list(targets), rerun_triggers=frozenset(),
                                    **dag_settings))


def rulegraph(graph):
    """Snakemake's --rulegraph (DOT) of the workflow of `graph`: its rules
    and how they feed each other (docs/images/rulegraph.png)."""
    from snakemake.settings.enums import PrintDag
    with tempfile.TemporaryDirectory() as store:
        doc = graph.to_json()
        for item in doc["stages"]:  # the datasets and weights need not be here: stand-ins
            for name, value in item["inputs"].items():
                if "stage" not in value:
                    value["path"] = os.path.join(store, "inputs", item["id"], name)
                    os.makedirs(value["path"])
        configfile = write_config(store, {"graph": doc})
        text = io.StringIO()
        # Snakemake 9.27 compares the setting with the enum's str, not the enum
        with _dag(store, configfile, graph.targets(), quiet=True,
                  print_dag_as=str(PrintDag.DOT)) as dag, contextlib.redirect_stdout(text):
            dag.printrulegraph()
    return text.getvalue()


def _failure_text(store, stages, error):
    """Why the workflow stopped, in one line: the failed stages' own
    messages; else the stages that did not complete (a job killed or
    interrupted: rerunning goes on, a training from its snapshot); else
    Snakemake's own message."""
    folder = os.path.join(store, stores.FAILED)
    lines = []
    log = _snakemake_log(store)
    if os.path.isdir(folder):
        for name in sorted(os.listdir(folder)):
            with open(os.path.join(folder, name)) as f:
                line = f.read().strip().split("\t", 1)[-1]
            lines.append("%s (log: %s)" % (line, _job_log(store, line.split(":", 1)[0]) or log))
    if lines:
        return "the workflow stopped: %s" % "; ".join(lines)
    unfinished = [s.path for s in stages if stores.read_record(store, s) is None]
    # the first of them whose job started: what it wrote before it was stopped
    log = next(filter(None, (_job_log(store, p) for p in unfinished)), log)
    if unfinished and (error is None or "killed" in str(error).lower()
                       or "signal" in str(error).lower() or "error in rule" in str(error).lower()):
        return ("the workflow stopped: %s did not complete (its job was killed or interrupted; "
                "log: %s): rerun the same command to go on%s"
                % (unfinished[0] + (" and %d other stage(s)" % (len(unfinished) - 1)
                                    if len(unfinished) > 1 else ""), log,
                   ", a training from its last snapshot" if any(
                       p.split("/")[0] in kinds.TRAINING for p in unfinished) else ""))
    first = str(error).strip().splitlines()[0] if error is not None and str(error).strip() else \
        type(error).__name__
    return "the workflow stopped: Snakemake: %s (log: %s)" % (first, log)


def _job_log(store, path):
    """The log of the job of the stage at `path` (<kind>/<id>), if it has one."""
    log = os.path.join(store, stores.job_log(*path.split("/", 1)))
    return log if os.path.isfile(log) else None


def _snakemake_log(store):
    """The newest of Snakemake's logs in the store."""
    folder = os.path.join(store, ".snakemake", "log")
    logs = sorted(os.listdir(folder)) if os.path.isdir(folder) else []
    return os.path.join(folder, logs[-1]) if logs else folder
