"""The pinned retrieval metrics of this study (quoted in the reports; section 3 of the SBIR reference).

Inputs are a similarity matrix ``sim`` (Q, G), higher = closer (cosine of L2-normalised embeddings),
and a boolean matrix ``relevant`` (Q, G): ``relevant[q, g]`` is True when gallery item ``g`` is a
correct answer for query ``q`` (fine-grained: the photo the sketch was drawn from; category-level: any
photo of the same class; scene-level: the paired photo). All fractions are in [0, 1], not percent.

Definitions:

* **rank** of a query = the number of gallery items whose similarity is ``>=`` that of the best
  relevant item. Ties are counted *against* the query: a relevant photo tied with two others ranks 3rd.
* **acc@K** (fine-grained) / **R@K** (scene-level) = fraction of queries with ``rank <= K``.
* **MRR** = mean over queries of ``1 / rank``.
* **AP** = non-interpolated average precision over the whole gallery, exactly as
  ``sklearn.metrics.average_precision_score(relevant[q], sim[q])``: tied scores form one threshold, so a
  group of tied items is entered all at once. **mAP@all** = mean AP over queries. With a single
  relevant item AP = 1 / rank (also under ties), so for fine-grained retrieval mAP@all = MRR.
* **mAP@200** (SAKE-style normalisation, the default ``map_norm="min"``): with the gallery ordered by
  ``(-score, gallery index)``, ``AP@k = sum_{i<=k} rel_i * P@i / min(k, #relevant)``, where ``P@i`` is the
  precision of the first ``i`` items. The other variant in the literature, ``map_norm="retrieved"``,
  divides by the number of relevant items retrieved in the top ``k`` (0 when none is), which rewards
  retrieving few relevant items early. Neither is VOC-interpolated (SAKE and ZSE-SBIR interpolate,
  which gives slightly higher numbers).
* **P@K** = relevant items among the first ``K`` of the ``(-score, gallery index)`` order, divided by
  ``K``. (Some codebases divide by ``min(K, #relevant)``, which inflates it; not done here.) P@K is NaN
  when the gallery has fewer than ``K`` items.
* Truncated metrics (AP@k, P@K) break ties deterministically by gallery index (lower index first);
  ``rank`` and full AP count ties against the query / as one threshold, as stated above.
* A query with no relevant gallery item is an error (``ValueError`` naming the query index).
* Confidence intervals: 95% percentile bootstrap over queries (``bootstrap_ci``), computed with
  ``scipy.stats.bootstrap`` when SciPy is installed (it comes with scikit-learn), else with numpy.
  ``BOOTSTRAP_BACKEND`` says which.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

try:  # SciPy is a dependency of scikit-learn, so it is normally present.
    from scipy import stats as _scipy_stats

    BOOTSTRAP_BACKEND = "scipy"
except ImportError:  # pragma: no cover - exercised only without SciPy
    _scipy_stats = None
    BOOTSTRAP_BACKEND = "numpy"

MAP_NORMS = ("min", "retrieved")
# Elements of (chunk x G) temporaries processed at once; bounds memory to a few hundred MB.
_CHUNK_ELEMENTS = 1 << 22


def _as_numpy(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):  # torch.Tensor without importing torch here
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def _check_inputs(sim: np.ndarray, relevant: np.ndarray, offset: int = 0) -> tuple[np.ndarray, np.ndarray]:
    sim = _as_numpy(sim)
    relevant = _as_numpy(relevant)
    if sim.ndim != 2 or relevant.shape != sim.shape:
        raise ValueError(f"sim and relevant must both be (Q, G); got {sim.shape} and {relevant.shape}")
    if relevant.dtype != np.bool_:
        raise ValueError(f"relevant must be a boolean matrix, got dtype {relevant.dtype}")
    if sim.shape[1] == 0:
        raise ValueError("the gallery is empty (G = 0)")
    if not np.isfinite(sim).all():
        bad = int(np.argwhere(~np.isfinite(sim))[0, 0])
        raise ValueError(f"query {bad + offset}: similarity contains NaN or inf")
    has_rel = relevant.any(axis=1)
    if not has_rel.all():
        missing = np.flatnonzero(~has_rel) + offset
        shown = ", ".join(str(i) for i in missing[:10]) + (" ..." if missing.size > 10 else "")
        raise ValueError(f"query {shown}: no relevant item in the gallery ({missing.size} such queries)")
    return sim, relevant


def rank_of_first_relevant(sim: np.ndarray, relevant: np.ndarray) -> np.ndarray:
    """Rank (1-based) of the best relevant item, ties counted against the query.

    Args:
        sim: (Q, G) similarities, higher = closer.
        relevant: (Q, G) bool.
    Returns:
        (Q,) int64: number of gallery items with similarity ``>=`` the best relevant item's.
    """
    sim, relevant = _check_inputs(sim, relevant)
    best = np.where(relevant, sim, -np.inf).max(axis=1)  # (Q,)
    return (sim >= best[:, None]).sum(axis=1).astype(np.int64)


def _chunk_metrics(
    sim: np.ndarray, relevant: np.ndarray, ks: Sequence[int], map_k: int, p_ks: Sequence[int], map_norm: str
) -> dict[str, np.ndarray]:
    q, g = sim.shape
    best = np.where(relevant, sim, -np.inf).max(axis=1)
    rank = (sim >= best[:, None]).sum(axis=1).astype(np.int64)
    out: dict[str, np.ndarray] = {"rank": rank, "rr": 1.0 / rank}
    for k in ks:
        out[f"acc@{k}"] = (rank <= k).astype(np.float64)

    # Deterministic order: descending score, lower gallery index first among ties.
    order = np.argsort(-sim, axis=1, kind="stable")  # (q, g)
    s = np.take_along_axis(sim, order, axis=1)
    rel = np.take_along_axis(relevant, order, axis=1)
    tp = np.cumsum(rel, axis=1, dtype=np.int64)  # relevant items among the first i+1
    n_rel = tp[:, -1].astype(np.float64)
    positions = np.arange(g)

    # Full AP with sklearn's tie handling: every item of a tied group gets the precision measured at the
    # group's last position. end[i] = last position of the group containing i.
    is_end = np.ones((q, g), dtype=bool)
    is_end[:, :-1] = s[:, :-1] != s[:, 1:]
    end = np.where(is_end, positions, g)
    end = np.minimum.accumulate(end[:, ::-1], axis=1)[:, ::-1]
    prec_at_end = np.take_along_axis(tp, end, axis=1) / (end + 1.0)
    out["ap"] = (prec_at_end * rel).sum(axis=1) / n_rel

    # Truncated AP in the deterministic order.
    kk = min(map_k, g)
    prec = tp[:, :kk] / (positions[:kk] + 1.0)
    hits = (prec * rel[:, :kk]).sum(axis=1)
    if map_norm == "min":
        denom = np.minimum(float(map_k), n_rel)
    else:  # "retrieved"
        denom = tp[:, kk - 1].astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        out[f"ap@{map_k}"] = np.where(denom > 0, hits / np.maximum(denom, 1.0), 0.0)

    for k in p_ks:
        out[f"p@{k}"] = tp[:, k - 1] / float(k) if k <= g else np.full(q, np.nan)
    return out


def per_query_metrics(
    sim: np.ndarray,
    relevant: np.ndarray,
    ks: Sequence[int] = (1, 5, 10),
    map_k: int = 200,
    p_ks: Sequence[int] = (100, 200),
    map_norm: str = "min",
) -> pd.DataFrame:
    """Every pinned metric for every query.

    Args:
        sim: (Q, G) similarities (numpy or torch).
        relevant: (Q, G) bool.
        ks: cut-offs of acc@K.
        map_k: truncation of AP@k.
        p_ks: cut-offs of P@K.
        map_norm: ``"min"`` (divide AP@k by min(k, #relevant), SAKE-style) or ``"retrieved"`` (by the
            relevant items found in the top k).
    Returns:
        DataFrame with one row per query (index = query index) and columns ``rank``, ``rr``,
        ``acc@K``..., ``ap``, ``ap@{map_k}``, ``p@K``...
    """
    if map_norm not in MAP_NORMS:
        raise ValueError(f"map_norm must be one of {MAP_NORMS}, got {map_norm!r}")
    for k in (*ks, map_k, *p_ks):
        if int(k) < 1:
            raise ValueError(f"cut-offs must be >= 1, got {k}")
    sim, relevant = _check_inputs(sim, relevant)
    q, g = sim.shape
    step = max(1, _CHUNK_ELEMENTS // g)
    parts = [
        _chunk_metrics(sim[i : i + step], relevant[i : i + step], ks, map_k, p_ks, map_norm)
        for i in range(0, q, step)
    ]
    cols = {name: np.concatenate([p[name] for p in parts]) for name in parts[0]} if parts else {}
    return pd.DataFrame(cols, index=pd.RangeIndex(q, name="query"))


def metric_name(column: str) -> str:
    """Reported name of a per-query column: ``rr`` -> ``mrr``, ``ap`` -> ``mAP@all``, ``ap@200`` ->
    ``mAP@200``, ``p@100`` -> ``P@100``; ``acc@K`` unchanged."""
    if column == "rr":
        return "mrr"
    if column == "ap":
        return "mAP@all"
    if column.startswith("ap@"):
        return "mAP@" + column[3:]
    if column.startswith("p@"):
        return "P@" + column[2:]
    return column


def bootstrap_ci(
    per_query: np.ndarray, n_resamples: int = 1000, seed: int = 0, alpha: float = 0.05
) -> tuple[float, float, float]:
    """Mean of ``per_query`` and its percentile-bootstrap ``1 - alpha`` interval over queries.

    NaN entries are dropped. Returns ``(mean, low, high)``; all NaN when nothing is left, and
    ``(mean, mean, mean)`` when the values are all equal (no spread to resample).
    """
    x = np.asarray(per_query, dtype=np.float64).ravel()
    x = x[~np.isnan(x)]
    if x.size == 0:
        return (float("nan"),) * 3
    mean = float(x.mean())
    if x.size < 2 or np.all(x == x[0]):
        return mean, mean, mean
    rng = np.random.default_rng(seed)
    batch = max(1, (1 << 22) // x.size)
    if _scipy_stats is not None:
        res = _scipy_stats.bootstrap(
            (x,),
            np.mean,
            n_resamples=n_resamples,
            batch=batch,
            vectorized=True,
            confidence_level=1.0 - alpha,
            method="percentile",
            rng=rng,
        )
        low, high = float(res.confidence_interval.low), float(res.confidence_interval.high)
    else:  # pragma: no cover - exercised only without SciPy
        means = np.concatenate(
            [
                x[rng.integers(0, x.size, size=(min(batch, n_resamples - i), x.size))].mean(axis=1)
                for i in range(0, n_resamples, batch)
            ]
        )
        low, high = (float(v) for v in np.quantile(means, [alpha / 2, 1 - alpha / 2]))
    return mean, low, high


def summarise(per_query: pd.DataFrame, n_resamples: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Mean and 95% bootstrap interval of each per-query metric (``rank`` itself is left out).

    Returns:
        DataFrame with columns ``metric, value, ci_low, ci_high, n`` (``n`` = queries with a value).
    """
    rows = []
    for col in per_query.columns:
        if col == "rank":
            continue
        values = per_query[col].to_numpy(dtype=np.float64)
        mean, low, high = bootstrap_ci(values, n_resamples=n_resamples, seed=seed)
        rows.append((metric_name(col), mean, low, high, int((~np.isnan(values)).sum())))
    return pd.DataFrame(rows, columns=["metric", "value", "ci_low", "ci_high", "n"])


def _normalise(x: Any) -> np.ndarray:
    x = _as_numpy(x).astype(np.float32, copy=False)
    if x.ndim != 2:
        raise ValueError(f"embeddings must be (N, D), got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError("embeddings contain NaN or inf")
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


def per_query_from_embeddings(
    query_emb: Any,
    gallery_emb: Any,
    query_labels: Any,
    gallery_labels: Any,
    chunk_size: int | None = None,
    **kw: Any,
) -> pd.DataFrame:
    """``per_query_metrics`` on cosine similarities of embeddings, relevant = equal labels.

    Args:
        query_emb: (Q, D) numpy or torch; gallery_emb: (G, D). Both are L2-normalised here.
        query_labels: (Q,), gallery_labels: (G,): ints or strings.
        chunk_size: queries per similarity block (default: about 4M similarities per block).
        **kw: passed to ``per_query_metrics`` (ks, map_k, p_ks, map_norm).
    """
    q_emb, g_emb = _normalise(query_emb), _normalise(gallery_emb)
    if q_emb.shape[1] != g_emb.shape[1]:
        raise ValueError(f"query and gallery dimensions differ: {q_emb.shape[1]} vs {g_emb.shape[1]}")
    q_lab, g_lab = _as_numpy(query_labels).ravel(), _as_numpy(gallery_labels).ravel()
    if q_lab.shape[0] != q_emb.shape[0] or g_lab.shape[0] != g_emb.shape[0]:
        raise ValueError(
            f"labels do not match embeddings: {q_lab.shape[0]} query labels for {q_emb.shape[0]} queries, "
            f"{g_lab.shape[0]} gallery labels for {g_emb.shape[0]} gallery items"
        )
    codes, _ = pd.factorize(np.concatenate([q_lab.astype(object), g_lab.astype(object)]))
    q_code, g_code = codes[: q_lab.shape[0]], codes[q_lab.shape[0] :]
    step = chunk_size or max(1, _CHUNK_ELEMENTS // max(1, g_emb.shape[0]))
    frames = []
    for i in range(0, q_emb.shape[0], step):
        sim = q_emb[i : i + step] @ g_emb.T  # (chunk, G)
        relevant = q_code[i : i + step, None] == g_code[None, :]
        try:
            frames.append(per_query_metrics(sim, relevant, **kw))
        except ValueError as exc:
            if "no relevant item" in str(exc):  # report the global query index
                _check_inputs(sim, relevant, offset=i)
            raise
    out = pd.concat(frames, ignore_index=True)
    out.index.name = "query"
    return out


def mean_metrics(per_query: pd.DataFrame) -> dict[str, float]:
    """``{reported name: mean over queries}`` of a ``per_query_metrics`` frame (every column but ``rank``)."""
    return {metric_name(c): float(per_query[c].mean()) for c in per_query.columns if c != "rank"}


def evaluate_embeddings(
    query_emb: Any, gallery_emb: Any, query_labels: Any, gallery_labels: Any, **kw: Any
) -> dict[str, float]:
    """Mean metrics of a query set against a gallery (see the module docstring for definitions).

    Args: as ``per_query_from_embeddings`` (``chunk_size``, ``ks``, ``map_k``, ``p_ks``, ``map_norm``).
    Returns:
        ``{"acc@1", "acc@5", "acc@10", "mrr", "mAP@all", "mAP@200", "P@100", "P@200", "n_queries",
        "n_gallery"}`` (names follow ``ks``/``map_k``/``p_ks`` when those are changed).
    """
    per_query = per_query_from_embeddings(query_emb, gallery_emb, query_labels, gallery_labels, **kw)
    result = mean_metrics(per_query)
    result["n_queries"] = int(len(per_query))
    result["n_gallery"] = int(_as_numpy(gallery_emb).shape[0])
    return result


def unique_gallery(
    image_paths: Sequence[str | Path], labels: Sequence[Any]
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """The fine-grained gallery: each photo once, sorted by path.

    A CSV index lists a photo once per sketch drawn from it; the gallery must hold it once.

    Returns:
        ``(unique_paths, unique_labels, index_of_each_row)`` where ``unique_paths[index_of_each_row[i]]
        == image_paths[i]``.
    Raises:
        ValueError: when one photo appears with two different labels.
    """
    paths = np.asarray([str(p) for p in image_paths], dtype=object)
    labels_arr = np.asarray(labels)
    if paths.shape[0] != labels_arr.shape[0]:
        raise ValueError(f"{paths.shape[0]} image paths but {labels_arr.shape[0]} labels")
    if paths.size == 0:
        return [], labels_arr[:0], np.zeros(0, dtype=np.int64)
    unique_paths, first, inverse = np.unique(paths.astype(str), return_index=True, return_inverse=True)
    unique_labels = labels_arr[first]
    clash = unique_labels[inverse] != labels_arr
    if clash.any():
        i = int(np.flatnonzero(clash)[0])
        raise ValueError(
            f"{paths[i]}: listed with label {labels_arr[i]!r} in row {i} and "
            f"{unique_labels[inverse[i]]!r} in row {int(first[inverse[i]])}"
        )
    return [str(p) for p in unique_paths], unique_labels, inverse.astype(np.int64)
