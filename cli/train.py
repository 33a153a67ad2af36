"""`supernet train`: compose the config, train, print where everything went.

Under torchrun (`torchrun --nproc-per-node N -m supernet_cli.main train ...`) every process runs this
command; they share one process group, agree on rank 0's run directory, and only rank 0 prints.
"""

from __future__ import annotations

from pathlib import Path

import typer

from supernet_cli.common import console, fail, user_errors


@user_errors
def train(
    overrides: list[str] = typer.Argument(None, help="key=value config overrides, e.g. epochs=2 space=small"),
    run_dir: Path = typer.Option(None, "--run-dir", help="where to write (default runs/<timestamp>)"),
    resume: Path = typer.Option(None, "--resume", help="continue the run in this directory"),
) -> None:
    """Train a weight-sharing supernet (BigNAS sandwich rule or Once-for-All progressive shrinking)."""
    from supernet.config import compose_config
    from supernet.run.directory import config_for_resume, default_run_dir, require_new_run_dir
    from supernet.train.distributed import agree, distributed_session
    from supernet.train.loop import train as run_training

    overrides = overrides or []
    if resume is not None:
        if run_dir is not None and Path(run_dir) != Path(resume):
            raise fail("--run-dir and --resume name different directories; --resume continues in place")
        cfg = config_for_resume(resume, overrides)
    else:
        cfg = compose_config("train", overrides)
    with distributed_session(cfg) as world:
        if resume is not None:
            target = Path(resume)
        else:
            # A default name comes from the clock: every process takes rank 0's.
            target = Path(agree(world, str(run_dir or cfg.run_dir or default_run_dir())))
            require_new_run_dir(target)
        if world.is_main:
            console.print(f"run directory: [bold]{target}[/]"
                          + (f" ({world.size} processes)" if world.size > 1 else ""))
        result = run_training(cfg, target, resume=resume is not None, overrides=overrides)
    if result.interrupted:
        if world.is_main:
            console.print(f"stopped by {result.interrupted} at step {result.step}; checkpoint saved. "
                          f"Continue with: supernet train --resume {target}")
        raise typer.Exit(130 if result.interrupted == "SIGINT" else 143)
    if world.is_main:
        summary = ", ".join(f"{k} {100 * v:.2f}%" for k, v in (result.test or result.val).items())
        console.print(f"done at step {result.step}: {'test' if result.test else 'val'} accuracy {summary}")
        console.print(f"checkpoints: {target / 'checkpoints'}; metrics: {target / 'metrics.jsonl'}")
