"""Per-task leaderboard tables (`affectlab leaderboard`) from a results folder or a results dataset repo.

    python scripts/leaderboard.py --results results/ --out leaderboard_out [--n-boot 1000] [--hub-url URL]

Everything lives in `affectlab.leaderboard` (its `main` parses these flags; `--help` lists them): primary
metric recomputed from the stored predictions, 95% bootstrap CI, rank among the results evaluated on the same
rows, paired-bootstrap significance of the leader's margin; writes leaderboard.csv / .md / .html.
"""

import sys

from affectlab.leaderboard import main

if __name__ == "__main__":
    from affectlab.cli import run_entry_point

    run_entry_point(lambda: main(sys.argv[1:]))
