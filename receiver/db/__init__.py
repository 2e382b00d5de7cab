"""The database: engine and transactions, the models, migrations, checkpoints and retention."""
