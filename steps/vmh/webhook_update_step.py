"""EspoCRM webhook CBeteiligte.update: verify the signature, emit one event with the batch's record ids."""

from services.intake.handler import handle_webhook

config = {
    "type": "api",
    "name": "EspoWebhookUpdate",
    "description": "Checks the signature of EspoCRM's webhook (party changed) and queues one sync job for the whole batch",
    "path": "/vmh/webhook/beteiligte/update",
    "method": "POST",
    "emits": ["vmh.beteiligte.update"],
    "virtualSubscribes": ["espocrm.cbeteiligte.update"],
    "flows": ["vmh"],
}


async def handler(req, context):
    return await handle_webhook("update", req, context.emit, context.logger)
