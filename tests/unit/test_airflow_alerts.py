"""Failure alerts: what they say, that they carry no patient data, and where they go."""

from __future__ import annotations

import json
import logging
import socket
import threading
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, HTTPServer
from types import SimpleNamespace

import pytest

from fh_screen.app import alerts
from fh_screen.errors import DeliveryError

SECRET_ROW = "patient P000123 LDL 9.7"


def _context(exc: BaseException | None) -> dict:
    ti = SimpleNamespace(dag_id="fh_nightly", task_id="night.validate", map_index=0, rendered_map_index="nord",
                         run_id="scheduled__2026-11-23", try_number=1, log_url="http://airflow/log/1")
    return {"ti": ti, "logical_date": datetime(2026, 11, 23, 0, 30, tzinfo=timezone.utc), "exception": exc}


@pytest.fixture(autouse=True)
def _no_targets(monkeypatch):
    for name in ("FH_SCREEN_ALERT_WEBHOOK", "FH_SCREEN_ALERT_EMAIL", "FH_SCREEN_ALERT_FROM", "FH_SCREEN_SMTP_CONN"):
        monkeypatch.delenv(name, raising=False)


def test_user_errors_are_quoted_other_errors_only_by_type():
    assert alerts.safe_error(DeliveryError("patients.csv: column birth_date is missing")) == (
        "DeliveryError: patients.csv: column birth_date is missing")
    text = alerts.safe_error(ValueError(SECRET_ROW))
    assert text.startswith("ValueError") and "P000123" not in text
    assert "no exception" in alerts.safe_error(None)


def test_summary_names_dag_task_partition_run_try_and_log():
    summary = alerts.failure_summary(_context(DeliveryError("lab_results.csv is unreadable")))
    assert summary == {
        "dag_id": "fh_nightly", "task_id": "night.validate", "partition": "nord",
        "run_id": "scheduled__2026-11-23", "logical_date": "2026-11-23T00:30:00+00:00", "try_number": 1,
        "error": "DeliveryError: lab_results.csv is unreadable", "log_url": "http://airflow/log/1",
    }
    text = alerts.format_text(summary)
    assert "night.validate [nord] of fh_nightly failed" in text and "http://airflow/log/1" in text


def test_failure_without_targets_only_logs(caplog):
    with caplog.at_level(logging.ERROR, logger="fh_screen.app.alerts"):
        alerts.task_failed(_context(RuntimeError(SECRET_ROW)))
    assert "night.validate" in caplog.text
    assert "P000123" not in caplog.text


def test_webhook_receives_the_alert_without_patient_data(monkeypatch):
    received: list[dict] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (http.server API)
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append(json.loads(body))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Hook)
    thread = threading.Thread(target=server.handle_request, daemon=True)
    thread.start()
    monkeypatch.setenv("FH_SCREEN_ALERT_WEBHOOK", f"http://127.0.0.1:{server.server_port}/hook")
    alerts.task_failed(_context(KeyError(SECRET_ROW)))
    thread.join(timeout=10)
    server.server_close()
    assert len(received) == 1
    assert "night.validate [nord] of fh_nightly failed" in received[0]["text"]
    assert "KeyError" in received[0]["text"] and "P000123" not in received[0]["text"]


def test_an_undeliverable_alert_does_not_raise(monkeypatch, caplog):
    with socket.socket() as sock:                       # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("FH_SCREEN_ALERT_WEBHOOK", f"http://127.0.0.1:{port}/hook")
    with caplog.at_level(logging.ERROR, logger="fh_screen.app.alerts"):
        alerts.task_failed(_context(DeliveryError("x")))
    assert "could not deliver the FH_SCREEN_ALERT_WEBHOOK alert" in caplog.text


def test_email_goes_through_the_configured_smtp_connection(monkeypatch):
    sent = {}

    class FakeSmtpHook:
        def __init__(self, smtp_conn_id):
            sent["conn"] = smtp_conn_id

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def send_email_smtp(self, **kwargs):
            sent.update(kwargs)

    import airflow.providers.smtp.hooks.smtp as smtp

    monkeypatch.setattr(smtp, "SmtpHook", FakeSmtpHook)
    monkeypatch.setenv("FH_SCREEN_ALERT_EMAIL", "data-team@region.example, lipid@region.example")
    monkeypatch.setenv("FH_SCREEN_SMTP_CONN", "smtp_region")
    alerts.task_failed(_context(DeliveryError("patients.csv: <bad> header")))
    assert sent["conn"] == "smtp_region"
    assert sent["to"] == ["data-team@region.example", "lipid@region.example"]
    assert sent["subject"].startswith("fh-screen: task night.validate [nord] of fh_nightly failed")
    assert "&lt;bad&gt;" in sent["html_content"]
