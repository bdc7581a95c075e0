"""The training tool's DDP path: two CPU processes (gloo) under torchrun."""

from __future__ import annotations

from iqgate.packages import load_package
from iqgate_testkit.peers import free_port
from iqgate_testkit.train_tool import (
    TINY_PHANTOM_SPLITS,
    TINY_SCHEDULE,
    package_args,
    run_train_tool,
)


def test_torchrun_with_two_cpu_processes_trains_and_writes_one_package(tmp_path):
    out = tmp_path / "ddp-cmr"
    launcher = ["-m", "torch.distributed.run", "--nproc-per-node", "2"]
    launcher += ["--master-addr", "127.0.0.1", "--master-port", str(free_port())]
    run = run_train_tool(
        "--preset",
        "demo-cmr",
        "--data",
        "phantoms-cmr",
        *package_args("ddp-cmr", tmp_path),
        *TINY_PHANTOM_SPLITS,
        *TINY_SCHEDULE,
        "--batch-size",
        "4",
        "--device",
        "cpu",
        "--threads",
        "1",
        launcher=launcher,
    )
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    _, card = load_package(out)
    assert card.name == "ddp-cmr" and card.training["best_epoch"] == 1
    assert run.stdout.count('"package"') == 1  # only rank 0 writes and reports
