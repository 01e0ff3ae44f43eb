"""EspoCRM webhook CBeteiligte.update: verify the signature, emit one event per record id."""

from services.intake.handler import handle_webhook

config = {
    "type": "api",
    "name": "EspoWebhookUpdate",
    "description": "EspoCRM CBeteiligte.update webhook: signed batch -> vmh.beteiligte.update per record",
    "path": "/vmh/webhook/beteiligte/update",
    "method": "POST",
    "emits": ["vmh.beteiligte.update"],
    "flows": ["vmh"],
}


async def handler(req, context):
    return await handle_webhook("update", req, context.emit, context.logger)
