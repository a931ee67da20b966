"""``python -m torch_sdaa.build [--verbose]``: build the emulated card for this torch now (make setup-emulator)."""

import argparse
import sys

from torch_sdaa._build import BuildError, cache_dir, load


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m torch_sdaa.build", description=__doc__)
    parser.add_argument("--verbose", action="store_true", help="show the compiler's output")
    args = parser.parse_args()
    try:
        load(verbose=args.verbose)
    except BuildError as e:
        print(f"torch_sdaa.build: error: {e}", file=sys.stderr)
        return 2
    print(f"torch_sdaa (emulated): card built in {cache_dir()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
