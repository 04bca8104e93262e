"""Build a registered dataset and write it as Parquet + dataset card (optionally push it to the Hub).

    python scripts/build_dataset.py goemotions --output_dir outputs/datasets/goemotions
    python scripts/build_dataset.py semeval2018_ec --config original --push_to_hub me/semeval-ec
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main(argv=None) -> None:
    from dataset_builders import REGISTRY, build_dataset, export_dataset, get_spec

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("name", choices=sorted(REGISTRY))
    parser.add_argument("--data_dir", default=None, help="local folder in the original layout (default: $AFFECTLAB_DATA/<name>)")
    parser.add_argument("--config", default=None)
    parser.add_argument("--output_dir", default=None)
    parser.add_argument("--push_to_hub", default=None, metavar="REPO_ID")
    args = parser.parse_args(argv)

    spec = get_spec(args.name)
    dsd = build_dataset(args.name, data_dir=args.data_dir, config=args.config)
    print(dsd)
    out = Path(args.output_dir or f"outputs/datasets/{args.name}")
    export_dataset(dsd, out, spec.card(), config_name=args.config or spec.config or "default", pretty_name=spec.description)
    print(f"wrote {out}")
    if args.push_to_hub:
        from huggingface_hub import HfApi

        api = HfApi()
        api.create_repo(args.push_to_hub, repo_type="dataset", exist_ok=True)
        info = api.upload_folder(folder_path=str(out), repo_id=args.push_to_hub, repo_type="dataset",
                                 commit_message=f"affectlab: build {args.name}")
        print(f"pushed {args.push_to_hub} at {info.oid}")


if __name__ == "__main__":
    main()
