"""Durable tasks: claimed with leases, run by workers, retried, replayed.

``tasks`` owns the ``tasks`` table (claim, lease, release), ``worker`` runs handlers on what it
claims, ``attempts`` group-commits their outcomes, ``notify`` wakes workers across processes,
``registry`` loads handlers, and ``process`` is the ``framehook worker`` command.
"""
