"""`brain-gen-hf` command line. Subcommands are registered by small functions in `SUBCOMMANDS`;
importing this module is cheap (each subcommand imports what it needs when it runs)."""

from __future__ import annotations

import argparse
import sys
from typing import Callable

SUBCOMMANDS: list[Callable[[argparse._SubParsersAction], None]] = []


def subcommand(register: Callable[[argparse._SubParsersAction], None]):
    """Decorator: add a function that registers one subcommand (it sets `func` on its parser)."""
    SUBCOMMANDS.append(register)
    return register


@subcommand
def register_preprocess(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "preprocess", help="raw MEG/EEG files -> cleaned segments -> Parquet shards + dataset card",
        description="Read every recording mne can open (files, folders or globs; NAME=PATH names the dataset), "
                    "preprocess and clean it, and write a Hugging Face dataset folder loadable with "
                    "datasets.load_dataset(OUTPUT). Reruns resume: finished recordings are skipped.")
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="file, folder, glob or NAME=PATH")
    parser.add_argument("--output", "-o", required=True, help="output dataset folder")
    parser.add_argument("--config", help="YAML build config (see training_scripts/configs/preprocess_*.yaml)")
    parser.add_argument("--push-to-hub", metavar="REPO_ID", help="upload the built folder to this Hub dataset repo")
    parser.add_argument("--private", action="store_true", help="create the Hub repo as private")
    parser.add_argument("--dataset-name", help="dataset name for inputs without NAME= (default: folder name)")
    parser.add_argument("--overwrite", action="store_true", help="delete OUTPUT first instead of resuming")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    parser.set_defaults(func=run_preprocess)


def run_preprocess(args: argparse.Namespace) -> int:
    from brain_gen_hf.data.config import BuildConfig
    from brain_gen_hf.data.shards import preprocess_and_publish

    config = BuildConfig.from_yaml(args.config) if args.config else BuildConfig()
    if args.dataset_name:
        config.dataset_name = args.dataset_name
    try:
        report = preprocess_and_publish(args.inputs, args.output, config, push_to_hub=args.push_to_hub,
                                        overwrite=args.overwrite, progress=not args.no_progress,
                                        private=args.private or None)
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0 if report.splits else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="brain-gen-hf", description="brain_gen_hf command line tools")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for register in SUBCOMMANDS:
        register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 2
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
