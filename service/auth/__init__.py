"""Who may do what: API keys (stored hashed) with one role each, checked on every protected
route; anonymous use of the open routes is rate-limited.

``roles`` (the roles and the principal a key stands for), ``keys`` (creating, revoking and
looking up keys), ``guard`` (the FastAPI dependencies the routes declare), ``ratelimit``, and
the command ``python -m service.auth``.
"""
