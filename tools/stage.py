"""python -m tools.stage KIND ID [--config FILE]: make one stage of the
experiments' workflow, in the store (the current folder): what each rule of
experiments/Snakefile runs as its job (experiments/workflow.run_job)."""
import sys

from common import cli
from experiments import workflow
from experiments.kinds import NAMES as KINDS
from training.multi_gpu import Stopped


def main(argv=None):
    ap = cli.ArgumentParser(description=__doc__.split(":", 1)[1].strip())
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
