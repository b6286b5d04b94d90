"""Schemathesis against the runner's own OpenAPI schema with an admin token: no 5xx, ever."""

from __future__ import annotations

import pytest

EXAMPLES = 15


def test_no_operation_answers_with_a_server_error(vault, admin) -> None:
    schemathesis = pytest.importorskip("schemathesis")
    from hypothesis import HealthCheck, given, settings

    schema = schemathesis.openapi.from_dict(admin.get("/openapi.json").json())
    schema.config.update(base_url=vault.url)
    cert = str(vault.home / "cert.pem")
    auth = {"Authorization": f"Bearer {vault.token}"}
    failures: list[str] = []
    operations = [r.ok() for r in schema.get_all_operations()]

    def fuzz(op: object) -> None:
        @given(case=op.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        def call(case: object) -> None:
            resp = case.call(headers=auth, verify=cert, timeout=30)
            if resp.status_code >= 500:
                failures.append(f"{op.method.upper()} {op.path} -> {resp.status_code}: "
                                f"{resp.text[:200]}")

        call()

    for op in operations:
        fuzz(op)

    assert len(operations) >= 20
    assert failures == []
