"""The MPC service: holds per-round mask seeds (never updates) in its own trust domain.

Devices reach it through the gateway routes with a short-lived ticket the FL-API signs; the
FL-API calls it with its own service token. `lerna.mpc.app.create_app(settings)` builds the app.
"""
