"""Model cards: render the family template in `model_cards/` through `huggingface_hub.ModelCard`."""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources

import jinja2
import yaml
from huggingface_hub import ModelCard, ModelCardData

LIBRARY_NAME = "brain_gen_hf"
REQUIRED_METADATA = ("library_name", "license", "tags", "pipeline_tag")


@lru_cache(maxsize=1)
def _templates() -> tuple[jinja2.Environment, dict[str, dict]]:
    folder = resources.files("brain_gen_hf.model_cards")
    env = jinja2.Environment(
        loader=jinja2.FunctionLoader(lambda name: (folder / name).read_text(encoding="utf-8")),
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
    )
    families = {}
    for entry in folder.iterdir():
        if entry.name.endswith(".yaml"):
            families[entry.name[:-5]] = yaml.safe_load(entry.read_text(encoding="utf-8"))
    return env, families


def family_card_info(model_type: str) -> dict:
    """The family template (summary, tags, pipeline tag, I/O, ...) that covers `model_type`."""
    _, families = _templates()
    for info in families.values():
        if model_type in (info.get("model_types") or []):
            return info
    return families["default"]


def _held_contract(config):
    """The sub-config whose signal contract a model follows when it fixes none itself: the brain tokenizer an
    RVQ language model or a forecaster holds (its inputs go through that tokenizer), or a classifier's base."""
    for name in ("tokenizer_config", "base_config"):
        sub = getattr(config, name, None)
        if sub is not None and not isinstance(sub, dict) and getattr(sub, "contract_num_channels", None):
            return name, sub
    return None, None


def _contract(config) -> dict:
    held_as, held = _held_contract(config) if getattr(config, "contract_num_channels", None) is None else (None, None)

    def value(name):
        own = getattr(config, name, None)
        return own if own is not None or held is None else getattr(held, name, None)

    counts = {}
    for t in value("channel_types") or []:
        counts[t] = counts.get(t, 0) + 1
    sampling_rate, normalization = value("sampling_rate"), value("normalization")
    return {
        "sampling_rate": f"{sampling_rate:g} Hz" if sampling_rate else None,
        "num_channels": value("contract_num_channels"),
        "channel_types": ", ".join(f"{n} {t}" for t, n in counts.items()) or None,
        "has_positions": value("sensor_positions") is not None,
        "units": value("units"),
        "normalization": json.dumps(normalization) if normalization else None,
        "held_by": None
        if held is None
        else (
            f"the held brain tokenizer (`{held.model_type}`), which encodes every signal input"
            if held_as == "tokenizer_config"
            else f"the base model (`{held.model_type}`)"
        ),
    }


def render_model_card(
    config,
    *,
    repo_id: str | None = None,
    license: str = "mit",
    training_data: str | None = None,
    datasets: list[str] | None = None,
    metrics: dict | None = None,
    base_model: str | None = None,
    remote_code: bool = False,
    model_name: str | None = None,
) -> ModelCard:
    """A validated `ModelCard` for a model of `config`'s type."""
    # Checked here: the template would fail on it with a jinja2 error that names no argument.
    if metrics is not None and not isinstance(metrics, dict):
        raise ValueError(f"metrics must be a dict of metric name -> value, got {type(metrics).__name__}")
    info = family_card_info(config.model_type)
    tags = list(dict.fromkeys([LIBRARY_NAME, *info["tags"], config.model_type]))
    card_data = ModelCardData(
        library_name=LIBRARY_NAME,
        license=license,
        tags=tags,
        pipeline_tag=info["pipeline_tag"],
        datasets=datasets or None,
        base_model=base_model,
        model_name=model_name or repo_id,
    )
    env, _ = _templates()
    text = env.get_template("model_card.md").render(
        card_data=card_data.to_yaml(),
        model_name=model_name or repo_id or f"{config.model_type} model",
        model_type=config.model_type,
        summary=info["summary"],
        intended_use=info["intended_use"],
        limitations=info["limitations"],
        io=info["io"],
        contract=_contract(config),
        training_data=training_data,
        metrics=metrics or {},
        auto_class=info["auto_class"],
        repo_id=repo_id or "path/to/this/folder",
        remote_code=remote_code,
    )
    card = ModelCard(text)
    validate_card_metadata(card)
    return card


def validate_card_metadata(card: ModelCard) -> None:
    """Local validation (the Hub's validate-yaml endpoint is checked by `ModelCard.validate()`)."""
    data = card.data.to_dict()
    missing = [k for k in REQUIRED_METADATA if not data.get(k)]
    if missing:
        raise ValueError(f"model card metadata lacks {missing}")
    if data["library_name"] != LIBRARY_NAME:
        raise ValueError(f"model card library_name must be {LIBRARY_NAME!r}, got {data['library_name']!r}")
