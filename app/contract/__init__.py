"""What clients and every process of Inbound agree on: topic names, the collection rule,
record headers, error codes and stages, the timestamp format (docs/design.md).

Everything here is pure and imports nothing from the rest of ``app``: the gateway, the worker,
the API and the webhook dispatcher import these names instead of spelling them again.
"""
