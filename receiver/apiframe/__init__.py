"""What Apiframe sends and serves: signatures, webhook bodies, LoRA recognition, the job API.

Pure: nothing here touches the database, so every rule can be tested on bytes alone.
"""
