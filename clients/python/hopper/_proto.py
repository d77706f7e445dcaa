"""The protobuf modules, generated from proto/hopper/v1 by protoc: into
the wheel by `pip install clients/python` (clients/python/_build), into
the build tree by CMake for the tests. Never written by hand."""

try:
    from hopper.v1 import broker_pb2, envelope_pb2  # noqa: F401
except ImportError as e:  # pragma: no cover - a build step was skipped
    raise ImportError(
        "hopper's generated protobuf code (hopper.v1) is missing: install "
        "with 'pip install clients/python', or put the build tree's "
        "python/ directory on PYTHONPATH (CMake generates it there)"
    ) from e
