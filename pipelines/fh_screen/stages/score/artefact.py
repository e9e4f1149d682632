"""A model is a folder: ``model.skops``, ``metadata.json`` and ``MODEL_CARD.md``.

Two hashes, for two jobs:
- ``model_hash``: sha256 of the fitted estimator's pickle serialisation at training
  time. It depends only on what was learnt, so training twice with the same data and
  seed gives the same value (skops archives name members by object id, so their bytes
  differ between identical fits and cannot serve).
- ``file_sha256``: sha256 of ``model.skops`` as stored; checked on every load.
Loading uses skops and trusts only scikit-learn, NumPy and this package's own types.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import platform
from pathlib import Path

import numpy as np
import polars as pl
import sklearn
import skops

from fh_screen.store import files
from fh_screen.errors import UserError
from fh_screen.stages.score import spec

MODEL_FILE = "model.skops"
METADATA_FILE = "metadata.json"
TRUSTED_PREFIXES = ("sklearn.", "numpy.", "fh_screen.stages.score.model.")
# Models shipped with the package: bundled/models is the repository's models/ folder (linked in
# the source tree, copied into a wheel), so the default model works from any installation.
BUNDLED = Path(__file__).resolve().parents[2] / "bundled"


def model_hash(estimator) -> str:
    return hashlib.sha256(pickle.dumps(estimator, protocol=5)).hexdigest()


def data_fingerprint(X: np.ndarray, s: np.ndarray) -> str:
    """Identifies the training data by content (no identifiers are hashed in)."""
    digest = hashlib.sha256()
    digest.update(np.ascontiguousarray(X, dtype=np.float64).tobytes())
    digest.update(np.ascontiguousarray(s, dtype=np.int8).tobytes())
    return digest.hexdigest()


def library_versions() -> dict[str, str]:
    return {
        "python": platform.python_version(),
        "scikit-learn": sklearn.__version__,
        "numpy": np.__version__,
        "polars": pl.__version__,
        "skops": skops.__version__,
    }


def resolve(folder: str | Path) -> Path:
    """An artefact path as configured: absolute, relative to the working folder, or one that
    ships with the package (``models/fh_gbm`` = the repository's ``models/fh_gbm``)."""
    path = Path(folder)
    if path.is_absolute() or path.exists():
        return path
    return BUNDLED / path


def save(folder: Path, estimator, metadata: dict) -> dict:
    import skops.io as sio   # see load

    files.ensure_dir(folder)
    blob = sio.dumps(estimator)
    files.write_bytes(folder / MODEL_FILE, blob)
    meta = dict(metadata)
    meta["model_hash"] = model_hash(estimator)
    meta["file_sha256"] = hashlib.sha256(blob).hexdigest()
    meta["libraries"] = library_versions()
    files.write_text(folder / METADATA_FILE, json.dumps(meta, indent=2, sort_keys=True))
    return meta


def load(folder: str | Path):
    """(estimator, metadata); refuses a tampered file, foreign types or another feature schema.

    skops.io is imported here, not with the module: importing it indexes every loaded module
    (about 2 CPU s, more in an Airflow process), and every Airflow task and DAG parse imports
    the steps, while only scoring and training read or write a model file."""
    import skops.io as sio
    folder = resolve(folder)
    meta_path, model_path = folder / METADATA_FILE, folder / MODEL_FILE
    if not (meta_path.exists() and model_path.exists()):
        raise UserError(f"no model artefact in {folder} (train one with 'fhscreen train')")
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    blob = model_path.read_bytes()
    if hashlib.sha256(blob).hexdigest() != meta.get("file_sha256"):
        raise UserError(f"model file in {folder} does not match its recorded hash; refusing to load it")
    untrusted = sio.get_untrusted_types(data=blob)
    foreign = [t for t in untrusted if not t.startswith(TRUSTED_PREFIXES)]
    if foreign:
        raise UserError(f"model file in {folder} contains types fh-screen does not trust: {', '.join(foreign)}")
    if meta.get("role") != "comparison":  # a comparison model reads its own columns (checked when scoring)
        spec.check(meta["feature_schema"], spec.names())
    return sio.loads(blob, trusted=untrusted), meta
