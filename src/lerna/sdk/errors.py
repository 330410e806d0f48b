"""SDK exceptions::

LernaSDKError
+-- InputError      the host app passed bad data (wrong feature length, NaN, unknown item)
+-- ConsentError    training asked for while the user has not consented
+-- AuthError       app token or device credential refused (the library disables itself)
+-- ProtocolError   the server answered something the SDK cannot use (bad model file, 4xx)
+-- ServerError     the server is unreachable or failed (5xx); safe to retry later
"""

from __future__ import annotations


class LernaSDKError(Exception):
    pass


class InputError(LernaSDKError, ValueError):
    pass


class ConsentError(LernaSDKError):
    pass


class AuthError(LernaSDKError):
    pass


class ProtocolError(LernaSDKError):
    def __init__(self, message: str, code: str = "protocol", status: int = 0) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


class ServerError(LernaSDKError):
    pass
