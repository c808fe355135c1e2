"""The GPU benchmark's data (``bench_gpu``): a synthetic FS-COCO layout of real-sized files, made with several
processes, and the index of a data folder as ``sbir train --data_root`` makes it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench_measure import Clock

USERS = 100  # FS-COCO's users; the seed's Dataset lists images/1 .. images/100


def _write_pair(job: tuple[Path, int, int, int, str]) -> tuple[int, int]:
    """One synthetic pair: a 640x480 RGB photo (a smooth random colour field, random ellipses and boxes,
    +-20 grey levels of noise; JPEG quality 90) and a 512x512 sketch (25-60 random-walk strokes, dark on
    white; PNG, or JPEG with ``fmt='jpeg'``). Returns the two file sizes in bytes."""
    import numpy as np
    from PIL import Image, ImageDraw

    root, user, pid, seed, fmt = job
    rng = np.random.default_rng([seed, user, pid])
    w, h, s = 640, 480, 512
    photo = Image.fromarray(rng.integers(0, 256, (4, 5, 3), dtype=np.uint8)).resize((w, h), Image.Resampling.BICUBIC)
    draw = ImageDraw.Draw(photo)
    for _ in range(int(rng.integers(8, 20))):
        x0, y0 = int(rng.integers(0, w)), int(rng.integers(0, h))
        box = [x0, y0, x0 + int(rng.integers(20, 250)), y0 + int(rng.integers(20, 200))]
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)(box, fill=tuple(int(v) for v in rng.integers(0, 256, 3)))
    noisy = np.asarray(photo, dtype=np.int16) + rng.integers(-20, 21, (h, w, 3), dtype=np.int16)
    sketch = Image.new("L", (s, s), 255)
    draw = ImageDraw.Draw(sketch)
    for _ in range(int(rng.integers(25, 60))):
        pts = np.cumsum(rng.normal(0, s / 28, (int(rng.integers(4, 16)), 2)), 0) + rng.integers(s // 16, s - s // 16, 2)
        draw.line([tuple(p) for p in np.clip(pts, 0, s - 1)], fill=int(rng.integers(0, 60)), width=int(rng.integers(2, 4)))
    name = f"{pid:012d}.jpg"
    p_path, s_path = root / "images" / str(user) / name, root / "raster_sketches" / str(user) / name
    Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8)).save(p_path, "JPEG", quality=90)
    sketch.save(s_path, "PNG" if fmt == "png" else "JPEG", **({} if fmt == "png" else {"quality": 90}))
    return p_path.stat().st_size, s_path.stat().st_size


def generate(root: Path, pairs: int, seed: int, fmt: str, procs: int) -> dict[str, Any]:
    """A raw FS-COCO layout in ``root``: ``pairs`` pairs spread over users 1..100 (every user folder exists),
    numeric ids, ``val_normal.txt`` listing every tenth id (the test split of ``--split normal``)."""
    import multiprocessing

    jobs = [(root, k % USERS + 1, (k % USERS + 1) * 100_000 + k // USERS, seed, fmt) for k in range(pairs)]
    for sub in ("images", "raster_sketches"):
        for user in range(1, USERS + 1):
            (root / sub / str(user)).mkdir(parents=True, exist_ok=True)
    with Clock() as c, multiprocessing.get_context("fork").Pool(procs) as pool:
        sizes = pool.map(_write_pair, jobs, chunksize=max(1, pairs // (4 * procs)))
    (root / "val_normal.txt").write_text("".join(f"{j[2]:012d}\n" for j in jobs[::10]))
    kb = [sum(s[i] for s in sizes) / len(sizes) / 1024 for i in (0, 1)]
    return {"source": "synthetic", "root": str(root), "pairs": pairs, "users": USERS, "processes": procs,
            "generate_s": c.seconds, "photo_kb": kb[0], "sketch_kb": kb[1], "sketch_format": fmt,
            "what": ("synthetic FS-COCO layout: photos 640x480 JPEG (q90, smooth random colours, shapes, noise), "
                     f"sketches 512x512 {fmt.upper()} (random-walk strokes) under .jpg names, "
                     "val_normal.txt = every tenth id")}


def data_spec(root: Path) -> tuple[Any, bool, str]:
    """``(DatasetSpec, raw FS-COCO layout?, what was done)`` for ``root``: an index folder as it is, a raw
    layout indexed by ``formats.auto`` (split normal), as ``sbir train --data_root`` does."""
    from sbir_utils.data.formats import auto
    from sbir_utils.data.index import load_spec

    if (root / "index_train.csv").is_file():
        return load_spec(root), False, f"{root}: an index folder"
    home, line = auto.ensure_index(root, "normal")
    layout = auto.detect(root)
    return load_spec(home), bool(layout and layout.format == "fscoco"), line
