"""`python -m fer` is `fer` (torchrun launches the package this way)."""

import sys

from fer.cli import main

if __name__ == "__main__":
    sys.exit(main())
