config = {
    "type": "api",
    "name": "SmokePing",
    "path": "/vmh/ping",
    "method": "POST",
    "emits": ["vmh.ping"],
    "flows": ["vmh"],
}


async def handler(req, context):
    await context.emit({"topic": "vmh.ping", "data": {"n": (req.get("body") or {}).get("n", 0)}})
    return {"status": 202, "body": {"ok": True}}
