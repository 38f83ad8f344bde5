"""DVCLive histories can be cut back to a checkpoint, so a resumed run never logs a step twice."""

from train.live import MetricsLog, trim_history


def test_trim_history_drops_rows_after_the_checkpoint(tmp_path):
    live = MetricsLog(tmp_path / "dvclive", resume_from=None, params={"lr": 0.1})
    for step in (2, 4, 6):
        live.log_metrics(step, {"loss_D": step / 10, "loss_G": 1.0})
    live.close()
    assert trim_history(tmp_path / "dvclive", 4) == 2
    rows = (tmp_path / "dvclive" / "plots" / "metrics" / "loss_D.tsv").read_text().split()
    assert rows == ["step", "loss_D", "2", "0.2", "4", "0.4"]
    assert trim_history(tmp_path / "dvclive", 4) == 0


def test_a_resumed_log_continues_the_history(tmp_path):
    live = MetricsLog(tmp_path / "dvclive", resume_from=None, params={})
    live.log_metrics(1, {"loss_D": 1.0})
    live.log_metrics(2, {"loss_D": 2.0})
    live.close()
    live = MetricsLog(tmp_path / "dvclive", resume_from=1, params={})
    live.log_metrics(2, {"loss_D": 3.0})
    live.close()
    rows = (tmp_path / "dvclive" / "plots" / "metrics" / "loss_D.tsv").read_text().split()
    assert rows == ["step", "loss_D", "1", "1.0", "2", "3.0"]
