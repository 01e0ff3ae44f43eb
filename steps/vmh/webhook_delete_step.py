"""EspoCRM webhook CBeteiligte.delete: verify the signature, emit one event with the batch's record ids."""

from services.intake.handler import handle_webhook

config = {
    "type": "api",
    "name": "EspoWebhookDelete",
    "description": "Checks the signature of EspoCRM's webhook (party deleted) and queues one sync job for the whole batch",
    "path": "/vmh/webhook/beteiligte/delete",
    "method": "POST",
    "emits": ["vmh.beteiligte.delete"],
    "virtualSubscribes": ["espocrm.cbeteiligte.delete"],
    "flows": ["vmh"],
}


async def handler(req, context):
    return await handle_webhook("delete", req, context.emit, context.logger)
