"""Local, stateful simulators of EspoCRM and Advoware (never imported by services/ or steps/).

Start both with ``python -m sandbox``; see sandbox/README.md.
"""
