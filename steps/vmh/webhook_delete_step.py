"""EspoCRM webhook CBeteiligte.delete: verify the signature, emit one event per record id."""

from services.intake.handler import handle_webhook

config = {
    "type": "api",
    "name": "EspoWebhookDelete",
    "description": "EspoCRM CBeteiligte.delete webhook: signed batch -> vmh.beteiligte.delete per record",
    "path": "/vmh/webhook/beteiligte/delete",
    "method": "POST",
    "emits": ["vmh.beteiligte.delete"],
    "flows": ["vmh"],
}


async def handler(req, context):
    return await handle_webhook("delete", req, context.emit, context.logger)
