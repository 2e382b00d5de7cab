"""``python -m receiver`` is ``framehook``."""

from receiver.cli import main

main()
