"""Raw MEG/EEG -> cleaned, normalised segments -> Parquet shards + dataset card [-> Hub].

    python training_scripts/preprocess.py INPUT... --output DIR [--config FILE] [--push-to-hub REPO_ID]

Same as `brain-gen-hf preprocess`; see `training_scripts/configs/preprocess_*.yaml`.
"""

import sys

from brain_gen_hf.cli import main

if __name__ == "__main__":
    sys.exit(main(["preprocess", *sys.argv[1:]]))
