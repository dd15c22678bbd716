// Runs: history with filters and paging, and one run with its live logs.

import { useEffect, useRef, useState } from "preact/hooks";
import { get, page, path, post, enc, follow } from "./api.js";
import { can } from "./main.jsx";
import { RunError } from "./scripts.jsx";
import { Steps } from "./more.jsx";
import { Failure, Status, Table, json, logLine, useAction, when } from "./ui.jsx";

const STATUSES = ["", "queued", "running", "succeeded", "failed", "timed_out", "cancelled", "killed"];
const TRIGGERS = ["", "api", "api_async", "schedule", "manual", "event", "workflow", "webhook", "plugin"];

export function Runs() {
  const [filter, setFilter] = useState({ script: "", status: "", trigger: "", since: "" });
  const [pages, setPages] = useState([]);
  const [next, setNext] = useState(null);
  const [error, setError] = useState(null);
  const load = async (before) => {
    setError(null);
    try {
      const since = filter.since ? Date.parse(filter.since) : undefined;
      const p = await page(path("/v1/runs", { ...filter, since, before, limit: 50 }));
      setPages((old) => (before ? [...old, ...p.items] : p.items));
      setNext(p.next);
    } catch (e) {
      setError(e);
    }
  };
  useEffect(() => {
    load();
  }, [filter]);
  const field = (k) => (e) => setFilter({ ...filter, [k]: e.target.value });
  return (
    <section>
      <h2>Runs</h2>
      <form class="filters" onSubmit={(e) => e.preventDefault()}>
        <input id="filter-script" placeholder="script" value={filter.script} onChange={field("script")} />
        <select id="filter-status" value={filter.status} onChange={field("status")}>
          {STATUSES.map((s) => (
            <option value={s}>{s || "any status"}</option>
          ))}
        </select>
        <select id="filter-trigger" value={filter.trigger} onChange={field("trigger")}>
          {TRIGGERS.map((s) => (
            <option value={s}>{s || "any trigger"}</option>
          ))}
        </select>
        <label>
          since <input type="datetime-local" value={filter.since} onChange={field("since")} />
        </label>
      </form>
      <Failure error={error} />
      <Table
        id="runs"
        rows={pages}
        columns={[
          ["Run", (r) => <a href={"#/runs/" + enc(r.id)}>{r.id}</a>],
          ["Script", (r) => r.script],
          ["Version", (r) => r.version],
          ["Status", (r) => <Status value={r.status} />],
          ["Trigger", (r) => r.trigger],
          ["Duration", (r) => (r.duration_ms === null ? "" : `${r.duration_ms} ms`)],
          ["Created", (r) => when(r.created_at)],
        ]}
        empty="No runs match."
      />
      {next && (
        <button type="button" onClick={() => load(next)}>
          More
        </button>
      )}
    </section>
  );
}

export function RunPage({ id, me }) {
  const [run, setRun] = useState(null);
  const [logs, setLogs] = useState(null);
  const [status, setStatus] = useState(null);
  const [error, setError] = useState(null);
  const [cancel, cancelling, cancelError] = useAction();
  const stop = useRef(null);
  useEffect(() => {
    get(`/v1/runs/${enc(id)}`)
      .then((r) => {
        setRun(r);
        setStatus(r.status);
        if (r.finished_at) {
          setLogs(r.logs);
          return;
        }
        setLogs([]);
        stop.current = follow(id, (event, data) => {
          if (event === "status") setStatus(data.status);
          else if (event === "log") setLogs((l) => [...(l || []), data]);
          else if (event === "run") {
            setRun(data);
            setStatus(data.status);
            setLogs(data.logs);
          }
        });
      })
      .catch(setError);
    return () => stop.current && stop.current();
  }, [id]);
  if (error) return <Failure error={error} />;
  if (!run) return null;
  const inFlight = status === "queued" || status === "running";
  return (
    <section>
      <header class="bar">
        <h2>Run {run.id}</h2>
        {inFlight && can(me, "script.run", run.script) && (
          <button type="button" id="cancel" disabled={cancelling} onClick={() => cancel(async () => setRun(await post(`/v1/runs/${enc(id)}/cancel`)))}>
            Cancel
          </button>
        )}
      </header>
      <Failure error={cancelError} />
      <dl class="facts">
        <dt>Script</dt>
        <dd>
          <a href={"#/scripts/" + enc(run.script)}>{run.script}</a> {run.version}
        </dd>
        <dt>Status</dt>
        <dd>
          <Status value={status} />
        </dd>
        <dt>Trigger</dt>
        <dd>{run.trigger}</dd>
        <dt>By</dt>
        <dd>{run.principal || ""}</dd>
        <dt>Duration</dt>
        <dd>{run.duration_ms === null ? "" : `${run.duration_ms} ms`}</dd>
        <dt>CPU</dt>
        <dd>{run.cpu_ms === null ? "" : `${run.cpu_ms} ms`}</dd>
        <dt>Peak memory</dt>
        <dd>{run.peak_memory_bytes === null ? "" : `${Math.round(run.peak_memory_bytes / 1024)} KiB`}</dd>
        <dt>Created</dt>
        <dd>{when(run.created_at)}</dd>
      </dl>
      <h3>Input</h3>
      <pre>{json(run.input)}</pre>
      <h3>Logs{run.logs_truncated ? " (truncated)" : ""}</h3>
      <pre id="run-logs">{(logs || []).map(logLine).join("\n")}</pre>
      {run.result !== null && (
        <>
          <h3>Result</h3>
          <pre id="run-result">{json(run.result)}</pre>
        </>
      )}
      {run.error && <RunError error={run.error} />}
      <Steps runId={run.id} refresh={`${status}:${(logs || []).length}`} />
    </section>
  );
}
