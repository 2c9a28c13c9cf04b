"""Progress on the terminal: a bar per phase, its rate measured from the first unit done."""

from __future__ import annotations

from specfit.cli.progress import ProgressBars
from specfit.events import Event, Phase


def test_each_phase_gets_a_bar_whose_rate_starts_at_its_first_unit(capsys) -> None:
    bars = ProgressBars(quiet=False)
    bars(Event(Phase.SELECT, 0, 4, message="FreSh: choosing omega_0 for siren"))
    bars(Event(Phase.SELECT, 4, 4))
    bars(Event(Phase.TRAIN, 0, 10, message="training siren (omega_0=30) for 10 steps"))
    assert bars.bar.shown and bars.bar.bar.desc == "fit"  # training has a bar after FreSh's
    bars(Event(Phase.TRAIN, 3, 10))
    assert (bars.bar.bar.n, bars.bar.bar.format_dict["initial"]) == (3, 3)  # the start-up is not timed
    bars(Event(Phase.TRAIN, 5, 10, record={"psnr_train": 20.0, "psnr_test": None}))
    bars(Event(Phase.TRAIN, 7, 12))
    assert (bars.bar.bar.n, bars.bar.bar.total) == (7, 12)
    bars.close()
    err = capsys.readouterr().err
    assert "FreSh: choosing omega_0" in err and "training siren" in err and "PSNR train 20.00 dB" in err


def test_quiet_progress_prints_nothing(capsys) -> None:
    bars = ProgressBars(quiet=True)
    bars(Event(Phase.TRAIN, 0, 10, message="training"))
    bars(Event(Phase.TRAIN, 5, 10))
    bars.status("writing")
    bars.close()
    assert capsys.readouterr().err == ""
