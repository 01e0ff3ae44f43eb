"""EspoCRM adapter: ``client`` (REST), ``webhook`` (signature check), ``datetime`` (UTC formats).

Deliberately empty of imports: the webhook step must not pay for importing httpx.
"""
