"""The running app through `gradio_client`: the one public endpoint, its limits, and login."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError

from assistant.config import Settings
from tests.app_server import AppServer, running_app

pytestmark = pytest.mark.server

USERS = "ann:first-pass,bob:second:pass"


@pytest.fixture(scope="module")
def app(built_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:
    with running_app(built_settings, tmp_path_factory.mktemp("api-app")) as server:
        yield server


def client(url: str, auth: tuple[str, str] | None = None) -> Client:
    return Client(url, auth=auth, verbose=False, analytics_enabled=False, download_files=False)


def test_ask_returns_a_cited_reply_that_uses_the_profile(app: AppServer) -> None:
    reply = client(app.url).predict(
        "What should we do next on equity?", {"equity": "essentials"}, api_name="/ask"
    )
    assert (reply["kind"], reply["element"], reply["tier"]) == (
        "next_steps",
        "equity",
        "progressing-further",
    )
    markers = {int(m) for m in re.findall(r"\[(\d+)\]", reply["text"])}
    assert markers == {c["marker"] for c in reply["citations"]}
    assert "equity.progressing-further.1" in {c["id"] for c in reply["citations"]}
    assert 2 <= len(reply["suggestions"]) <= 3


def test_only_ask_is_exposed(app: AppServer) -> None:
    api = client(app.url).view_api(print_info=False, return_format="dict")
    assert isinstance(api, dict)
    assert set(api["named_endpoints"]) == {"/ask"}
    assert api["unnamed_endpoints"] == {}
    parameters = [p["parameter_name"] for p in api["named_endpoints"]["/ask"]["parameters"]]
    assert parameters == ["question", "profile"]


def test_server_refuses_an_overlong_question_and_a_bad_profile(
    app: AppServer, built_settings: Settings
) -> None:
    api = client(app.url)
    too_long = "What next on equity? " * built_settings.max_question_chars
    with pytest.raises(AppError, match="the limit is 2,000"):
        api.predict(too_long, {}, api_name="/ask")
    with pytest.raises(AppError, match="Valid values: none, essentials"):
        api.predict("What next on equity?", {"equity": "expert"}, api_name="/ask")


@pytest.mark.parametrize(
    ("question", "profile", "message"),
    [
        (42, {}, "The question must be text, got int"),
        (["What next on equity?"], {}, "The question must be text, got list"),
        ("What next on equity?", ["equity"], "The profile must map element -> tier, got list"),
        ("What next on equity?", {"equity": 3}, "Unknown tier 3 for equity"),
    ],
)
def test_wrong_types_get_a_clear_message(
    app: AppServer, question: object, profile: object, message: str
) -> None:
    with pytest.raises(AppError, match=re.escape(message)):
        client(app.url).predict(question, profile, api_name="/ask")


@pytest.mark.parametrize("path", ["", "config", "gradio_api/info"])
def test_every_response_carries_the_security_headers(app: AppServer, path: str) -> None:
    with urllib.request.urlopen(app.url + path, timeout=10) as response:
        headers = response.headers
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    assert "img-src 'self' data: blob:" in headers["Content-Security-Policy"]


def test_an_oversized_request_is_refused_before_it_is_read(
    app: AppServer, built_settings: Settings
) -> None:
    body = json.dumps({"data": ["x" * (2 * built_settings.max_request_bytes)], "fn_index": 0})
    request = urllib.request.Request(
        app.url + "gradio_api/queue/join",
        data=body.encode(),
        headers={"Content-Type": "application/json"},
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 413
    assert "shorter question" in refused.value.read().decode()
    # an ordinary question still goes through
    assert client(app.url).predict("respite benefit", {}, api_name="/ask")["citations"]


@pytest.mark.parametrize("origin", ["http://localhost:9999", "https://evil.example"])
def test_requests_from_another_sites_page_are_refused(app: AppServer, origin: str) -> None:
    body = json.dumps({"data": ["respite benefit", {}]}).encode()
    headers = {"Content-Type": "application/json", "Origin": origin}
    request = urllib.request.Request(app.url + "gradio_api/call/ask", data=body, headers=headers)
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 403
    # the app's own page (same origin) and scripts (no origin) are served
    own = app.url.rstrip("/")
    for extra in ({"Origin": own}, {}):
        request = urllib.request.Request(
            app.url + "gradio_api/call/ask",
            data=body,
            headers={"Content-Type": "application/json", **extra},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert "event_id" in json.load(response)


@pytest.mark.parametrize("origin", ["http://localhost:9999", "http://127.0.0.1:1", "null"])
def test_other_sites_get_no_cors_permission(app: AppServer, origin: str) -> None:
    preflight = urllib.request.Request(
        app.url + "gradio_api/call/ask",
        method="OPTIONS",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(preflight, timeout=10)
    assert refused.value.code == 403
    assert "access-control-allow-origin" not in {k.lower() for k in refused.value.headers}
    page = urllib.request.Request(app.url, headers={"Origin": origin})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(page, timeout=10)
    assert refused.value.code == 403
    assert "access-control-allow-credentials" not in {k.lower() for k in refused.value.headers}


def test_the_chat_is_kept_on_the_server_not_sent_with_each_question(app: AppServer) -> None:
    with urllib.request.urlopen(app.url + "config", timeout=10) as response:
        config = json.load(response)
    chat_ids = {
        c["id"] for c in config["components"] if c.get("props", {}).get("elem_id") == "pg-chat"
    }
    answers = [d for d in config["dependencies"] if chat_ids & set(d["outputs"])]
    assert answers and chat_ids
    for dependency in answers:
        assert not chat_ids & set(dependency["inputs"]), dependency


def test_served_config_records_nothing(app: AppServer) -> None:
    with urllib.request.urlopen(app.url + "config", timeout=10) as response:
        config = json.load(response)
    assert config["analytics_enabled"] is False
    assert config["run_history"] is False
    assert config["footer_links"] == []
    assert config["mcp_server"] is False
    assert config["show_error"] is False  # errors reach users as messages, never tracebacks


def test_login_is_required_when_users_are_configured(
    built_settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> None:
    workdir = tmp_path_factory.mktemp("auth-app")
    with running_app(built_settings, workdir, extra_env={"ASSISTANT_AUTH": USERS}) as server:
        with pytest.raises(ValueError, match="(?i)login|auth|credentials"):
            client(server.url)
        with pytest.raises(ValueError, match="(?i)login|auth|credentials"):
            client(server.url, auth=("ann", "wrong"))
        reply = client(server.url, auth=("bob", "second:pass")).predict(
            "What are the three tiers?", None, api_name="/ask"
        )
        assert reply["kind"] == "overview" and reply["citations"]
