"""python -m tools.stage KIND ID [--config FILE]: make one stage of the
experiments' workflow, in the store (the current folder): what each rule of
experiments/Snakefile runs as its job (experiments/workflow.run_job)."""
import argparse
import sys

from common import cli
from experiments import workflow
from experiments.kinds import NAMES as KINDS
from training.multi_gpu import Stopped


def main(argv=None):
    ap = cli.ArgumentParser(
        prog="python -m tools.stage", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Make one stage of the experiments' workflow in the store (the current\n"
                    "folder): what each rule of experiments/Snakefile runs as its job. Reads\n"
                    "the workflow's config file and the stage's inputs in the store; writes the\n"
                    "stage's folder, named ID.",
        epilog="example, in the store (runs/):\n"
               "  python -m tools.stage split <label>-<hash> --config .workflow/config-<sha>.json")
    ap.add_argument("kind", choices=KINDS)
    ap.add_argument("id", help="the stage's folder name, <label>-<hash>")
    ap.add_argument("--config", help="the workflow's config file (default: $%s)"
                    % workflow.CONFIG_ENV)
    args = ap.parse_args(argv)
    try:
        workflow.run_job(args.kind, args.id, args.config)
    except Stopped as stop:  # the stage's snapshot is saved and was said: no error line
        return stop.status
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
