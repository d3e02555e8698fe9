"""The proposed notify/server/leader groups validate what the daemon's parts need."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from vigil.agent.daemon_settings import LeaderSettings, NotifySettings, ServerSettings
from vigil.core import IncidentState


def test_defaults_are_valid_and_routes_parse() -> None:
    route = {
        "channels": ["slack"],
        "min_severity": "critical",
        "namespaces": ["shop*"],
        "states": ["escalated"],
    }
    notify = NotifySettings.model_validate({"routes": [route]})
    assert notify.routes[0].states == (IncidentState.ESCALATED,)
    assert ServerSettings().public_url is None and LeaderSettings().renew_deadline is None


@pytest.mark.parametrize(
    ("model", "data", "why"),
    [
        (NotifySettings, {"slack": {"token": "xoxb-1"}}, "notify.slack.channel is required"),
        (NotifySettings, {"base_delay": 700}, "must not exceed notify.max_delay"),
        (NotifySettings, {"routes": [{"channels": []}]}, "at least 1 item"),
        (NotifySettings, {"routes": [{"channels": ["x"], "typo": 1}]}, "Extra inputs"),
        (ServerSettings, {"public_url": "vigil.example.com"}, "should match pattern"),
        (
            ServerSettings,
            {"approval_secret": "short"},
            "server.approval_secret must be at least 16 characters",
        ),
        (LeaderSettings, {"renew_every": 12}, "renew_every < renew_deadline"),
        (LeaderSettings, {"renew_deadline": 20}, "renew_deadline <= lease_duration"),
    ],
)
def test_bad_values_name_the_problem(model: type, data: dict, why: str) -> None:
    with pytest.raises(ValidationError, match=why):
        model.model_validate(data)
