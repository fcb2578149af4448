"""The contract between services: schemas committed, envelopes CloudEvents-shaped, topics complete."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
from pydantic import ValidationError

from shared import events, schema_export, topics
from shared.messaging import ce_headers, encode


def test_committed_schemas_match_the_models() -> None:
    assert schema_export.stale() == [], "an event model changed: run `make schemas` and commit docs/schemas/"


def test_the_drift_check_notices_a_changed_model(tmp_path: Path) -> None:
    schema_export.write(tmp_path)
    changed = tmp_path / "participant.registered.v1.json"
    schema = json.loads(changed.read_text())
    schema["title"] = "edited by hand"
    changed.write_text(json.dumps(schema))
    assert schema_export.stale(tmp_path) == ["participant.registered.v1.json"]


def _request() -> events.EnrollmentRequested:
    return events.EnrollmentRequested(
        source="partner/kota-bogor-hr",
        subject="req-1",
        data=events.EnrollmentRequest(
            request_id="req-1",
            worker=events.Worker(
                nik="3271014506900001",
                full_name="Siti Aminah",
                birth_date=date(1990, 6, 5),
                sex=events.Sex.FEMALE,
            ),
            region_code="32.71",
            segment=events.Segment.BPU,
            category=events.Category.VULNERABLE,
            programs=[events.Program.JKK, events.Program.JKM],
            declared_income=1_000_000,
            funding_source=events.FundingSource.APBD,
            coverage_start=date(2026, 1, 1),
        ),
    )


def test_an_event_round_trips_through_its_record_and_carries_ce_headers() -> None:
    event = _request()
    value, headers = encode(event)
    decoded = events.partner_request_adapter.validate_json(value)
    assert decoded == event
    assert headers["ce_id"] == event.id
    assert headers["ce_type"] == "id.lindungi.enrollment.requested"
    assert headers["ce_specversion"] == "1.0"
    assert headers["content-type"] == "application/cloudevents+json"
    assert ce_headers(event)["ce_subject"] == "req-1"


def test_events_are_frozen_and_reject_unknown_fields() -> None:
    event = _request()
    with pytest.raises(ValidationError):
        event.data.request_id = "other"  # type: ignore[misc]
    raw = json.loads(encode(event)[0])
    raw["data"]["surprise"] = 1
    with pytest.raises(ValidationError):
        events.partner_request_adapter.validate_python(raw)


def test_every_event_has_a_topic_and_every_topic_is_documented() -> None:
    carried = {e for t in topics.CATALOGUE for e in t.events}
    assert carried == {events.event_type(m) for m in events.ALL_EVENTS}
    table = topics.markdown_table()
    assert all(t.name in table for t in topics.CATALOGUE)
    assert topics.REGION_AGGREGATES.config["cleanup.policy"] == "compact"
    # Only the intake topic may carry a NIK in clear.
    assert [t.name for t in topics.CATALOGUE if t.personal_data] == [topics.ENROLLMENT_REQUESTS.name]
