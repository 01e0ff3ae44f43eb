"""Advoware as a node of the flow picture (a noop step: no code runs here).

The sync step's virtual emit draws the writes it makes through Advoware's REST API.
"""

config = {
    "type": "noop",
    "name": "Advoware",
    "description": "The firm's law-office software (REST API): the sync reads and writes its Beteiligte there",
    "virtualEmits": [],
    "virtualSubscribes": ["advoware.beteiligte.write"],
    "flows": ["vmh"],
}
