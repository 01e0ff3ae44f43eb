"""EspoCRM webhook CBeteiligte.update: verify the signature, emit one event with the batch's record ids."""

from services.intake.handler import handle_webhook

config = {
    "type": "api",
    "name": "EspoWebhookUpdate",
    "description": "EspoCRM CBeteiligte.update webhook: signed batch -> one vmh.beteiligte.update event with its record ids",
    "path": "/vmh/webhook/beteiligte/update",
    "method": "POST",
    "emits": ["vmh.beteiligte.update"],
    "flows": ["vmh"],
}


async def handler(req, context):
    return await handle_webhook("update", req, context.emit, context.logger)
