"""The evaluation report: `report.json` (every number), `report.md` (what a person reads first), the model card's
`model-index`, and `to_json`, the one JSON writer of the evaluation modules (NaN and inf become null)."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

# Distributional distances the verdict lines compare (lower is better unless named in SIMILARITY): the PSD and
# band-power spectra, the channel covariance and the coherence; then the point error, reported for honesty (a
# perfect sampler has twice the MSE of the zero forecast on a stationary signal, so MSE alone misleads).
HEADLINE_METRICS = ("psd_jsd", "band_jsd", "covariance", "coherence")
POINT_METRICS = ("mse",)
METRIC_LABELS = {
    "psd_jsd": "PSD JSD",
    "band_jsd": "band-power JSD",
    "covariance": "covariance distance",
    "coherence": "coherence distance",
    "mse": "MSE",
}
# A paired two-sided Wilcoxon test cannot reach p < 0.05 with fewer than 6 contexts.
MIN_CONTEXTS_FOR_TEST = 6
ALPHA = 0.05


def _plain(value: Any) -> Any:
    """JSON-ready copy: numpy scalars/arrays to Python, non-finite floats to None, Paths to str."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, (np.integer, int)):
        return int(value)
    if isinstance(value, (np.floating, float)):
        value = float(value)
        return value if math.isfinite(value) else None
    if isinstance(value, Path):
        return str(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _plain(dataclasses.asdict(value))
    return value


def to_json(value: Any, *, indent: int | None = 2) -> str:
    """Strict JSON text of `value` (dicts, lists, numpy values): NaN/inf are written as null, never as `NaN`."""
    return json.dumps(_plain(value), indent=indent, allow_nan=False)


def write_json(path: str | Path, value: Any) -> Path:
    path = Path(path)
    path.write_text(to_json(value) + "\n", encoding="utf-8")
    return path


# ---------------------------------------------------------------------------------------------- comparisons
def _finite(values) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64).ravel()
    return values[np.isfinite(values)]


def _median(values) -> float:
    values = _finite(values)
    return float(np.median(values)) if values.size else float("nan")


def compare_paired(model: np.ndarray, baseline: np.ndarray, *, higher_is_better: bool = False) -> dict:
    """Per-context values of the model and a baseline (same contexts, same order) -> the paired comparison.

    `delta` is positive where the model is better (lower distance, or higher similarity); the Wilcoxon
    signed-rank p-value is two-sided, and left out (None) below `MIN_CONTEXTS_FOR_TEST` contexts, where no
    outcome could be significant at 0.05.
    """
    from scipy.stats import wilcoxon

    model, baseline = np.asarray(model, dtype=np.float64), np.asarray(baseline, dtype=np.float64)
    delta = (model - baseline) if higher_is_better else (baseline - model)
    delta = delta[np.isfinite(delta)]
    out = {
        "model": _median(model),
        "baseline": _median(baseline),
        "median_delta": float(np.median(delta)) if delta.size else float("nan"),
        "prob_improvement": float(np.mean(delta > 0)) if delta.size else float("nan"),
        "n": int(delta.size),
        "p_value": None,
    }
    if delta.size >= MIN_CONTEXTS_FOR_TEST and np.any(delta != 0):
        out["p_value"] = float(wilcoxon(delta).pvalue)
    if out["p_value"] is None or out["p_value"] >= ALPHA:
        out["outcome"] = "no significant difference" if out["p_value"] is not None else "untested"
    else:
        out["outcome"] = "better" if out["median_delta"] > 0 else "worse"
    return out


# ---------------------------------------------------------------------------------------------- the report
@dataclasses.dataclass
class EvaluationReport:
    """Everything one evaluation measured (`numbers` is what `report.json` holds) and the files it wrote."""

    numbers: dict
    output_dir: Path | None = None
    files: list[Path] = dataclasses.field(default_factory=list)
    model: Any = dataclasses.field(default=None, repr=False, compare=False)  # the evaluated model (for its card)

    @property
    def lines(self) -> list[str]:
        """The verdict: one line per baseline, then the token-level line (what `report.md` opens with)."""
        return verdict_lines(self.numbers)

    def to_markdown(self) -> str:
        return render_markdown(self.numbers)

    def model_index(self, model_name: str | None = None) -> list[dict]:
        return model_index(self, model_name=model_name)

    def save(self, output_dir: str | Path) -> list[Path]:
        """Write report.json and report.md into `output_dir`."""
        output_dir = Path(output_dir)
        written = [write_json(output_dir / "report.json", self.numbers), output_dir / "report.md"]
        written[1].write_text(self.to_markdown(), encoding="utf-8")
        return written


def _fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    return f"{value:.4g}"


def _metric_phrase(name: str, comparison: dict) -> str:
    values = f"{METRIC_LABELS.get(name, name)} {_fmt(comparison['model'])} vs {_fmt(comparison['baseline'])}"
    delta, p = comparison.get("median_delta"), comparison.get("p_value")
    if delta is None or not math.isfinite(delta):
        return f"{values} (not comparable)"
    direction = "better" if delta > 0 else "worse" if delta < 0 else "equal"
    if p is None:
        return f"{values} ({direction}, untested)"
    return f"{values} ({direction if p < ALPHA else 'n.s.'}, p={_fmt(p)})"


def verdict_lines(numbers: dict) -> list[str]:
    """One honest line per baseline: on which distributional metrics the model is significantly better (paired
    Wilcoxon over contexts, p < 0.05), then the point MSE; below `MIN_CONTEXTS_FOR_TEST` contexts only directions."""
    lines = []
    for baseline, metrics in (numbers.get("comparisons") or {}).items():
        distributional = [n for n in metrics if n not in POINT_METRICS]
        n = max((metrics[m]["n"] for m in metrics), default=0)
        better = sum(metrics[m]["outcome"] == "better" for m in distributional)
        worse = sum(metrics[m]["outcome"] == "worse" for m in distributional)
        if n < MIN_CONTEXTS_FOR_TEST:
            lower = sum((metrics[m]["median_delta"] or 0) > 0 for m in distributional)
            headline = (
                f"NOT TESTED ({n} contexts, a paired test needs {MIN_CONTEXTS_FOR_TEST}); the model is closer to the "
                f"truth on {lower} of {len(distributional)} distributional metrics"
            )
        elif better == len(distributional) and distributional:
            headline = "the model BEATS it on every distributional metric"
        elif better:
            headline = f"the model beats it on {better} of {len(distributional)} distributional metrics"
            headline += f" and is worse on {worse}" if worse else ""
        else:
            headline = "the model does NOT beat it on any distributional metric"
            headline += f" (worse on {worse})" if worse else ""
        details = "; ".join(_metric_phrase(m, metrics[m]) for m in metrics)
        lines.append(f"vs {baseline}: {headline} — {details}")
    for name, reason in (numbers.get("skipped_baselines") or {}).items():
        lines.append(f"vs {name}: skipped ({reason})")
    token = numbers.get("token_summary")
    if token:
        bits, unigram_bits = token.get("bits_per_token"), token.get("unigram_bits_per_token")
        if bits is not None and unigram_bits is not None:
            verdict = "better than" if bits < unigram_bits else "NOT better than"
            lines.append(
                f"token level: {_fmt(bits)} bits/token (perplexity {_fmt(token.get('perplexity'))}) vs "
                f"{_fmt(unigram_bits)} bits/token for the unigram baseline: {verdict} the unigram baseline"
            )
    effect = numbers.get("context_effect")
    if effect:
        significant = [n for n, e in effect.items() if e.get("p_value") is not None and e["p_value"] < ALPHA]
        better = [n for n in significant if (effect[n].get("median_delta") or 0) > 0]
        described = ", ".join(
            f"{METRIC_LABELS.get(n, n)} Δ={_fmt(e.get('median_delta'))} p={_fmt(e.get('p_value'))}"
            for n, e in effect.items()
        )
        n = max((e.get("n") or 0 for e in effect.values()), default=0)
        lines.append(
            f"correct-context effect (the model's rollout vs the true continuation of its own context, compared with "
            f"another context's; longest horizon, {n} contexts): "
            + (f"significant on {', '.join(METRIC_LABELS.get(b, b) for b in better)}" if better else "NOT significant")
            + f" ({described})"
        )
    return lines


def render_markdown(numbers: dict) -> str:
    setup = numbers.get("setup", {})
    out = [
        f"# Evaluation of {numbers.get('model', 'the model')}",
        "",
        f"Dataset `{numbers.get('dataset')}`, split `{numbers.get('split')}`: {setup.get('contexts', '?')} contexts "
        f"× {setup.get('rollouts_per_context', '?')} rollouts, {_fmt(setup.get('context_seconds'))} s of context, "
        f"{_fmt(setup.get('continuation_seconds'))} s generated, {_fmt(setup.get('sfreq'))} Hz. Distances are "
        "between each generated continuation and the true one (medians over contexts; lower is better); "
        "p-values are two-sided paired Wilcoxon tests over contexts.",
        "",
        "## Verdict",
        "",
        *[f"- {line}" for line in verdict_lines(numbers)],
        "",
        "## Distances to the true continuation (median over contexts)",
        "",
    ]
    forecasters = numbers.get("forecasters") or {}
    names = [
        m for m in (*HEADLINE_METRICS, *POINT_METRICS) if any(m in f["continuation"] for f in forecasters.values())
    ]
    if names:
        out.append("| forecaster | " + " | ".join(METRIC_LABELS.get(n, n) for n in names) + " |")
        out.append("|---|" + "---|" * len(names))
        for forecaster, values in forecasters.items():
            cells = [_fmt((values["continuation"].get(n) or {}).get("median")) for n in names]
            out.append(f"| {forecaster} | " + " | ".join(cells) + " |")
    out += ["", "Every number (all metrics, curves, controls, statistics) is in `report.json`; figures beside it.", ""]
    return "\n".join(out)


# ---------------------------------------------------------------------------------------------- model card
def eval_results(report: EvaluationReport | dict):
    """`huggingface_hub.EvalResult`s of the model's headline numbers (what the card's `model-index` lists)."""
    from huggingface_hub import EvalResult

    numbers = report.numbers if isinstance(report, EvaluationReport) else report
    dataset, split = str(numbers.get("dataset")), numbers.get("split")
    common = {
        "task_type": "time-series-forecasting",
        "task_name": "MEG/EEG forecasting",
        "dataset_type": dataset,
        "dataset_name": Path(dataset).name or dataset,
        "dataset_split": split,
    }
    results = []
    model = (numbers.get("forecasters") or {}).get("model", {})
    for name in (*HEADLINE_METRICS, *POINT_METRICS):
        value = (model.get("continuation", {}).get(name) or {}).get("median")
        if value is not None and math.isfinite(value):
            label = METRIC_LABELS.get(name, name)
            results.append(EvalResult(**common, metric_type=name, metric_name=label, metric_value=float(value)))
    token = numbers.get("token_summary") or {}
    for name in ("bits_per_token", "perplexity"):
        if token.get(name) is not None and math.isfinite(token[name]):
            label = name.replace("_", " ")
            results.append(EvalResult(**common, metric_type=name, metric_name=label, metric_value=float(token[name])))
    return results


def model_index(report: EvaluationReport | dict, *, model_name: str | None = None) -> list[dict]:
    """The model card's `model-index` for this report (built by huggingface_hub's `ModelCardData`)."""
    from huggingface_hub import ModelCardData

    numbers = report.numbers if isinstance(report, EvaluationReport) else report
    name = model_name or Path(str(numbers.get("model", "model"))).name
    results = eval_results(numbers)
    if not results:
        return []
    return ModelCardData(model_name=name, eval_results=results).to_dict()["model-index"]


def card_metrics(report: EvaluationReport | dict) -> dict[str, str]:
    """Rows for the card's "Metrics" table: `metric (dataset, split)` -> value."""
    numbers = report.numbers if isinstance(report, EvaluationReport) else report
    return {
        f"{r.metric_name} ({Path(str(numbers.get('dataset'))).name}, {r.dataset_split})": f"{r.metric_value:.4g}"
        for r in eval_results(numbers)
    }


# ---------------------------------------------------------------------------------------------- Hub
def updated_card(report: EvaluationReport, repo_id: str, existing=None):
    """The model card with this report's results: `existing` (a `ModelCard`) with its `model-index` replaced, or a
    new card rendered from the family template with the metrics table filled in."""
    from ..hub.model_card import render_model_card, validate_card_metadata

    results = eval_results(report)
    if existing is None:
        if report.model is None or getattr(report.model, "config", None) is None:
            raise ValueError(f"{repo_id} has no model card and the report holds no model config to render one from")
        card = render_model_card(report.model.config, repo_id=repo_id, metrics=card_metrics(report))
    else:
        card = existing
        card.text = _with_metrics_table(card.text, card_metrics(report))
    card.data.model_name = card.data.model_name or repo_id
    card.data.eval_results = results or None
    validate_card_metadata(card)
    return card


def _with_metrics_table(text: str, metrics: dict[str, str]) -> str:
    """The card body with its "## Metrics" section (as the family template writes it) holding `metrics`."""
    table = "| metric | value |\n|---|---|\n" + "".join(f"| {name} | {value} |\n" for name, value in metrics.items())
    head, marker, rest = text.partition("## Metrics\n")
    if not marker:
        return text.rstrip("\n") + "\n\n## Metrics\n\n" + table
    _, next_heading, tail = rest.partition("\n## ")
    return head + marker + "\n" + table + (("\n## " + tail) if next_heading else "")


def push_report_to_hub(
    report: EvaluationReport, repo_id: str, *, private: bool | None = None, token: str | None = None
) -> str:
    """One commit to the Hub model repo `repo_id`: the card's `model-index` (and, when the repo holds no model yet,
    the model itself) plus report.md, report.json and the figures under `evaluation/`. Returns the commit url."""
    import tempfile

    from huggingface_hub import HfApi, ModelCard
    from huggingface_hub.errors import EntryNotFoundError, RepositoryNotFoundError

    from ..hub.upload import check_repo_id, upload_errors

    check_repo_id(repo_id, "--push-to-hub")
    if report.output_dir is None:
        raise ValueError("the report has no output folder to upload; save it first")
    api = HfApi(token=token)
    kept = f"the evaluation in {report.output_dir}"
    with upload_errors(f"the evaluation to the Hub model repo {repo_id}", kept):
        repo_id = api.create_repo(repo_id, private=private, exist_ok=True).repo_id
        files = set(api.list_repo_files(repo_id))
        existing = None
        if "README.md" in files:
            try:
                existing = ModelCard.load(repo_id, token=token)
            except (EntryNotFoundError, RepositoryNotFoundError):
                existing = None
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            if "config.json" not in files:  # a new repo: the evaluated model goes with its card
                if report.model is None or not hasattr(report.model, "save_pretrained"):
                    raise ValueError(f"{repo_id} holds no model and the report holds none to upload")
                report.model.save_pretrained(folder, model_card=False)
            updated_card(report, repo_id, existing).save(folder / "README.md")
            evaluation = folder / "evaluation"
            for path in sorted(Path(report.output_dir).rglob("*")):
                if path.is_file() and path.suffix in (".json", ".md", ".png", ".yaml"):
                    target = evaluation / path.relative_to(report.output_dir)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(path.read_bytes())
            commit = api.upload_folder(
                repo_id=repo_id,
                folder_path=str(folder),
                commit_message="Add evaluation results (brain-gen-hf evaluate)",
            )
    return str(commit)
