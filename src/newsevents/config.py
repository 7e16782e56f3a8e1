"""Experiment configuration: a YAML file under ``experiments/`` turned into a typed, checked object.

Example ``experiments/tfidf-logreg.yaml``::

    name: tfidf-logreg
    description: TF-IDF word n-grams + logistic regression
    default: true            # part of `make train`
    seed: 13
    data: {source: bundled, authored: true}
    features:
      - {type: tfidf_word, ngram_range: [1, 2]}
    model: {type: logreg, params: {C: 8.0}}
    evaluation: {folds: 5, repeats: 3, bootstrap: 1000}

A mistake gets a :class:`ConfigError` that names the file and the key.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from newsevents import paths

FEATURE_TYPES = ("tfidf_word", "tfidf_char", "lexicon", "embedding", "encoder")
MODEL_TYPES = ("prior", "lexicon", "logreg", "linearsvc", "complementnb", "sgd")
BUNDLED = "bundled"


class ConfigError(ValueError):
    """An experiment file that cannot be used; the message names the file and the key."""


def resolve(path: str | Path) -> Path:
    """A data path from an experiment file: as given when absolute or found from the working
    directory, else relative to the project root."""
    path = Path(path)
    return path if path.is_absolute() or path.exists() else paths.ROOT / path


@dataclass(frozen=True)
class DataConfig:
    source: str = BUNDLED  # "bundled" or a path to a labeled CSV/JSONL (see `resolve`)
    schema: str = str(paths.DEFAULT_SCHEMA.relative_to(paths.ROOT))  # the label schema YAML
    authored: bool = True  # add the authored example bank to every training fold
    # A teacher's soft labels (data/annotations/soft/*.csv.gz) added to every training fold,
    # their text re-split from ../shared/corpus (skipped, in one line, when it is absent);
    # "hard": the teacher's decisions as labels, "scores": its scores as targets; each such
    # sentence weighs soft_weight against a hand-labeled one.
    soft_labels: str = ""
    soft_targets: str = "hard"
    soft_weight: float = 1.0


@dataclass(frozen=True)
class FeatureConfig:
    type: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ModelConfig:
    type: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class EvaluationConfig:
    folds: int = 5
    repeats: int = 1
    bootstrap: int = 1000
    inner_folds: int = 2  # for choosing thresholds inside each training fold


@dataclass(frozen=True)
class ExperimentConfig:
    name: str
    model: ModelConfig
    features: tuple[FeatureConfig, ...] = ()
    description: str = ""
    default: bool = True
    seed: int = 13
    data: DataConfig = field(default_factory=DataConfig)
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)
    path: str = ""

    def flat_params(self) -> dict[str, str]:
        """The config as flat ``key.sub`` → string pairs (MLflow params)."""
        out: dict[str, str] = {}

        def walk(prefix: str, value: Any) -> None:
            if isinstance(value, dict):
                for k, v in value.items():
                    walk(f"{prefix}.{k}" if prefix else str(k), v)
            elif isinstance(value, list | tuple) and value and isinstance(value[0], dict):
                for i, v in enumerate(value):
                    walk(f"{prefix}.{i}", v)
            else:
                out[prefix] = str(value)

        walk("", {k: v for k, v in asdict(self).items() if k not in ("path", "description")})
        return out


def _check_keys(where: str, raw: dict[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r} "
                          f"(allowed: {', '.join(sorted(allowed))})")


def _mapping(where: str, value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: must be a mapping, got {type(value).__name__}")
    return value


def _int(where: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{where}: must be an integer ≥ {minimum}, got {value!r}")
    return value


def _check_encoder(where: str, params: dict[str, Any]) -> None:
    from newsevents.encoder import ENCODERS  # a table of pins: no heavy import

    _check_keys(where, params, {"model"})
    if params.get("model", "mpnet-base") not in ENCODERS:
        raise ConfigError(f"{where}.model: must be one of {', '.join(ENCODERS)}, "
                          f"got {params['model']!r}")


def _check_soft(where: str, data: DataConfig, model: Any) -> None:
    from newsevents.soft_labels import TARGETS

    if data.soft_targets not in TARGETS:
        raise ConfigError(f"{where}: key 'data.soft_targets' must be one of {', '.join(TARGETS)}, "
                          f"got {data.soft_targets!r}")
    weight = data.soft_weight
    if isinstance(weight, bool) or not isinstance(weight, int | float) or not weight > 0:
        raise ConfigError(f"{where}: key 'data.soft_weight' must be a number > 0, got {weight!r}")
    if not data.soft_labels:
        return
    if not isinstance(model, dict) or model.get("type") != "logreg":
        raise ConfigError(f"{where}: key 'data.soft_labels' needs model type 'logreg'")


def parse_config(raw: Any, source: str = "<config>") -> ExperimentConfig:
    """Check a loaded YAML mapping and build an :class:`ExperimentConfig`."""
    top = _mapping(source, raw)
    _check_keys(source, top, {"name", "description", "default", "seed", "data", "features",
                              "model", "evaluation"})
    if not isinstance(top.get("name"), str) or not top["name"].strip():
        raise ConfigError(f"{source}: key 'name' is required (a non-empty string)")

    data_raw = _mapping(f"{source}: key 'data'", top.get("data"))
    _check_keys(f"{source}: key 'data'", data_raw, {"source", "schema", "authored", "soft_labels",
                                                    "soft_targets", "soft_weight"})
    # A key left empty (`soft_labels:`) means "not set", not the file "None".
    data = DataConfig(**{k: v if k in ("authored", "soft_weight") else str(v)
                         for k, v in data_raw.items() if v is not None})
    for key in ("source", "schema", "soft_labels"):
        value = getattr(data, key)
        if not ((key == "source" and value == BUNDLED) or (key == "soft_labels" and not value)
                or resolve(value).is_file()):
            raise ConfigError(f"{source}: key 'data.{key}': file {value!r} not found (paths are "
                              "relative to the working directory or the project root)")
    _check_soft(source, data, top.get("model"))

    features = []
    feats = top.get("features") or []
    if not isinstance(feats, list):
        raise ConfigError(f"{source}: key 'features' must be a list")
    for i, item in enumerate(feats):
        item = dict(_mapping(f"{source}: key 'features[{i}]'", item))
        kind = item.pop("type", None)
        if kind not in FEATURE_TYPES:
            raise ConfigError(f"{source}: key 'features[{i}].type' must be one of "
                              f"{', '.join(FEATURE_TYPES)}, got {kind!r}")
        if kind == "encoder":
            _check_encoder(f"{source}: key 'features[{i}]'", item)
        features.append(FeatureConfig(kind, item))

    model_raw = dict(_mapping(f"{source}: key 'model'", top.get("model")))
    _check_keys(f"{source}: key 'model'", model_raw, {"type", "params"})
    if model_raw.get("type") not in MODEL_TYPES:
        raise ConfigError(f"{source}: key 'model.type' must be one of {', '.join(MODEL_TYPES)}, "
                          f"got {model_raw.get('type')!r}")
    model = ModelConfig(model_raw["type"], _mapping(f"{source}: key 'model.params'",
                                                    model_raw.get("params")))
    if model.type not in ("prior", "lexicon") and not features:
        raise ConfigError(f"{source}: key 'features' must list at least one feature "
                          f"for model type {model.type!r}")

    eval_raw = _mapping(f"{source}: key 'evaluation'", top.get("evaluation"))
    _check_keys(f"{source}: key 'evaluation'", eval_raw, {"folds", "repeats", "bootstrap",
                                                          "inner_folds"})
    evaluation = EvaluationConfig(**{
        k: _int(f"{source}: key 'evaluation.{k}'", v, 0 if k == "bootstrap" else 2 if "folds" in k
                else 1) for k, v in eval_raw.items()})

    return ExperimentConfig(
        name=top["name"].strip(), model=model, features=tuple(features),
        description=str(top.get("description", "")), default=bool(top.get("default", True)),
        seed=_int(f"{source}: key 'seed'", top.get("seed", 13), 0), data=data,
        evaluation=evaluation, path=source,
    )


def load_config(path: str | Path) -> ExperimentConfig:
    """Read one experiment YAML file."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from None
    except (UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: not valid UTF-8 YAML ({str(exc).splitlines()[0]})") from None
    return parse_config(raw, str(path))


def default_configs(directory: Path = paths.EXPERIMENTS) -> list[ExperimentConfig]:
    """Every experiment under ``directory`` marked ``default: true``, in file-name order."""
    configs = [load_config(p) for p in sorted(directory.glob("*.yaml"))]
    return [c for c in configs if c.default]
