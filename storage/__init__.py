"""Asset storage backends, chosen by URL scheme."""

__all__: list[str] = []
