"""Failure alerts for the scheduled runs: a chat webhook, e-mail, and always the log.

The data team is not watching at night, so a failed task must reach them. An alert names
the DAG, task, partition, run and try, and links to the task log in the Airflow UI. It
never carries patient data: the error text is included only for ``UserError`` (whose
messages are written to be free of patient data, e.g. "patients.csv: column birth_date
is missing"); for any other exception only its type is sent, since a database or library
message can quote a row.

Where alerts go (each optional, read when a task fails, so a change needs no redeploy):
    * ``FH_SCREEN_ALERT_WEBHOOK``: a chat webhook URL (Slack, Teams, Mattermost) that
      accepts ``{"text": ...}``. The URL is a secret: set it in the worker environment or
      as the Airflow Variable ``fh_screen_alert_webhook`` (secrets backend), never in code.
    * ``FH_SCREEN_ALERT_EMAIL``: comma-separated addresses, sent through the Airflow SMTP
      connection ``FH_SCREEN_SMTP_CONN`` (default ``smtp_default``; host and credentials
      live in that connection, e.g. ``AIRFLOW_CONN_SMTP_DEFAULT`` or a secrets backend).
"""

from __future__ import annotations

import html
import json
import logging
import os
import urllib.request
from typing import Any, Mapping

from fh_screen.errors import UserError

log = logging.getLogger("fh_screen.app.alerts")

WEBHOOK_TIMEOUT_S = 10


def _setting(name: str) -> str | None:
    """An environment variable, else the Airflow Variable of the same name in lower case."""
    value = os.environ.get(name)
    if value:
        return value
    try:
        from airflow.sdk import Variable

        return Variable.get(name.lower(), default=None)
    except Exception:  # no Airflow context (tests, CLI): environment only
        return None


def safe_error(exc: BaseException | None) -> str:
    """The error as it may appear in an alert: message for ``UserError``, else the type only."""
    if exc is None:
        return "no exception recorded (e.g. timeout or task killed)"
    if isinstance(exc, UserError):
        return f"{type(exc).__name__}: {exc}"
    return f"{type(exc).__name__} (details in the task log)"


def failure_summary(context: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of an alert, from an Airflow task context."""
    ti = context.get("ti") or context.get("task_instance")
    logical = context.get("logical_date")
    map_index = getattr(ti, "map_index", -1)
    return {
        "dag_id": getattr(ti, "dag_id", None),
        "task_id": getattr(ti, "task_id", None),
        "partition": getattr(ti, "rendered_map_index", None) or (None if map_index in (None, -1) else map_index),
        "run_id": getattr(ti, "run_id", None),
        "logical_date": logical.isoformat() if logical else None,
        "try_number": getattr(ti, "try_number", None),
        "error": safe_error(context.get("exception")),
        "log_url": getattr(ti, "log_url", None),
    }


def format_text(summary: Mapping[str, Any]) -> str:
    where = summary["task_id"] if summary["partition"] is None else f"{summary['task_id']} [{summary['partition']}]"
    return (
        f"fh-screen: task {where} of {summary['dag_id']} failed "
        f"(run {summary['run_id']}, try {summary['try_number']}).\n"
        f"{summary['error']}\nLog: {summary['log_url']}"
    )


def post_webhook(url: str, text: str) -> None:
    request = urllib.request.Request(
        url,
        data=json.dumps({"text": text}).encode("utf-8"),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=WEBHOOK_TIMEOUT_S) as response:  # noqa: S310 (URL from config)
        response.read()


def send_email(to: str, text: str) -> None:
    from airflow.providers.smtp.hooks.smtp import SmtpHook

    conn_id = os.environ.get("FH_SCREEN_SMTP_CONN", "smtp_default")
    first_line = text.splitlines()[0]
    with SmtpHook(smtp_conn_id=conn_id) as hook:
        hook.send_email_smtp(
            to=[addr.strip() for addr in to.split(",") if addr.strip()],
            subject=first_line[:180],
            html_content="<pre>" + html.escape(text) + "</pre>",
            from_email=os.environ.get("FH_SCREEN_ALERT_FROM") or None,
        )


def task_failed(context: Mapping[str, Any]) -> None:
    """Airflow ``on_failure_callback``: log, then post/send where configured. Never raises."""
    text = format_text(failure_summary(context))
    log.error("%s", text)
    for name, send in (("FH_SCREEN_ALERT_WEBHOOK", post_webhook), ("FH_SCREEN_ALERT_EMAIL", send_email)):
        target = _setting(name)
        if not target:
            continue
        try:
            send(target, text)
        except Exception as exc:  # an alert that cannot be delivered must not hide the failure
            log.error("could not deliver the %s alert: %s", name, type(exc).__name__)
