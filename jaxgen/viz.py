"""Pictures a person looks at: image grids and strips (PNG), walks (GIF), metric curves (PNG)."""

from pathlib import Path

import numpy as np
from PIL import Image


def to_uint8(images: np.ndarray) -> np.ndarray:
    """Images in [-1, 1] -> uint8 in [0, 255], same shape."""
    return np.clip(np.round((np.asarray(images) + 1.0) * 127.5), 0, 255).astype(np.uint8)


def image_grid(images: np.ndarray, ncols: int | None = None, pad: int = 2) -> np.ndarray:
    """[N, H, W, C] images in [-1, 1] -> one uint8 [rows*(H+pad)+pad, ..., C] grid, row-major."""
    images = to_uint8(images)
    n, h, w, c = images.shape
    ncols = ncols or int(np.ceil(np.sqrt(n)))
    nrows = int(np.ceil(n / ncols))
    grid = np.full((nrows * (h + pad) + pad, ncols * (w + pad) + pad, c), 255, np.uint8)
    for i, image in enumerate(images):
        r, col = divmod(i, ncols)
        grid[pad + r * (h + pad):pad + r * (h + pad) + h, pad + col * (w + pad):][:, :w] = image
    return grid


def _pil(image: np.ndarray, scale: int) -> Image.Image:
    if image.shape[-1] == 1:
        image = image[..., 0]
    picture = Image.fromarray(image)
    return picture.resize((picture.width * scale, picture.height * scale), Image.NEAREST)


def save_png(grid: np.ndarray, path: str | Path, scale: int = 2) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _pil(grid, scale).save(path)
    return path


def save_gif(frames: np.ndarray, path: str | Path, ms_per_frame: int = 80, scale: int = 2) -> Path:
    """Frames [T, H, W, C] (each a uint8 grid or an image in [-1, 1]) -> looping GIF."""
    frames = np.asarray(frames)
    if frames.dtype != np.uint8:
        frames = to_uint8(frames)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pictures = [_pil(f, scale) for f in frames]
    pictures[0].save(path, save_all=True, append_images=pictures[1:], duration=ms_per_frame,
                     loop=0)
    return path


def plot_metrics(records: list[dict], path: str | Path) -> Path:
    """Loss (and every other logged metric) against step, from a run's metric records."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [k for k in records[0] if k not in ("step", "steps_per_second")]
    steps = [r["step"] for r in records]
    fig, axes = plt.subplots(1, len(keys), figsize=(3.2 * len(keys), 2.8), squeeze=False)
    for ax, key in zip(axes[0], keys, strict=True):
        ax.plot(steps, [r.get(key, np.nan) for r in records])
        ax.set_title(key)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)


def scatter_panels(panels: list[tuple[str, np.ndarray]], path: str | Path,
                   limit: float | None = None, reference: np.ndarray | None = None) -> Path:
    """Side-by-side scatter plots of 2-D points (or 3-D points, drawn in 3-D), one panel per
    (title, points [N, D]); `reference` points (e.g. the mixture's modes) are drawn in each."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    dims = panels[0][1].shape[1]
    fig = plt.figure(figsize=(3.6 * len(panels), 3.6))
    for i, (title, points) in enumerate(panels):
        if dims == 3:
            ax = fig.add_subplot(1, len(panels), i + 1, projection="3d")
            ax.scatter(*points.T, s=1, alpha=0.4, color="black")
        else:
            ax = fig.add_subplot(1, len(panels), i + 1)
            ax.scatter(*points.T, s=1, alpha=0.3, color="black")
            if reference is not None:
                ax.scatter(*reference.T, s=12, color="tab:red", marker="x")
            if limit:
                ax.set_xlim(-limit, limit)
                ax.set_ylim(-limit, limit)
            ax.set_aspect("equal")
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
