"""The OpenAPI schema driven by Schemathesis (issue 10): no 500, no response off the schema.

Bounded: a fixed number of examples per operation, no deadline, derandomised, so it takes
seconds and fails the same way twice. Schemathesis's own pytest plugin is not used (it does
not run under this pytest); its strategies are driven by Hypothesis directly.
"""

from __future__ import annotations

import pytest

schemathesis = pytest.importorskip("schemathesis", reason="schemathesis is not installed")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.serve.conftest import APP_KEY  # noqa: E402

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]


def test_no_server_error_and_responses_match_schema(app) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [r.ok() for r in schema.get_all_operations()]
    assert len(operations) >= 13
    seen: list[str] = []
    for op in operations:

        @given(case=op.as_strategy())
        @settings(max_examples=25, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        def run(case) -> None:
            case.call_and_validate(headers={"Authorization": f"Bearer {APP_KEY}"},
                                   checks=CHECKS)

        run()
        seen.append(op.label)
    assert "POST /v1/feedback" in seen and "GET /v1/users/{user_id}/recommendations" in seen
