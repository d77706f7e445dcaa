"""An in-tree PEP 517 build backend for the hopper package, standard
library only, so that `pip install clients/python` works without PyPI
(pip would otherwise fetch setuptools to build). It generates the
protobuf code from the repository's proto/ with protoc (Debian's
protobuf-compiler) into the wheel: the generated code is never written by
hand nor committed. HOPPER_PROTO_DIR overrides where proto/ is (default:
../../proto from here, the repository's)."""

import base64
import hashlib
import os
import shutil
import subprocess
import tempfile
import zipfile

NAME = "hopper"
VERSION = "0.1.0"
PROTOS = ("hopper/v1/envelope.proto", "hopper/v1/broker.proto")
HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TAG = "py3-none-any"
DIST_INFO = f"{NAME}-{VERSION}.dist-info"

METADATA = f"""Metadata-Version: 2.1
Name: {NAME}
Version: {VERSION}
Summary: Python client of the Hopper message broker (native protocol)
Requires-Python: >=3.9
Requires-Dist: protobuf>=3.20
"""

WHEEL = f"""Wheel-Version: 1.0
Generator: hopper_build
Root-Is-Purelib: true
Tag: {TAG}
"""


def _proto_dir():
    d = os.environ.get("HOPPER_PROTO_DIR") or os.path.join(
        HERE, "..", "..", "proto")
    if not os.path.isfile(os.path.join(d, PROTOS[0])):
        raise RuntimeError(
            f"cannot find the .proto files under '{d}': build from the "
            "repository (pip install clients/python) or set "
            "HOPPER_PROTO_DIR")
    return d


def generate(out_dir):
    """protoc --python_out=out_dir for the contract; returns the files."""
    protoc = shutil.which("protoc")
    if protoc is None:
        raise RuntimeError("protoc not found: apt-get install "
                           "protobuf-compiler")
    subprocess.run([protoc, f"--proto_path={_proto_dir()}",
                    f"--python_out={out_dir}", *PROTOS], check=True)
    init = os.path.join(out_dir, "hopper", "v1", "__init__.py")
    with open(init, "w") as f:
        f.write('"""Generated from proto/hopper/v1 by protoc."""\n')


def _record_line(arc, data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest())
    return f"{arc},sha256={digest.rstrip(b'=').decode()},{len(data)}"


def _files():
    """(archive name, bytes) of everything the wheel holds."""
    pkg = os.path.join(HERE, NAME)
    for name in sorted(os.listdir(pkg)):
        if name.endswith(".py"):
            with open(os.path.join(pkg, name), "rb") as f:
                yield f"{NAME}/{name}", f.read()
    with tempfile.TemporaryDirectory() as tmp:
        generate(tmp)
        gen = os.path.join(tmp, "hopper", "v1")
        for name in sorted(os.listdir(gen)):
            with open(os.path.join(gen, name), "rb") as f:
                yield f"{NAME}/v1/{name}", f.read()


def get_requires_for_build_wheel(config_settings=None):
    return []


def prepare_metadata_for_build_wheel(metadata_directory,
                                     config_settings=None):
    d = os.path.join(metadata_directory, DIST_INFO)
    os.makedirs(d, exist_ok=True)
    for name, text in (("METADATA", METADATA), ("WHEEL", WHEEL)):
        with open(os.path.join(d, name), "w") as f:
            f.write(text)
    return DIST_INFO


def build_wheel(wheel_directory, config_settings=None,
                metadata_directory=None):
    wheel = f"{NAME}-{VERSION}-{TAG}.whl"
    records = []
    with zipfile.ZipFile(os.path.join(wheel_directory, wheel), "w",
                         zipfile.ZIP_DEFLATED) as z:
        entries = list(_files())
        entries += [(f"{DIST_INFO}/METADATA", METADATA.encode()),
                    (f"{DIST_INFO}/WHEEL", WHEEL.encode())]
        for arc, data in entries:
            z.writestr(arc, data)
            records.append(_record_line(arc, data))
        records.append(f"{DIST_INFO}/RECORD,,")
        z.writestr(f"{DIST_INFO}/RECORD", "\n".join(records) + "\n")
    return wheel
