"""EspoCRM as a node of the flow picture (a noop step: no code runs here).

Its virtual emits draw the three webhooks it sends; the webhook steps subscribe to them virtually.
"""

config = {
    "type": "noop",
    "name": "EspoCRM",
    "description": "The firm's CRM. Sends a signed webhook whenever a party (CBeteiligte) is created, changed or deleted",
    "virtualEmits": [
        {"topic": "espocrm.cbeteiligte.create", "label": "party created"},
        {"topic": "espocrm.cbeteiligte.update", "label": "party changed"},
        {"topic": "espocrm.cbeteiligte.delete", "label": "party deleted"},
    ],
    "virtualSubscribes": [],
    "flows": ["vmh"],
}
