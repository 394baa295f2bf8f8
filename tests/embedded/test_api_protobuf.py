"""Decoding the protobuf bodies of ``kubectl create <kind>`` (hand-built messages)."""

from __future__ import annotations

import pytest

from pytest_istiolab.embedded.api.protobuf import MAGIC, ProtobufError, decode_object


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _len(field: int, payload: bytes) -> bytes:
    return _varint(field << 3 | 2) + _varint(len(payload)) + payload


def _int(field: int, value: int) -> bytes:
    return _varint(field << 3) + _varint(value)


def _envelope(api_version: str, kind: str, raw: bytes) -> bytes:
    type_meta = _len(1, api_version.encode()) + _len(2, kind.encode())
    return MAGIC + _len(1, type_meta) + _len(2, raw) + _len(3, b"") + _len(4, b"")


def test_configmap_with_labels_and_empty_defaults_dropped() -> None:
    meta = _len(1, b"cfg") + _len(2, b"") + _int(7, 0) + _len(11, _len(1, b"app") + _len(2, b"x"))
    raw = _len(1, meta) + _len(2, _len(1, b"k") + _len(2, b"v"))
    assert decode_object(_envelope("v1", "ConfigMap", raw)) == {
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "cfg", "labels": {"app": "x"}}, "data": {"k": "v"}}


def test_service_ports_with_int_and_string_target_ports() -> None:
    http = _len(1, b"http") + _int(3, 80) + _len(4, _int(2, 8080)) + _int(5, 30080)
    named = _len(1, b"grpc") + _int(3, 90) + _len(4, _int(1, 1) + _len(3, b"grpc-port"))
    spec = _len(1, http) + _len(1, named) + _len(4, b"NodePort")
    obj = decode_object(_envelope("v1", "Service", _len(1, _len(1, b"s")) + _len(2, spec)))
    assert obj["spec"] == {"ports": [{"name": "http", "port": 80, "targetPort": 8080,
                                      "nodePort": 30080},
                                     {"name": "grpc", "port": 90, "targetPort": "grpc-port"}],
                           "type": "NodePort"}


def test_zero_replicas_survive_because_the_field_is_a_pointer() -> None:
    spec = _int(1, 0)
    obj = decode_object(_envelope("apps/v1", "Deployment", _len(1, _len(1, b"d")) + _len(2, spec)))
    assert obj["spec"] == {"replicas": 0}


def test_unknown_kinds_and_fields_are_refused_by_name() -> None:
    with pytest.raises(ProtobufError, match="batch/v1 Job"):
        decode_object(_envelope("batch/v1", "Job", b""))
    with pytest.raises(ProtobufError, match="field 9 of ConfigMap"):
        decode_object(_envelope("v1", "ConfigMap", _len(9, b"x")))
    with pytest.raises(ProtobufError, match="prefix"):
        decode_object(b"\x00\x01")
