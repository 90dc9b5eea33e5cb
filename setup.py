from pathlib import Path

from setuptools import find_packages, setup

here = Path(__file__).parent

setup(
    name="brain_gen_hf",
    version="0.1.0",
    description="Hugging Face-native generative models for MEG/EEG (brain-gen rebuilt on transformers)",
    long_description=(here / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="MIT",
    python_requires=">=3.10",
    # The card templates live in the top-level model_cards/ folder and install as brain_gen_hf.model_cards.
    packages=find_packages(include=["brain_gen_hf", "brain_gen_hf.*"]) + ["brain_gen_hf.model_cards"],
    package_dir={"brain_gen_hf.model_cards": "model_cards"},
    package_data={"brain_gen_hf.model_cards": ["*.md", "*.yaml"]},
    install_requires=[
        "torch>=2.4",
        # 5.17 is the first release with dataclass configs; .ci/run runs the suite on 5.24 and the smoke subset
        # (tests/test_transformers_smoke.py) on 5.17. The KV-cache keyword differences live in compat.py.
        "transformers>=5.17,<6",
        "datasets>=3.0",
        "accelerate>=1.0",
        "huggingface_hub>=1.5,<3",  # transformers 5.17 needs 1.x, 5.24 works with 2.x
        "safetensors>=0.4",
        "tokenizers>=0.21",
        "mne>=1.8",
        "mne-bids>=0.15",  # BIDS input (layout: bids)
        "einops>=0.8",
        "numpy>=1.26",
        "tqdm>=4.66",
        "matplotlib>=3.8",
        "jinja2>=3.1",
        "pyyaml>=6.0",
        "scipy>=1.10",
        "tensorboard>=2.15",  # the trainer's default tracker
    ],
    extras_require={
        # ruff pinned: `ruff format --check` in CI must not change verdict with a new release's style.
        # parameterized: imported by transformers' common model tests (tests/transformers_common.py).
        "test": ["pytest>=8", "pytest-timeout>=2.3", "ruff==0.17.6", "parameterized>=0.9"],
        # mne reads a real fsaverage's FreeSurfer files (surfaces, parcellation) with nibabel (source-space builds).
        "source": ["nibabel>=5"],
        "dev": ["pytest>=8", "pytest-timeout>=2.3", "ruff==0.17.6", "parameterized>=0.9"],
    },
    entry_points={"console_scripts": ["brain-gen-hf=brain_gen_hf.cli:main"]},
)
