"""`brain-gen-hf` command line. Subcommands are registered by small functions in `SUBCOMMANDS`;
importing this module is cheap (each subcommand imports what it needs when it runs)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

SUBCOMMANDS: list[Callable[[argparse._SubParsersAction], None]] = []


def subcommand(register: Callable[[argparse._SubParsersAction], None]):
    """Decorator: add a function that registers one subcommand (it sets `func` on its parser)."""
    SUBCOMMANDS.append(register)
    return register


@subcommand
def register_preprocess(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "preprocess",
        help="raw MEG/EEG files -> cleaned segments -> Parquet shards + dataset card",
        description="Read every recording mne can open (files, folders or globs; NAME=PATH names the dataset), "
        "preprocess and clean it, and write a Hugging Face dataset folder loadable with "
        "datasets.load_dataset(OUTPUT). Reruns resume: finished recordings are skipped, changed or "
        "damaged ones are processed again. Exit status: 0 built, 1 built but some recordings failed "
        "(listed), 2 error (nothing lost).",
    )
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="file, folder, glob or NAME=PATH")
    parser.add_argument("--output", "-o", required=True, help="output dataset folder")
    parser.add_argument("--config", help="YAML build config (see training_scripts/configs/preprocess_*.yaml)")
    parser.add_argument("--push-to-hub", metavar="REPO_ID", help="upload the built folder to this Hub dataset repo")
    parser.add_argument("--private", action="store_true", help="create the Hub repo as private")
    parser.add_argument("--dataset-name", help="dataset name for inputs without NAME= (default: folder name)")
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="rebuild from scratch instead of resuming: the files of the earlier build in OUTPUT "
        "are removed once the first recording is done (other files are never touched)",
    )
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    parser.set_defaults(func=run_preprocess)


def run_preprocess(args: argparse.Namespace) -> int:
    import logging

    from brain_gen_hf.data.config import BuildConfig
    from brain_gen_hf.data.shards import preprocess_and_publish

    config = BuildConfig.from_yaml(args.config) if args.config else BuildConfig()
    if args.dataset_name:
        config.dataset_name = args.dataset_name
    # Failed recordings are listed in the summary (or in the error): per-file warnings would repeat them.
    build_logger = logging.getLogger("brain_gen_hf.data.shards")
    level = build_logger.level
    build_logger.setLevel(logging.ERROR)
    try:
        report = preprocess_and_publish(
            args.inputs,
            args.output,
            config,
            push_to_hub=args.push_to_hub,
            overwrite=args.overwrite,
            progress=not args.no_progress,
            private=args.private or None,
        )
    finally:
        build_logger.setLevel(level)
    return 1 if report.failed else 0


@subcommand
def register_quickstart(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "quickstart",
        help="the whole pipeline, small and offline: data -> tokenizer -> LM -> forecast -> plots",
        description="Build a small dataset (your recordings, or SIMULATED MEG by default), train a BrainTokMix "
        "tokenizer, pretokenize, train a FlatGPTEmbedsRVQ language model, forecast a held-out "
        "window and write plots and both models (with model cards) under OUTPUT.",
    )
    parser.add_argument("--output", "-o", default="quickstart_output", help="output folder")
    parser.add_argument(
        "--input",
        "-i",
        nargs="+",
        metavar="RECORDING",
        help="recordings (files, folders, globs): MEG or EEG, any format `preprocess` reads",
    )
    parser.add_argument(
        "--config",
        help="YAML preprocessing build config for --input (as for `preprocess`; see "
        "training_scripts/configs/preprocess_*.yaml)",
    )
    parser.add_argument("--tokenizer-steps", type=int, default=300)
    parser.add_argument("--lm-steps", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--eval-config",
        default="small",
        help="evaluation config of the last step: a preset (small, tiny, paper), a YAML file, or none to skip",
    )
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    parser.set_defaults(func=run_quickstart)


def run_quickstart(args: argparse.Namespace) -> int:
    from brain_gen_hf.quickstart import run_quickstart as quickstart

    quickstart(
        args.output,
        args.input,
        tokenizer_steps=args.tokenizer_steps,
        lm_steps=args.lm_steps,
        batch_size=args.batch_size,
        progress=not args.no_progress,
        seed=args.seed,
        config_file=args.config,
        evaluation=None if args.eval_config.lower() == "none" else args.eval_config,
    )
    return 0


@subcommand
def register_evaluate(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="is a trained model any good? rollouts, metrics, divergence, baselines -> report.md",
        description="Sample sessions of a dataset split, generate rollouts of MODEL and of the baselines "
        "(zero, mean, persistence, linear AR; TimesFM when its weights are local) from the same contexts, compare "
        "them with the true continuations (PSD, covariance, coherence, ... distances; sliding-window envelopes; "
        "correct vs swapped context with bootstrap CIs and Wilcoxon tests; bits/token for token models) and write "
        "report.md (read it first), report.json (every number) and the figures under OUTPUT. For several "
        "processes use `accelerate launch training_scripts/evaluate.py` with the same arguments.",
    )
    parser.add_argument("model", metavar="MODEL", help="a saved model folder or a Hub model repo id")
    parser.add_argument("dataset", metavar="DATASET", help="a built dataset folder or a Hub dataset repo id")
    parser.add_argument(
        "--split", help="the dataset split to evaluate on (default: the config's sampler.split, which is test)"
    )
    parser.add_argument(
        "--config",
        help="YAML evaluation config, or a preset: paper, small, tiny (default: the EvaluationConfig defaults)",
    )
    parser.add_argument("--output", "-o", required=True, help="output folder for report.md, report.json, figures")
    parser.add_argument(
        "--baselines", help="comma-separated baselines (default from the config: zero,mean,persistence,ar,timesfm)"
    )
    parser.add_argument(
        "--push-to-hub",
        metavar="REPO_ID",
        help="write the results into the model card's model-index of this Hub model repo (with the report files)",
    )
    parser.add_argument("--private", action="store_true", help="create the Hub repo as private if it is new")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    parser.set_defaults(func=run_evaluate)


def run_evaluate(args: argparse.Namespace) -> int:
    from brain_gen_hf.evaluation.runner import evaluate_command

    return evaluate_command(args)


@subcommand
def register_export_remote_code(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "export-remote-code",
        help="make a saved model folder loadable with trust_remote_code=True",
        description="Write self-contained configuration_*.py / modeling_*.py files and an auto_map into a "
        "saved brain_gen_hf model folder, so transformers loads it without brain_gen_hf installed.",
    )
    parser.add_argument("folder", help="a folder written by save_pretrained")
    parser.set_defaults(func=run_export_remote_code)


def run_export_remote_code(args: argparse.Namespace) -> int:
    from transformers import AutoConfig

    import brain_gen_hf  # noqa: F401
    from brain_gen_hf.hub.remote_code import (
        add_auto_map,
        export_remote_code,
        nested_model_types,
    )

    folder = Path(args.folder)
    if not folder.is_dir():
        what = "is a file" if folder.exists() else "does not exist"
        raise NotADirectoryError(
            f"{folder} {what}: export-remote-code writes into a local model folder written by "
            "save_pretrained (download a Hub model with `hf download REPO --local-dir DIR` "
            "first)"
        )
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(
            f"{folder} has no config.json, so it is not a saved model folder; pass a folder "
            "written by save_pretrained (e.g. a run's final_model)"
        )
    config = AutoConfig.from_pretrained(args.folder)
    auto_map = export_remote_code(config.model_type, args.folder, nested_model_types(config))
    add_auto_map(args.folder, auto_map)
    print(f"wrote remote code for {config.model_type} into {args.folder}: {auto_map}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(prog="brain-gen-hf", description="brain_gen_hf command line tools")
    parser.add_argument("--version", action="version", version=f"brain-gen-hf {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for register in SUBCOMMANDS:
        register(subparsers)
    return parser


# Errors a user can fix (bad input, a missing or damaged file, a bad config): one line on stderr, exit code 2.
USER_ERRORS = (ValueError, OSError, KeyError)


def user_error_line(err: BaseException) -> str:
    """The one line printed for a user error (a `KeyError` keeps its message unquoted)."""
    message = str(err.args[0]) if isinstance(err, KeyError) and err.args else str(err)
    return " ".join(message.split()) or type(err).__name__


def run_reporting_errors(run: Callable[[], int | None], *, interrupted: str) -> int:
    """Exit status of `run()`, with every command's error contract: a user error is one `error:` line and exit
    code 2 (no traceback); Ctrl-C prints `interrupted` (what is kept, how to resume) and exits 130."""
    try:
        return int(run() or 0)
    except USER_ERRORS as err:
        print(f"error: {user_error_line(err)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(interrupted, file=sys.stderr)
        return 130


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 2
    return run_reporting_errors(
        lambda: args.func(args), interrupted="interrupted; finished work is kept, rerun the same command to resume"
    )


if __name__ == "__main__":
    sys.exit(main())
