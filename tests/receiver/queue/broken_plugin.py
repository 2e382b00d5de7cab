"""A plugin module whose import fails (used by the registry tests)."""

import a_dependency_that_is_not_installed  # noqa: F401
