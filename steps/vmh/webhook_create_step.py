"""EspoCRM webhook CBeteiligte.create: verify the signature, emit one event with the batch's record ids."""

from services.intake.handler import handle_webhook

config = {
    "type": "api",
    "name": "EspoWebhookCreate",
    "description": "EspoCRM CBeteiligte.create webhook: signed batch -> one vmh.beteiligte.create event with its record ids",
    "path": "/vmh/webhook/beteiligte/create",
    "method": "POST",
    "emits": ["vmh.beteiligte.create"],
    "flows": ["vmh"],
}


async def handler(req, context):
    return await handle_webhook("create", req, context.emit, context.logger)
