"""Large photo collections: encode the gallery in shards on disk, then build a search index from them.

A million photos do not fit one ``engine.encode`` call's memory, take hours on a CPU and must survive an
interruption. :func:`encode_shards` writes ``shard_NNNNN.npy`` (float32, L2-normalised rows) with a
``shard_NNNNN.json`` beside each, written after it; a shard whose ``.json`` exists is done and skipped,
so a killed run continues where it stopped. With ``world_size > 1`` (e.g. under ``torchrun``) rank ``r``
encodes shards ``r, r + world_size, ...``; ranks share nothing but the folder. ``manifest.json`` holds
the key (checkpoint, file list, preprocessing) that every shard belongs to: encoding into a folder made
for another key is refused rather than mixing embeddings of two models.

:func:`build_index_from_shards` adds the shards to an index one at a time (``retrieval.build_index``'s
kinds; IVF is trained on a seeded sample of rows first), so only the index itself must fit in memory.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .fileio import atomic_write, atomic_write_text
from .retrieval import INDEX_KINDS, ExactIndex, FaissIndex, empty_faiss_index, file_fingerprint

MANIFEST = "manifest.json"


def _shard_name(j: int) -> str:
    return f"shard_{j:05d}"


def shard_key(checkpoint: str | Path, paths: Sequence[str], image_size: int, **extra: Any) -> dict[str, Any]:
    """What a set of shards depends on: the checkpoint's content, the file list, the input size."""
    listing = hashlib.sha256("\n".join(map(str, paths)).encode("utf-8")).hexdigest()
    return {"checkpoint": file_fingerprint(checkpoint), "paths_sha256": listing, "n": len(paths),
            "image_size": int(image_size), **extra}


def encode_shards(model: nn.Module, paths: Sequence[str], out_dir: str | Path, key: dict[str, Any], *,
                  kind: str = "photo", image_size: int, shard_size: int = 50_000, batch_size: int = 64,
                  device: str | torch.device = "cpu", num_workers: int = 0, photo_mode: str = "rgb",
                  crop: bool = False, rank: int = 0, world_size: int = 1) -> dict[str, Any]:
    """Embed ``paths`` into shards of ``shard_size`` rows under ``out_dir``; returns the manifest.

    ``key`` (e.g. from :func:`shard_key`) must match an existing manifest. Rows are in ``paths`` order
    (``paths.txt`` lists them); each shard is (rows, D) float32 with unit rows.
    """
    from .engine import encode

    if shard_size < 1:
        raise ValueError(f"shard_size must be >= 1, got {shard_size}")
    if not paths:
        raise ValueError("no images to encode")
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} is not in [0, {world_size})")
    out = Path(out_dir)
    n_shards = -(-len(paths) // shard_size)
    manifest = {"key": key, "kind": kind, "n": len(paths), "shard_size": int(shard_size), "n_shards": n_shards,
                "shards": [_shard_name(j) + ".npy" for j in range(n_shards)]}
    mpath = out / MANIFEST
    if mpath.exists():
        old = json.loads(mpath.read_text(encoding="utf-8"))
        if old.get("key") != key or old.get("shard_size") != shard_size or old.get("kind") != kind:
            raise ValueError(f"{mpath}: the shards there belong to another checkpoint, file list or shard size; "
                             "use another --out folder (or delete this one) to encode these")
    else:  # every rank may write it: same content, atomic rename
        atomic_write_text(out / "paths.txt", "\n".join(map(str, paths)) + "\n")
        atomic_write_text(mpath, json.dumps(manifest, indent=1, default=str) + "\n")
    for j in range(rank, n_shards, world_size):
        done = out / (_shard_name(j) + ".json")
        if done.exists():
            continue
        chunk = list(paths[j * shard_size:(j + 1) * shard_size])
        emb, _ = encode(model, chunk, kind, image_size, batch_size, device, num_workers=num_workers,
                        photo_mode=photo_mode, crop=crop)
        arr = F.normalize(emb.float(), dim=1).numpy().astype(np.float32)
        shard = out / (_shard_name(j) + ".npy")
        atomic_write(shard, lambda p, a=arr: _save_npy(p, a))
        atomic_write_text(done, json.dumps({"rows": [j * shard_size, j * shard_size + len(chunk)],
                                            "dim": int(arr.shape[1]), "sha256": file_fingerprint(shard)}) + "\n")
    return manifest


def _save_npy(path: Path, arr: np.ndarray) -> None:
    with open(path, "wb") as fh:  # a file object: np.save would append ".npy" to the temporary name
        np.save(fh, arr, allow_pickle=False)


def missing_shards(out_dir: str | Path) -> list[str]:
    """Shards of the manifest in ``out_dir`` not finished yet (their ``.json`` is absent)."""
    out = Path(out_dir)
    manifest = read_manifest(out)
    return [s for s in manifest["shards"] if not (out / s).with_suffix(".json").exists()]


def read_manifest(out_dir: str | Path) -> dict[str, Any]:
    path = Path(out_dir) / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no shard manifest (encode the gallery with encode_shards / sbir embed)")
    return json.loads(path.read_text(encoding="utf-8"))


def iter_shards(out_dir: str | Path, verify: bool = False) -> Iterator[tuple[int, np.ndarray]]:
    """``(first row, (rows, D) float32 memory-mapped array)`` for every shard, in order.

    Raises if a shard is missing or does not match its ``.json`` (rows, dimension; with ``verify`` the
    checksum too), naming the file."""
    out = Path(out_dir)
    manifest = read_manifest(out)
    missing = missing_shards(out)
    if missing:
        raise FileNotFoundError(f"{out}: {len(missing)} of {manifest['n_shards']} shards not encoded yet "
                                f"(first: {missing[0]}); run the encoding again to finish them")
    for name in manifest["shards"]:
        path = out / name
        info = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
        if verify and file_fingerprint(path) != info["sha256"]:
            raise ValueError(f"{path}: checksum differs from {path.with_suffix('.json').name} (a changed or "
                             "damaged shard); delete both files and encode again")
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
        start, stop = info["rows"]
        if arr.shape != (stop - start, info["dim"]):
            raise ValueError(f"{path}: shape {arr.shape}, expected {(stop - start, info['dim'])}")
        yield start, arr


def build_index_from_shards(out_dir: str | Path, kind: str = "hnsw", train_rows: int = 100_000, seed: int = 0,
                            **params: Any) -> ExactIndex | FaissIndex:
    """A search index over all shards of ``out_dir`` (rows in ``paths.txt`` order), added shard by shard.

    ``kind`` and ``params`` as in ``retrieval.build_index``; for ``ivf`` the coarse quantiser is trained
    on ``train_rows`` rows drawn with ``seed`` across the shards."""
    if kind not in INDEX_KINDS:
        raise ValueError(f"kind must be one of {INDEX_KINDS}, got {kind!r}")
    if kind == "exact":
        return ExactIndex(torch.from_numpy(np.concatenate([a for _, a in iter_shards(out_dir)])), **params)
    manifest = read_manifest(out_dir)
    n = int(manifest["n"])
    d = int(next(iter_shards(out_dir))[1].shape[1])
    index = empty_faiss_index(kind, n=n, d=d, **params)
    if not index.is_trained:  # ivf: the coarse quantiser, from a seeded sample of rows across the shards
        take = np.sort(np.random.default_rng(seed).choice(n, size=min(n, train_rows), replace=False))
        sample = [a[take[(take >= s) & (take < s + len(a))] - s] for s, a in iter_shards(out_dir)]
        index.train(np.ascontiguousarray(np.concatenate(sample), dtype=np.float32))
    for _, arr in iter_shards(out_dir):
        index.add(np.ascontiguousarray(arr, dtype=np.float32))
    return FaissIndex(index)


# ---- sbir embed -----------------------------------------------------------------------------------------

def add_arguments(parser: Any) -> None:
    parser.description = ("Encode a photo collection in shards with a trained model (resumable; under torchrun "
                          "each rank takes every WORLD_SIZE-th shard), optionally build a search index from the "
                          "shards and answer sketch queries.")
    parser.add_argument("--ckpt", required=True, help="engine checkpoint (e.g. runs/.../checkpoints/best.pt)")
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--photos", metavar="DIR", help="every image file under DIR (sorted, recursive); only the photos "
                     "when DIR is a raw FS-COCO / Sketchy / TU-Berlin / QMUL / paired-folders dataset")
    src.add_argument("--list", metavar="FILE", help="a text file with one image path per line")
    parser.add_argument("--out", required=True, metavar="DIR", help="folder of the shards and the index")
    parser.add_argument("--shard_size", type=int, default=50_000, help="photos per shard file (default 50000)")
    parser.add_argument("--batch_size", type=int, default=64, help="images per forward pass (default 64)")
    parser.add_argument("--num_workers", type=int, default=0, help="data-loader worker processes (default 0)")
    parser.add_argument("--index", choices=INDEX_KINDS, default=None,
                        help="build this index from the shards when all are done (faiss kinds saved as index_KIND.faiss)")
    parser.add_argument("--query", nargs="*", default=[], metavar="SKETCH", help="sketch files to search for")
    parser.add_argument("--k", type=int, default=10, help="results per query")
    parser.add_argument("--no_cuda", action="store_true", help="encode on the CPU even when a GPU is present")


def _collect(args: Any) -> list[str]:
    """The image files to encode: ``--list``'s lines, every image under ``--photos``, or only the photos when
    ``--photos`` is a raw dataset in an official layout (``data.formats.auto``)."""
    if args.photos:
        from .data.formats.auto import layout_photos
        from .data.formats.common import list_images

        found = layout_photos(args.photos)
        if found is not None:
            print(f"sbir embed: {found[1]}", file=sys.stderr, flush=True)
        return [str(p) for p in (found[0] if found is not None else list_images(Path(args.photos)))]
    lines = Path(args.list).read_text(encoding="utf-8").splitlines()
    return [ln.strip() for ln in lines if ln.strip()]


def run(args: Any) -> int:
    import os

    from .cli import error
    from .engine import encode, load_model, resolve_device

    try:
        device = resolve_device(no_cuda=args.no_cuda)
        if device.type == "cuda" and "LOCAL_RANK" in os.environ:  # torchrun: one GPU per process
            device = torch.device("cuda", int(os.environ["LOCAL_RANK"]))
        model, cfg, _ = load_model(args.ckpt, device=device)
        paths = _collect(args)
        if not paths:
            raise ValueError(f"{args.photos or args.list}: no image files")
        rank, world = int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))
        key = shard_key(args.ckpt, paths, cfg.image_size, photo_mode=cfg.photo_mode,
                        **({"crop": True} if cfg.crop else {}))  # old shard folders keep their key
        manifest = encode_shards(model, paths, args.out, key, image_size=cfg.image_size, shard_size=args.shard_size,
                                 batch_size=args.batch_size, device=device, num_workers=args.num_workers,
                                 photo_mode=cfg.photo_mode, crop=cfg.crop, rank=rank, world_size=world)
        left = missing_shards(args.out)
        print(f"{args.out}: {manifest['n_shards'] - len(left)} of {manifest['n_shards']} shards encoded "
              f"({manifest['n']} images)")
        if rank != 0 or left or not (args.index or args.query):
            return 0
        index = build_index_from_shards(args.out, args.index or "exact")
        if isinstance(index, FaissIndex):
            import faiss

            faiss.write_index(index.index, str(Path(args.out) / f"index_{args.index}.faiss"))
        if args.query:
            q, _ = encode(model, list(args.query), "sketch", cfg.image_size, args.batch_size, device, crop=cfg.crop)
            scores, idx = index.search(q, min(args.k, len(paths)))
            for sketch, row_s, row_i in zip(args.query, scores.tolist(), idx.tolist()):
                print(sketch)
                for rank_, (s, i) in enumerate(zip(row_s, row_i), 1):
                    print(f"  {rank_:>3}  {s:.4f}  {paths[i] if i >= 0 else '-'}")
        return 0
    except (OSError, ValueError) as exc:
        return error("embed", exc)
