"""Leak-free splits of contract records.

`make_splits` / `split_indices`: `random` (grouped by `text_id`), `lolo` (leave one language out) and
`lopo` (leave one persona out); the held-out language / persona never appears in train or validation.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

SPLIT_STRATEGIES = ("random", "lolo", "lopo")
SPLIT_NAMES = ("train", "validation", "test")


def split_indices(text_ids: Sequence[str], langs: Sequence[str], persona_ids: Sequence[str], strategy: str,
                  held_out: str | None = None, validation_fraction: float = 0.1, test_fraction: float = 0.1,
                  seed: int = 1337) -> dict[str, np.ndarray]:
    """Row indices of train / validation / test.

    - `random`: texts (`text_id` groups) are shuffled and cut into test / validation / train, so all
      ratings of one text land in the same split.
    - `lolo`: test = every row in language `held_out`; validation = a `validation_fraction` of the
      remaining texts; train = the rest.
    - `lopo`: test = every row of persona `held_out`; validation / train as for `lolo`. Texts that also
      appear in the test split (rated by the held-out persona) stay out of validation and train only
      under other personas, which is the point of the protocol: the persona is unseen, not the text.
    """
    if strategy not in SPLIT_STRATEGIES:
        raise ValueError(f"unknown split strategy {strategy!r}; choose one of {SPLIT_STRATEGIES}")
    n = len(text_ids)
    if not (len(langs) == len(persona_ids) == n):
        raise ValueError("text_ids, langs and persona_ids must have the same length")
    rng = np.random.default_rng(seed)
    text_ids = np.asarray(text_ids, dtype=object)
    all_rows = np.arange(n)
    if strategy == "random":
        test_mask = np.zeros(n, dtype=bool)
        pool = all_rows
        frac_test = test_fraction
    else:
        column = np.asarray(langs if strategy == "lolo" else persona_ids, dtype=object)
        values = sorted(set(column.tolist()))
        if held_out is None:
            raise ValueError(f"{strategy} needs held_out (one of {values})")
        if held_out not in values:
            raise ValueError(f"held_out={held_out!r} does not occur; values are {values}")
        test_mask = column == held_out
        pool = all_rows[~test_mask]
        frac_test = 0.0
    groups = sorted(set(text_ids[pool].tolist()))
    order = rng.permutation(len(groups))
    n_test = int(round(frac_test * len(groups)))
    n_val = max(1, int(round(validation_fraction * len(groups)))) if validation_fraction > 0 else 0
    if n_test + n_val >= len(groups):
        raise ValueError(f"too few texts ({len(groups)}) for the requested validation/test fractions")
    test_groups = {groups[i] for i in order[:n_test]}
    val_groups = {groups[i] for i in order[n_test:n_test + n_val]}
    in_pool = np.zeros(n, dtype=bool)
    in_pool[pool] = True
    pool_groups = text_ids
    is_test_group = np.array([g in test_groups for g in pool_groups])
    is_val_group = np.array([g in val_groups for g in pool_groups])
    test = all_rows[test_mask | (in_pool & is_test_group)]
    validation = all_rows[in_pool & is_val_group]
    train = all_rows[in_pool & ~is_val_group & ~is_test_group]
    return {"train": train, "validation": validation, "test": test}


def make_splits(dataset, strategy: str, held_out: str | None = None, validation_fraction: float = 0.1,
                test_fraction: float = 0.1, seed: int = 1337):
    """`DatasetDict(train, validation, test)` of a Dataset of contract records (see `split_indices`)."""
    import datasets

    text_ids = dataset["text_id"] if "text_id" in dataset.column_names else dataset["text"]
    idx = split_indices(text_ids, dataset["lang"], dataset["persona_id"], strategy, held_out,
                        validation_fraction, test_fraction, seed)
    return datasets.DatasetDict({name: dataset.select(rows.tolist()) for name, rows in idx.items() if len(rows)})
