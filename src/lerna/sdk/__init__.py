"""The device library a host app embeds.

It records interactions and context on the device, trains the app's model there, ranks
content for this user now, and takes part in federated rounds. Raw events, features and
labels never leave the device: only model updates (and aggregate counters) do.

Mapping from the original Kotlin SDK::

    LernaSDK(token).start()          -> LernaClient(app_token, server_url, storage_dir).start()
    setUserIdentifier                -> set_user_id
    updateFeature                    -> set_context
    addInputData                     -> add_items
    triggerInference(model, pos, n)  -> top_n(n)
    captureEvent(..., outcome, item) -> capture(item_id, success)
    enableUserDataUpload             -> (never uploads raw data; no equivalent by design)
    stop                             -> stop (pending predictions are closed as failures)
"""

from lerna.sdk.client import LernaClient, RoundOutcome, TrainingConditions
from lerna.sdk.errors import (
    AuthError,
    ConsentError,
    InputError,
    LernaSDKError,
    ProtocolError,
    ServerError,
)

__all__ = [
    "AuthError",
    "ConsentError",
    "InputError",
    "LernaClient",
    "LernaSDKError",
    "ProtocolError",
    "RoundOutcome",
    "ServerError",
    "TrainingConditions",
]
