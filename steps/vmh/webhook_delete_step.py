"""EspoCRM webhook CBeteiligte.delete: verify the signature, emit one event with the batch's record ids."""

from services.intake.handler import handle_webhook

config = {
    "type": "api",
    "name": "EspoWebhookDelete",
    "description": "EspoCRM CBeteiligte.delete webhook: signed batch -> one vmh.beteiligte.delete event with its record ids",
    "path": "/vmh/webhook/beteiligte/delete",
    "method": "POST",
    "emits": ["vmh.beteiligte.delete"],
    "flows": ["vmh"],
}


async def handler(req, context):
    return await handle_webhook("delete", req, context.emit, context.logger)
