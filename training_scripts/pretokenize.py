"""Encode a windowed dataset with a frozen brain tokenizer into token shards for LM training.

    python training_scripts/pretokenize.py --tokenizer FOLDER_OR_REPO --dataset DIR_OR_REPO --output DIR \
        [--example_seconds 10.24] [--overlap_seconds 0] [--batch_size 8] [--push_to_hub org/name]

A user error (a missing or damaged tokenizer or dataset) prints one `error: ...` line and exits with code 2.
"""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokenizer", required=True)
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--example_seconds", type=float, default=10.24)
    parser.add_argument("--overlap_seconds", type=float, default=0.0)
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--splits", nargs="*", default=None)
    parser.add_argument("--push_to_hub", default=None, metavar="REPO_ID")
    args = parser.parse_args(argv)

    from brain_gen_hf.cli import run_reporting_errors

    return run_reporting_errors(
        lambda: pretokenize(args),
        interrupted="interrupted; splits already written are kept: rerun the same command to write them all",
    )


def pretokenize(args: argparse.Namespace) -> None:
    from brain_gen_hf.data.pretokenize import (
        load_frozen_tokenizer,
        pretokenize_dataset,
    )

    if args.push_to_hub:
        from brain_gen_hf.hub.upload import check_repo_id

        check_repo_id(args.push_to_hub, "--push_to_hub")  # before the work, not after it
    tokenizer = load_frozen_tokenizer(args.tokenizer)
    counts = pretokenize_dataset(
        tokenizer,
        args.dataset,
        args.output,
        example_seconds=args.example_seconds,
        overlap_seconds=args.overlap_seconds,
        splits=args.splits,
        batch_size=args.batch_size,
    )
    print(f"windows tokenized per split: {counts}")
    if args.push_to_hub:
        from huggingface_hub import HfApi

        from brain_gen_hf.hub.upload import upload_errors

        api = HfApi()
        with upload_errors(
            f"{args.output} to the Hub dataset repo {args.push_to_hub}", f"the token folder {args.output}"
        ):
            api.create_repo(args.push_to_hub, repo_type="dataset", exist_ok=True)
            api.upload_folder(
                repo_id=args.push_to_hub,
                repo_type="dataset",
                folder_path=args.output,
                commit_message="Upload pretokenized brain-token shards",
            )


if __name__ == "__main__":
    sys.exit(main())
