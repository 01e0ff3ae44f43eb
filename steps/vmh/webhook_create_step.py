"""EspoCRM webhook CBeteiligte.create: verify the signature, emit one event with the batch's record ids."""

from services.intake.handler import handle_webhook, webhook_route

config = webhook_route("create")


async def handler(req, context):
    return await handle_webhook("create", req, context.emit, context.logger)
