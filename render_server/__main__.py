"""``python -m render_server ...`` — the same as ``vqedit serve ...`` (used by tests and farm wrappers)."""

from __future__ import annotations

import sys

from vq_models.cli import main

if __name__ == "__main__":
    sys.exit(main(["serve", *sys.argv[1:]]))
