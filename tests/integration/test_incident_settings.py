"""Every threshold of incidents and notices is a TAWASOL_* setting: read from the environment,
refused with a clear message when it makes no sense, and wired to the detector, the notice
policy and the sender the brain runs (docs/incidents.md lists them with their defaults)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import ValidationError

from tawasol.adapters.store import migrate
from tawasol.composition import build_brain
from tawasol.config import Settings
from tawasol.domain.errors import InvalidConfiguration
from tawasol.domain.incident_detection import DetectionSettings
from tawasol.domain.notices import NoticePolicy, RetryPolicy


def test_the_defaults_are_the_documented_ones(tmp_path) -> None:
    settings = Settings(data_dir=tmp_path)
    assert settings.detection_settings() == DetectionSettings()
    assert settings.notice_policy() == NoticePolicy()
    assert settings.retry_policy() == RetryPolicy()
    assert settings.notice_consumer_min_outage_s == 300


ENVIRONMENT = {
    "TAWASOL_INCIDENT_BASELINE_SMOOTHING": "0.2",
    "TAWASOL_INCIDENT_IMPACT_ATTEMPTS": "40",
    "TAWASOL_INCIDENT_MIN_FAILURES": "12",
    "TAWASOL_INCIDENT_MIN_CARRIERS_FOR_DESTINATION": "3",
    "TAWASOL_INCIDENT_BASELINE_FLOOR": "0.01",
    "TAWASOL_INCIDENT_BASELINE_CEILING": "0.3",
    "TAWASOL_NOTICE_CONSUMER_MIN_OUTAGE_S": "600",
    "TAWASOL_NOTICE_UPDATE_INTERVAL_FIRST_DAY_S": "14400",
    "TAWASOL_NOTICE_UPDATE_INTERVAL_LATER_S": "43200",
    "TAWASOL_NOTICE_RETRY_MAX_DELAY_S": "900",
}


def test_settings_from_the_environment_reach_the_brain_it_runs(tmp_path, monkeypatch) -> None:
    for name, value in ENVIRONMENT.items():
        monkeypatch.setenv(name, value)
    settings = Settings(data_dir=tmp_path)
    migrate(settings.resolved_database_url)
    brain = build_brain(settings)
    try:
        detection = brain.incidents.detection_settings
        assert (
            detection.baseline_smoothing,
            detection.impact_attempts,
            detection.min_failures,
            detection.min_carriers_for_destination,
            detection.baseline_floor,
            detection.baseline_ceiling,
        ) == (0.2, 40, 12, 3, 0.01, 0.3)
        assert brain.notices.service.policy == NoticePolicy(
            consumer_min_outage=timedelta(minutes=10),
            update_interval_first_day=timedelta(hours=4),
            update_interval_later=timedelta(hours=12),
        )
        assert brain.notices.sender.retry.max_delay == timedelta(minutes=15)
    finally:
        brain.close()


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("incident_baseline_smoothing", 0),
        ("incident_baseline_smoothing", 1.5),
        ("incident_baseline_smoothing", -0.1),
        ("incident_impact_attempts", 0),
        ("incident_impact_attempts", -5),
        ("incident_min_carriers_for_destination", 0),
        ("incident_min_failures", -1),
        ("notice_consumer_min_outage_s", -60),
        ("notice_update_interval_first_day_s", 0),
        ("notice_update_interval_later_s", -1),
        ("notice_retry_max_delay_s", 0),
    ],
)
def test_a_nonsense_value_is_refused_naming_the_setting(tmp_path, name: str, value: float) -> None:
    with pytest.raises(ValidationError, match=name):
        Settings(data_dir=tmp_path, **{name: value})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("values", "problem"),
    [
        (
            {"incident_min_failures": 25, "incident_impact_attempts": 20},
            "min_failures must lie between 1 and impact_attempts",
        ),
        ({"incident_baseline_floor": 0.1}, "floor <= initial <= ceiling"),
        ({"incident_baseline_ceiling": 0.6}, "between the baseline ceiling and 1"),
        (
            {"notice_retry_first_delay_s": 600, "notice_retry_max_delay_s": 60},
            "longest retry delay cannot be shorter",
        ),
    ],
)
def test_contradictory_values_are_refused_at_start_with_a_clear_message(
    tmp_path, values: dict[str, float], problem: str
) -> None:
    with pytest.raises(InvalidConfiguration, match=problem):
        Settings(data_dir=tmp_path, **values).check()  # type: ignore[arg-type]
    # the one-threshold version of the first: fine on its own
    Settings(data_dir=tmp_path, incident_impact_attempts=40, incident_min_failures=25).check()
