"""Asking the job API what the webhooks did not say: silent jobs and LoRAs are looked up and
their answers enter through the intake as the webhooks Apiframe would have sent.
"""
