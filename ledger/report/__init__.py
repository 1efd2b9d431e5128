"""`trialctl report`: one self-contained trial report, in HTML or PDF, from one gathering.

`data` gathers plain values from the read models (or a replay for `--as-of`), `plots` draws
each figure from plain values, `html` and `pdf` lay them out; nothing reads the clock, so the
same ledger gives the same bytes.
"""
