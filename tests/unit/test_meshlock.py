"""MeshLock: shared holders keep a non-blocking exclusive attempt out (flock, per open file)."""

from __future__ import annotations

import uuid

from pytest_istiolab.deploy import MeshLock


def test_try_exclusive_fails_while_another_holder_shares_and_succeeds_after() -> None:
    key = f"test-{uuid.uuid4().hex}|addons"
    user, leaver = MeshLock(key), MeshLock(key)  # two open files: two processes to flock
    try:
        with user.shared():
            with leaver.shared():
                pass
            with leaver.try_exclusive() as last:
                assert last is False
        with leaver.try_exclusive() as last:
            assert last is True
            with user.try_exclusive() as other:
                assert other is False
    finally:
        user.path.unlink(missing_ok=True)
