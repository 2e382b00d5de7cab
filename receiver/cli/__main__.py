"""``python -m receiver.cli`` is ``framehook`` too (as it was when the CLI was one module)."""

from receiver.cli import main

main()
