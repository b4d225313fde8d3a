"""``apply``: executing an execution plan — the streaming data path, writer, throttle, run loop.

Holds no logic itself; the modules beside it do the work (``readers`` reads rows, ``rows``
validates and maps them, ``chunker`` packs write bodies, ``rejects`` applies the bad-row policy).
"""
