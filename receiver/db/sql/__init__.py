"""Hot-path statements run on the DBAPI cursor, one module per table family.

Why they bypass SQLAlchemy Core: ``dialect``'s docstring says.
"""
