"""The README's main walkthrough through a client generated from the served
OpenAPI document by openapi-python-client. Run by
crates/citadel-server/tests/contract.rs with the generated package on
PYTHONPATH as `citadel_client`, and CITADEL_URL / CITADEL_TOKEN (an owner
token of a fresh tenant) in the environment. Every step asserts the exact
status and values; any failure exits non-zero."""

import os
import time

from citadel_client import AuthenticatedClient
from citadel_client.api.default import (
    get_run,
    list_audit,
    list_runs,
    publish,
    run_script,
    save_script,
)
from citadel_client.models import (
    Accepted,
    AuditPage,
    ErrorBody,
    EventView,
    Language,
    NewEvent,
    ReviewState,
    RunBody,
    RunStatus,
    RunView,
    SaveScript,
    VersionView,
)

NAME = "billing/on-paid"
SOURCE = 'const who: string = input.name;\nconsole.log("paid", who);\nreturn { hello: who };'


def expect(got, want, what):
    if got != want:
        raise AssertionError(f"{what}: got {got!r}, want {want!r}")


client = AuthenticatedClient(
    base_url=os.environ["CITADEL_URL"],
    token=os.environ["CITADEL_TOKEN"],
    raise_on_unexpected_status=True,
)

# Save a script: the first version of a tenant without required approval
# goes live at once.
res = save_script.sync_detailed(
    client=client,
    body=SaveScript(name=NAME, source=SOURCE, language=Language.TS, change_note="first"),
)
expect(res.status_code, 201, "save status")
version = res.parsed
expect(type(version), VersionView, "save answer")
expect((version.script, version.version, version.language), (NAME, "1.0.0", Language.TS), "saved version")
expect((version.state, version.live), (ReviewState.APPROVED, True), "saved version's state")

# Run it synchronously: the finished run.
res = run_script.sync_detailed(NAME, client=client, body=RunBody(input_={"name": "ann"}))
expect(res.status_code, 200, "sync run status")
sync_run = res.parsed
expect(type(sync_run), RunView, "sync run answer")
expect(sync_run.status, RunStatus.SUCCEEDED, "sync run's status")
expect(sync_run.result, {"hello": "ann"}, "sync run's result")
expect(sync_run.input_, {"name": "ann"}, "sync run's input")
expect(sync_run.error, None, "sync run's error")
expect([line["message"] for line in sync_run.logs], ["paid ann"], "sync run's logs")
expect((sync_run.script, sync_run.version, sync_run.trigger), (NAME, "1.0.0", "api"), "sync run")

# Run it asynchronously: 202 and an id, then read the run until it is done.
res = run_script.sync_detailed(
    NAME, client=client, body=RunBody(input_={"name": "bo"}, wait=False)
)
expect(res.status_code, 202, "async run status")
accepted = res.parsed
expect(type(accepted), Accepted, "async run answer")
expect(accepted.duplicate, False, "async run duplicate")
for _ in range(1000):
    res = get_run.sync_detailed(accepted.run_id, client=client)
    expect(res.status_code, 200, "read run status")
    async_run = res.parsed
    if async_run.status not in (RunStatus.QUEUED, RunStatus.RUNNING):
        break
    time.sleep(0.01)
expect(async_run.id, accepted.run_id, "read run's id")
expect(async_run.status, RunStatus.SUCCEEDED, "async run's status")
expect(async_run.result, {"hello": "bo"}, "async run's result")
expect(async_run.trigger, "api_async", "async run's trigger")

# List the script's succeeded runs, newest first.
res = list_runs.sync_detailed(client=client, script=NAME, status=RunStatus.SUCCEEDED, limit=10)
expect(res.status_code, 200, "list runs status")
expect([r.id for r in res.parsed], [async_run.id, sync_run.id], "listed runs")
res = list_runs.sync_detailed(client=client, script=NAME, status=RunStatus.FAILED, limit=10)
expect((res.status_code, res.parsed), (200, []), "failed runs")

# Publish an event (no subscriber yet: no deliveries).
res = publish.sync_detailed(
    client=client,
    body=NewEvent(type_="order.paid", data={"order_id": "o-1", "amount_cents": 1200}),
)
expect(res.status_code, 202, "publish status")
event = res.parsed
expect(type(event), EventView, "publish answer")
expect((event.type_, event.data), ("order.paid", {"order_id": "o-1", "amount_cents": 1200}), "event")
expect(event.deliveries, [], "event's deliveries")

# Read an audit page: the save is on the record.
res = list_audit.sync_detailed(client=client, action="script.save", limit=10)
expect(res.status_code, 200, "audit status")
page = res.parsed
expect(type(page), AuditPage, "audit answer")
expect([(e.action, e.target, e.outcome) for e in page.entries], [("script.save", NAME, "ok")], "audit entries")

# Errors come back typed too.
res = run_script.sync_detailed("missing", client=client, body=RunBody())
expect(res.status_code, 404, "missing script status")
expect(type(res.parsed), ErrorBody, "missing script answer")
expect(res.parsed.error.code, "not_found", "missing script code")
stranger = AuthenticatedClient(base_url=os.environ["CITADEL_URL"], token="not-a-token")
res = list_runs.sync_detailed(client=stranger)
expect(res.status_code, 401, "bad token status")
expect(res.parsed.error.code, "unauthorized", "bad token code")

print("walkthrough ok")
