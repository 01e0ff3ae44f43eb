import os

config = {
    "type": "event",
    "name": "SmokePong",
    "subscribes": ["vmh.ping"],
    "emits": [],
    "flows": ["vmh"],
}


async def handler(data, context):
    import redis.asyncio as r
    c = r.Redis.from_url(os.environ["REDIS_URL"])
    await c.set("vmh:smoke:pong", str(data.get("n")))
    await c.aclose()
