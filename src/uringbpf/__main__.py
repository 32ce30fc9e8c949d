"""``python -m uringbpf``: the same command as the ``uringbpf`` console script."""

import sys

from .tools import main

if __name__ == "__main__":
    sys.exit(main())
