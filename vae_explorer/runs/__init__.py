"""Runs: a training into a checkpoint folder, from a config or resumed from where it stopped, saved
after every epoch and ending with its test metrics. The command line and the app's Train page
(through a background job in its own process, runs/jobs.py and runs/worker.py) both train this way.
"""

from .run import prepare_run, train_run

__all__ = ["prepare_run", "train_run"]
