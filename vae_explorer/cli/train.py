"""`vae-explorer train`: a run from a config (or resumed), its flags made from the config dataclasses."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def config_flags() -> list[tuple[str, str, str, dict]]:
    """`train`'s flags, one per config key a run sets itself (not those filled in from the dataset):
    (dest, --flag, "section.key", argparse options). Made from the config dataclasses as the Train
    form is: the type, choices and the comment above each field; a key that two sections share
    (channels) is prefixed with its section (--data-channels, --model-channels)."""
    import dataclasses

    from ..config import FILLED_FROM_DATA, SECTIONS, field_docs, field_type

    names = [f.name for cls in SECTIONS.values() for f in dataclasses.fields(cls)]
    found = []
    for section, cls in SECTIONS.items():
        docs = field_docs(cls)
        for f in dataclasses.fields(cls):
            if (section, f.name) in FILLED_FROM_DATA:
                continue
            dest = f.name if names.count(f.name) == 1 else f"{section}_{f.name}"
            inner, many = field_type(cls, f.name)
            options = {"help": f"{docs[f.name]} [{section}.{f.name}]".replace("%", "%%")}
            if inner is bool:
                options["action"] = argparse.BooleanOptionalAction
            else:
                options |= {"type": inner, "metavar": dest.upper() if "choices" not in f.metadata else None}
                if many:
                    options["nargs"] = "+"
                if "choices" in f.metadata:
                    options["choices"] = list(f.metadata["choices"])
            found.append((dest, "--" + dest.replace("_", "-"), f"{section}.{f.name}", options))
    return found


def _run_folder(args: argparse.Namespace) -> Path:
    from ..paths import runs_dir

    if args.out:
        return Path(args.out)
    name = args.name or (Path(args.config).stem if args.config else "digits_mlp")
    return runs_dir(args.runs_dir) / name


class _CacheBar:
    """progress(done, total) for a folder's first reading into the image cache, as a tqdm bar."""

    def __init__(self, quiet: bool):
        self.quiet, self.bar = quiet, None

    def __call__(self, done: int, total: int) -> None:
        from tqdm import tqdm

        if self.bar is None and not self.quiet:
            self.bar = tqdm(
                total=total,
                unit="image",
                desc="reading the image folder into the cache",
                mininterval=0.25,
                file=sys.stderr,
            )
        if self.bar is not None:
            self.bar.update(done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _warn_skipped(data) -> None:
    from ..data.image_folder import skipped_message

    message = skipped_message(data)
    if message:
        print(f"warning: {message}", file=sys.stderr)


def cmd_train(args: argparse.Namespace) -> int:
    import dataclasses

    from ..checkpoints import locate
    from ..config import RunConfig, apply_overrides, load_config
    from ..errors import ConfigError
    from ..paths import resolve_config
    from ..runs import prepare_run
    from ..training import distributed

    given = [
        (flag, key, getattr(args, dest)) for dest, flag, key, _ in config_flags() if getattr(args, dest) is not None
    ]
    overrides = {key: value for _, key, value in given}
    reading = _CacheBar(args.quiet or os.environ.get("RANK", "0") != "0")  # under torchrun, rank 0's bar only
    try:
        if args.resume:
            changed = sorted(flag for flag, _, _ in given if flag not in ("--epochs", "--device"))
            changed += [
                flag for flag, given in (("--config", args.config), ("--out", args.out), ("--name", args.name)) if given
            ]
            if changed:
                raise ConfigError(
                    f"--resume goes on with the run's own config, in its own folder; leave out {', '.join(changed)} "
                    "(only --epochs and --device may be given)."
                )
            run = prepare_run(
                None, locate(args.resume, args.runs_dir), resume=True, epochs=args.epochs, progress=reading
            )
            if args.device:
                run.config.train = apply_overrides(run.config, {"train.device": args.device}).train
        else:
            config = load_config(resolve_config(args.config)) if args.config else RunConfig()
            run = prepare_run(apply_overrides(config, overrides), _run_folder(args), progress=reading)
    finally:
        reading.close()
    if distributed.launched():  # torchrun: join its process group; only rank 0 prints and saves
        run.config.train = dataclasses.replace(run.config.train, device=distributed.start(run.config.train.device))
    try:
        return _train_and_report(args, run)
    finally:
        distributed.finish()


def _train_and_report(args: argparse.Namespace, run) -> int:
    from tqdm import tqdm

    from ..errors import TrainingError
    from ..runs import train_run
    from ..training import distributed

    main = distributed.is_main()
    args.quiet = args.quiet or not main
    if main:
        _warn_skipped(run.data)
    config, out = run.config, run.out
    done = run.epochs_done
    world = distributed.world()[1]
    if main:
        print(
            f"{'resuming' if done else 'training'} {config.model.architecture} VAE ({run.model.num_parameters():,} parameters, "
            f"latent {config.model.latent_dim}) on {run.data.name}: {len(run.data.train_x):,} train / {len(run.data.test_x):,} "
            f"test images -> {out}"
            + (f" (epoch {done + 1} of {config.train.epochs})" if done else "")
            + (f", {world} processes" if world > 1 else ""),
            file=sys.stderr,
        )
    bar = tqdm(total=0, unit="step", disable=True)  # replaced by the real bar at the first step

    def on_event(event) -> None:
        nonlocal bar
        if bar.disable and not args.quiet and event.kind == "step":  # only now: config errors print no half-drawn bar
            bar = tqdm(total=event.total_steps, initial=event.step - 1, unit="step", mininterval=0.25, file=sys.stderr)
        if event.kind == "step":
            bar.update(1)
            if event.step % 50 == 0:
                bar.set_postfix(epoch=event.epoch, loss=f"{event.loss:.1f}", refresh=False)
        else:
            bar.write(
                f"epoch {event.epoch}: train {event.record['train_loss']:.2f}  test {event.record['test_loss']:.2f} nats",
                file=sys.stderr,
            )

    try:
        history = train_run(run, [on_event])
    except TrainingError:
        bar.close()
        raise
    except KeyboardInterrupt:
        bar.close()
        kept = (
            f"{out} holds epoch {run.epochs_done}; resume with --resume {out}"
            if run.epochs_done
            else "nothing was saved"
        )
        if main:
            print(f"interrupted; {kept}.", file=sys.stderr)
        return 130
    bar.close()
    if main:
        print(
            f"final test loss: {history[-1]['test_loss']:.2f} nats per image (recon {history[-1]['test_recon']:.2f}, "
            f"KL {history[-1]['test_kl']:.2f}); saved {out}"
        )
    return 0
