"""Build a registered dataset and write it as Parquet + dataset card (optionally push it to the Hub).

    python scripts/build_dataset.py goemotions --output_dir outputs/datasets/goemotions
    python scripts/build_dataset.py semeval2018_ec --config original --push_to_hub me/semeval-ec

Same as `affectlab build-dataset` (`affectlab.data.build_dataset_main`).
"""

from affectlab.data import build_dataset_main as main

if __name__ == "__main__":
    from affectlab.cli import run_entry_point

    run_entry_point(main)
