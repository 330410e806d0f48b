"""Exceptions of the recommendation service.

One tree, so that the HTTP layer maps each kind to one status code and one stable error code,
and so that no domain error ever escapes as a 500::

    RecommenderError                 base; never raised itself
    ├── InvalidInputError        400 input that parsed but makes no sense (bad rule, bad date)
    ├── AuthError                401 missing or unknown bearer token
    ├── ForbiddenError           403 the token's role may not do this
    ├── NotFoundError            404 unknown engine, job or entity
    ├── ConflictError            409 the engine already exists, the job already finished
    ├── JobCancelledError            raised inside a training run when its job was cancelled
    └── UnsafeBindError              refusing to listen on a public address without auth
"""

from __future__ import annotations


class RecommenderError(Exception):
    """Base of every error the recommendation service raises on purpose."""

    status_code = 500
    code = "internal"


class InvalidInputError(RecommenderError):
    status_code = 400
    code = "invalid_input"


class AuthError(RecommenderError):
    status_code = 401
    code = "unauthenticated"


class ForbiddenError(RecommenderError):
    status_code = 403
    code = "forbidden"


class NotFoundError(RecommenderError):
    status_code = 404
    code = "not_found"


class ConflictError(RecommenderError):
    status_code = 409
    code = "conflict"


class JobCancelledError(RecommenderError):
    code = "cancelled"


class UnsafeBindError(RecommenderError):
    code = "unsafe_bind"
