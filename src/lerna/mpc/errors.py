"""Exceptions of the MPC service, each with the HTTP status and stable code the API returns.

MPCError
+-- Unauthorized      (401 unauthorized)    missing, forged or expired credential
+-- RoundClosed       (409 round_closed)    the round's one mask sum was already answered
+-- SetTooSmall       (422 set_too_small)   fewer than t devices asked for
+-- UnknownDevices    (422 unknown_devices) a device that never received a seed this round
+-- NoiseTooLow       (422 noise_too_low)   less DP noise than this service's floor
+-- InvalidRequest    (422 invalid_request) e.g. a device listed twice, a vector too long
"""

from __future__ import annotations


class MPCError(Exception):
    status_code = 400
    code = "bad_request"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class Unauthorized(MPCError):
    status_code = 401
    code = "unauthorized"


class RoundClosed(MPCError):
    status_code = 409
    code = "round_closed"


class SetTooSmall(MPCError):
    status_code = 422
    code = "set_too_small"


class UnknownDevices(MPCError):
    status_code = 422
    code = "unknown_devices"


class NoiseTooLow(MPCError):
    status_code = 422
    code = "noise_too_low"


class InvalidRequest(MPCError):
    status_code = 422
    code = "invalid_request"
