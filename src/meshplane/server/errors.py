"""Errors of the xDS server. Each one closes only the stream it concerns, with a gRPC status."""

from __future__ import annotations

import grpc

from meshplane import errors


class ServerError(errors.MeshplaneError):
    """Base of every error the server package raises."""


class StreamRejected(ServerError):
    """Close this stream with `code` and `message` (bad node, failed authentication, ...)."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class NodeError(StreamRejected):
    """The first request's node id or metadata is malformed (INVALID_ARGUMENT)."""

    def __init__(self, message: str) -> None:
        super().__init__(grpc.StatusCode.INVALID_ARGUMENT, message)
