"""``apply``: executing an execution plan — the streaming data path, writer, throttle, run loop.

Holds no logic itself; the modules beside it do the work (``sources`` reads rows, ``rows``
validates and maps them, ``chunker`` packs write bodies, ``rejects`` applies the bad-row policy).
"""
