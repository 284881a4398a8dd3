"""Numeric options out of range are refused with one line naming the option,
never clamped or replaced by a default: `reproduce --scale 0`
used to train 1 iteration per stage and report it beside the paper, `--k 0`
trained with the paper's 32, `--trials 0` ended in tools.evaluate's usage."""
import argparse

import pytest

from common import cli
from tools import evaluate, extract_features, netgen, reproduce


def test_checkers_accept_in_range_and_refuse_the_rest():
    assert cli.positive_int("3") == 3 and cli.nonnegative_int("0") == 0
    assert cli.positive_float("0.00004") == 0.00004
    for check, text in ((cli.positive_int, "0"), (cli.positive_int, "-2"), (cli.positive_int, "1.5"),
                        (cli.nonnegative_int, "-1"), (cli.positive_float, "0"),
                        (cli.positive_float, "-0.5"), (cli.positive_float, "nan"),
                        (cli.positive_float, "inf"), (cli.positive_float, "x")):
        with pytest.raises(argparse.ArgumentTypeError, match="expected .*got %r" % text):
            check(text)


def _refused(main, argv, capsys):
    with pytest.raises(SystemExit) as stop:
        main(argv)
    assert stop.value.code == cli.BAD_INPUT
    return capsys.readouterr().err.strip().splitlines()[-1]


@pytest.mark.parametrize("option,value,what", [
    ("--scale", "0", "a positive number"), ("--scale", "-1", "a positive number"),
    ("--k", "0", "a positive integer"), ("--trials", "0", "a positive integer"),
    ("--snapshot-every", "0", "a positive integer"), ("--augment", "-1", "an integer >= 0"),
    ("--gpu", "-1", "an integer >= 0")])
def test_reproduce_refuses_out_of_range_numbers(tmp_path, capsys, option, value, what):
    # An empty data root and a fresh run dir: were the option taken, the run
    # would start and fail on the missing dataset instead, with another message.
    argv = ["geng16", "table2", "--data-root", str(tmp_path / "none"), "--run-dir",
            str(tmp_path / "run"), option, value]
    line = _refused(reproduce.main, argv, capsys)
    assert line == "error: argument %s: expected %s, got '%s'" % (option, what, value)
    assert not (tmp_path / "run").exists()


def test_other_entry_points_refuse_out_of_range_numbers(tmp_path, capsys):
    line = _refused(evaluate.main, ["--matrix", "m.npz", "--protocol", "single-shot", "--out",
                                    str(tmp_path / "r"), "--repeats", "0"], capsys)
    assert line == "error: argument --repeats: expected a positive integer, got '0'"
    line = _refused(extract_features.main, ["--deploy", "d", "--weights", "w", "--split", "s",
                                            "--out", "o", "--batch", "0"], capsys)
    assert line == "error: argument --batch: expected a positive integer, got '0'"
    line = _refused(netgen.main, ["geng16", "--out", str(tmp_path / "p"), "--num-ids", "0"], capsys)
    assert line == "error: argument --num-ids: expected a positive integer, got '0'"
    assert not (tmp_path / "p").exists()
