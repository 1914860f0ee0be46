"""`lossnav.train`: the command line's training runs, from Python."""

from __future__ import annotations

import pytest

import lossnav

from conftest import cli_lines


def test_train_equals_the_command_line() -> None:
    doc = lossnav.train("digits", optimizers=["sgd", "ballistic"], epochs=2, seeds=2)
    cli = cli_lines("train", "--data", "digits", "--optimizers", "sgd,ballistic",
                    "--epochs", "2", "--seeds", "2")
    records, summary = cli[:-1], cli[-1]
    assert len(doc["records"]) == len(records) == 2 * 2 * 2
    for ours, theirs in zip(doc["records"], records):
        for key in ("optimizer", "lr", "seed", "epoch", "train_loss", "test_accuracy"):
            assert ours[key] == theirs[key], key
    assert doc["summary"]["final"] == summary["final"]
    assert doc["summary"]["learning_rates"] == {"sgd": 0.1, "ballistic": 0.0005}


def test_train_refuses_bad_arguments() -> None:
    with pytest.raises(lossnav.UsageError, match="optimizers"):
        lossnav.train(optimizers=["nesterov"], epochs=1)
    with pytest.raises(lossnav.UsageError, match="epochs"):
        lossnav.train(epochs=0)
    with pytest.raises(lossnav.UsageError, match="expected digits"):
        lossnav.train("imagenet", epochs=1)
    with pytest.raises(lossnav.UsageError, match="not among"):
        lossnav.train(optimizers=["sgd"], lr={"adam": 1e-3}, epochs=1)


def test_train_reports_progress_over_all_runs() -> None:
    calls = []
    doc = lossnav.train("digits", optimizers=["sgd", "ballistic"], epochs=2, seeds=1,
                        progress=lambda done, total: calls.append((done, total)))
    assert calls, "no progress reported"
    done, total = calls[-1]
    assert total > 0 and done == total, calls[-3:]
    # Nothing is reported before the total is known (a callable may divide by it).
    assert all(t > 0 for _, t in calls), calls[:3]
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)
    quiet = lossnav.train("digits", optimizers=["sgd", "ballistic"], epochs=2, seeds=1)
    assert [r["train_loss"] for r in doc["records"]] == [r["train_loss"] for r in quiet["records"]]
