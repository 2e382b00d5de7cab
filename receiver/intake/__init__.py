"""A verified webhook becomes one transaction: ledger, job and LoRA state, deliveries, tasks.

``webhook`` is the route, ``group_commit`` batches concurrent requests into one commit,
``recorder`` runs the batch through the ledger and the state machines (``job_state``,
``lora_state``) and fans accepted events out to the handlers that ``arrivals`` describes;
``files`` counts the files a finished job's result names.
"""
