"""The Grain pipeline: shuffle from (seed, epoch), batch, and give each process its own slice.

The global batch at step s holds shuffled examples [s*B, (s+1)*B). Process p of P reads only
its contiguous block of B/P of them, so concatenating the processes' blocks in process order
rebuilds exactly the batch a single process would have read, and a run on many hosts sees the
same data as a run on one.
"""

import dataclasses

import grain
import jax

from jaxgen.data import captions, sources


def train_iterator(
    name: str,
    global_batch_size: int,
    *,
    seed: int,
    data_dir: str | None = None,
    download: bool = False,
    process_index: int | None = None,
    process_count: int | None = None,
    num_threads: int = 2,
    prefetch: int = 4,
    text_length: int = 0,
    train_examples: int = 0,
) -> tuple[sources.DatasetInfo, grain.DatasetIterator]:
    """An endless, checkpointable iterator of this process's share of each global batch.

    Yields dicts of numpy arrays `image` [B/P, ...] and `label` [B/P]. Each epoch is a fresh
    permutation drawn from (seed, epoch). `get_state`/`set_state` (or Grain's Orbax handler)
    save and restore the position. `text_length` > 0 adds each example's caption as `text`
    [B/P, text_length] int32 byte tokens (see `captions.load`). `train_examples` > 0 keeps
    only the split's first `train_examples` examples (limited-data studies; mnist5k's order is
    a fixed shuffle, so they are a random draw of its classes).
    """
    process_index = jax.process_index() if process_index is None else process_index
    process_count = jax.process_count() if process_count is None else process_count
    if global_batch_size % process_count:
        raise ValueError(
            f"batch size {global_batch_size} is not divisible by the {process_count} processes."
        )
    if text_length:
        info, source, transform = captions.load(name, "train", seed=seed, data_dir=data_dir,
                                                download=download, text_length=text_length)
    else:
        info, source, transform = sources.load(name, "train", seed=seed, data_dir=data_dir,
                                               download=download)
    if train_examples:
        if not 0 < train_examples <= info.size:
            raise ValueError(f"data.train_examples must be in [1, {info.size}] for {name}, got "
                             f"{train_examples}")
        source = _Head(source, train_examples)
        info = dataclasses.replace(info, size=train_examples)
    if info.size < global_batch_size:
        raise ValueError(f"{name} has {info.size} training examples, fewer than one batch.")
    dataset = grain.MapDataset.source(source)
    if transform is not None:
        dataset = dataset.map(transform)
    local_batches = (
        dataset.shuffle(seed=seed)
        .repeat(None)
        .batch(global_batch_size // process_count, drop_remainder=True)
    )
    # Local batch k*P + p is process p's block of global batch k (read lazily, only by p).
    mine = local_batches[process_index::process_count]
    options = grain.ReadOptions(num_threads=num_threads, prefetch_buffer_size=prefetch)
    return info, iter(mine.to_iter_dataset(options))


class _Head:
    """The first `size` examples of a random-access source."""

    def __init__(self, source, size: int):
        self.source, self.size = source, size

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int):
        if not 0 <= index < self.size:
            raise IndexError(index)
        return self.source[index]
