"""The calibration's progress: the bar's fraction, the node's text (stage, last plan, best worst
case, time left from the pace so far) and its end at 100%."""
from __future__ import annotations

from cache_core.calibration.progress import CalibrationProgress


def _progress(total: float):
    bars, texts, now = [], [], [0.0]
    progress = CalibrationProgress(total, lambda done, whole: bars.append((done, whole)), texts.append,
                                   clock=lambda: now[0])
    return progress, bars, texts, now


def test_each_step_advances_the_bar_by_its_weight_and_the_bar_stops_at_the_total():
    progress, bars, _, _ = _progress(10.0)
    step_done = progress.run_step(0.5)
    for i in range(4):
        step_done(i, None, None, 4)
    assert bars == [(0.5, 10.0), (1.0, 10.0), (1.5, 10.0), (2.0, 10.0)]
    progress.advance(20.0)
    assert bars[-1] == (10.0, 10.0)


def test_the_text_says_the_stage_the_last_plan_the_best_worst_case_and_the_time_left():
    progress, _, texts, now = _progress(100.0)
    progress.stage("4x (1 of 2 speedups)")
    assert texts[-1] == "Calibrating: 4x (1 of 2 speedups)"
    now[0] = 20.0
    progress.advance(25.0)
    progress.scored("CCRRCRRC", 28.25)
    progress.scored("CCRCRRRC", 27.0)
    assert texts[-1] == ("Calibrating: 4x (1 of 2 speedups); last plan CCRCRRRC; best worst case so far 28.2 dB; "
                         "about 60 s left (25%)")
    now[0] = 600.0
    progress.stage("6x (2 of 2 speedups)")   # a new stage: its own best
    assert texts[-1] == "Calibrating: 6x (2 of 2 speedups); about 30 min left (25%)"


def test_finish_shows_the_whole_bar():
    progress, bars, texts, _ = _progress(90.0)
    progress.advance(80.0)
    progress.finish()
    assert bars[-1] == (90.0, 90.0) and texts[-1] == "calibration done"
