"""EspoCRM webhook CBeteiligte.create: verify the signature, emit one event with the batch's record ids."""

from services.intake.handler import handle_webhook

config = {
    "type": "api",
    "name": "EspoWebhookCreate",
    "description": "Checks the signature of EspoCRM's webhook (party created) and queues one sync job for the whole batch",
    "path": "/vmh/webhook/beteiligte/create",
    "method": "POST",
    "emits": ["vmh.beteiligte.create"],
    "virtualSubscribes": ["espocrm.cbeteiligte.create"],
    "flows": ["vmh"],
}


async def handler(req, context):
    return await handle_webhook("create", req, context.emit, context.logger)
