"""EspoCRM webhook CBeteiligte.create: verify the signature, emit one event per record id."""

from services.intake.handler import handle_webhook

config = {
    "type": "api",
    "name": "EspoWebhookCreate",
    "description": "EspoCRM CBeteiligte.create webhook: signed batch -> vmh.beteiligte.create per record",
    "path": "/vmh/webhook/beteiligte/create",
    "method": "POST",
    "emits": ["vmh.beteiligte.create"],
    "flows": ["vmh"],
}


async def handler(req, context):
    return await handle_webhook("create", req, context.emit, context.logger)
