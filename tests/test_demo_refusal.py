"""The demo refuses to report success when a rank-1 is not
clearly above chance (experiments.demo.CLEAR_MARGIN x chance), naming the figure."""
import pytest

from common import cli
from experiments.demo import CLEAR_MARGIN, check_above_chance


def test_margin_is_between_luck_and_the_measured_figures():
    # Geng16 46 % vs 0.79 % chance and MTDnet 8 % vs 1 % pass; 2 x chance is luck's reach
    assert 2 < CLEAR_MARGIN < 8


def test_clearly_above_chance_passes():
    check_above_chance("Geng16 DGDNet two-stepped, single query", 0.46, 0.0079)
    check_above_chance("MTDnet-trp", 0.08, 0.01)
    check_above_chance("MTDnet-trp", 0.04, 0.01)  # exactly the margin


@pytest.mark.parametrize("rank1, chance", [(0.0079, 0.0079), (0.03, 0.01), (0.0, 0.01)])
def test_near_chance_is_refused_naming_the_figure(rank1, chance):
    with pytest.raises(cli.Failure) as err:
        check_above_chance("MTDnet-trp", rank1, chance)
    text = cli.message(err.value)
    assert text.startswith("MTDnet-trp: rank-1 %.2f%%" % (100 * rank1))
    assert "chance %.2f%%" % (100 * chance) in text
    assert cli.exit_status(err.value) == cli.FAILURE
