// Operations: kill switches, schedules, events, jobs and dead letters, the
// audit log, tokens and users.

import { useState } from "preact/hooks";
import { del, get, page, path, post, enc, scriptPath } from "./api.js";
import { can } from "./main.jsx";
import { Failure, Status, Table, json, useAction, useLoad, when } from "./ui.jsx";

const SCOPES = {
  tenant: "every script of the tenant",
  folder: "every script in a folder (target ends in /)",
  script: "one script (target is its name)",
};

export function KillSwitches({ me }) {
  const list = useLoad(() => get("/v1/kill-switch"), []);
  const [scope, setScope] = useState("script");
  const [target, setTarget] = useState("");
  const [reason, setReason] = useState("");
  const [act, busy, error] = useAction();
  const mayWrite = can(me, "killswitch.write");
  const body = (s) => ({ scope: s.scope, target: s.target });
  return (
    <section>
      <h2>Kill switches</h2>
      <p class="muted">An engaged switch refuses new runs and stops those in flight for what it covers.</p>
      <Failure error={list.error || error} />
      <Table
        id="switches"
        rows={list.data}
        empty="No switch is engaged."
        columns={[
          ["Scope", (s) => s.scope],
          ["Covers", (s) => (s.target ? s.target : SCOPES[s.scope] || "the platform")],
          ["Reason", (s) => s.reason],
          ["By", (s) => s.engaged_by || ""],
          ["Since", (s) => when(s.engaged_at)],
          [
            "",
            (s) =>
              mayWrite &&
              s.scope !== "platform" && (
                <button type="button" class="release" disabled={busy} onClick={() => act(async () => (await post("/v1/kill-switch/release", body(s)), list.reload()))}>
                  Release
                </button>
              ),
          ],
        ]}
      />
      {mayWrite && (
        <form
          class="inline"
          id="engage"
          onSubmit={(e) => {
            e.preventDefault();
            act(async () => {
              await post("/v1/kill-switch", { scope, target: scope === "tenant" ? "" : target, reason });
              setReason("");
              list.reload();
            });
          }}
        >
          <select id="switch-scope" value={scope} onChange={(e) => setScope(e.target.value)}>
            {Object.keys(SCOPES).map((s) => (
              <option value={s}>{s}</option>
            ))}
          </select>
          {scope !== "tenant" && <input id="switch-target" placeholder={scope === "folder" ? "billing/" : "billing/on-paid"} value={target} onInput={(e) => setTarget(e.target.value)} />}
          <input id="switch-reason" placeholder="Reason" value={reason} onInput={(e) => setReason(e.target.value)} required />
          <button type="submit" id="switch-engage" disabled={busy}>
            Engage
          </button>
          <span class="muted">{SCOPES[scope]}</span>
        </form>
      )}
    </section>
  );
}

export function Schedules({ me }) {
  const list = useLoad(() => get("/v1/schedules"), []);
  const [act, busy, error] = useAction();
  return (
    <section>
      <h2>Schedules</h2>
      <Failure error={list.error || error} />
      <Table
        rows={list.data}
        empty="No schedules."
        columns={[
          ["Name", (s) => s.name],
          ["Script", (s) => <a href={"#/scripts/" + scriptPath(s.script)}>{s.script}</a>],
          ["Cron", (s) => `${s.cron} (${s.timezone})`],
          ["Enabled", (s) => (s.enabled ? "yes" : "no")],
          ["Next", (s) => (s.next_fire_times || []).slice(0, 3).map((f) => when(f.at ?? f)).join(", ") || when(s.next_fire_at)],
          ["Last fired", (s) => when(s.last_fired_at)],
          [
            "",
            (s) =>
              can(me, "script.run", s.script) && (
                <button type="button" disabled={busy} onClick={() => act(async () => (await post(`/v1/schedules/${enc(s.name)}/run-now`), list.reload()))}>
                  Run now
                </button>
              ),
          ],
        ]}
      />
    </section>
  );
}

export function Events() {
  const list = useLoad(() => get("/v1/events?limit=50"), []);
  const subs = useLoad(() => get("/v1/subscriptions"), []);
  const [open, setOpen] = useState(null);
  const detail = useLoad(() => (open ? get(`/v1/events/${enc(open)}`) : Promise.resolve(null)), [open]);
  const events = list.data ? list.data.events || list.data : null;
  return (
    <section>
      <h2>Events</h2>
      <h3>Subscriptions</h3>
      <Failure error={subs.error} />
      <Table rows={subs.data} empty="No subscriptions." columns={[["Name", (s) => s.name], ["Event", (s) => s.event_type || s.type || s.on], ["Script", (s) => s.script]]} />
      <h3>Recent events</h3>
      <Failure error={list.error} />
      <Table
        rows={events}
        empty="No events."
        columns={[
          ["Event", (e) => <button type="button" class="link" onClick={() => setOpen(e.id)}>{e.id}</button>],
          ["Type", (e) => e.type],
          ["Source", (e) => e.source],
          ["At", (e) => when(e.created_at)],
        ]}
      />
      {detail.data && (
        <div>
          <h3>Event {detail.data.id}</h3>
          <pre>{json(detail.data.data)}</pre>
          <Table
            rows={detail.data.deliveries}
            empty="No subscriber."
            columns={[
              ["Subscriber", (d) => d.subscription || d.script || d.target],
              ["Status", (d) => <Status value={d.status} />],
              ["Run", (d) => (d.run_id ? <a href={"#/runs/" + enc(d.run_id)}>{d.run_id}</a> : "")],
            ]}
          />
        </div>
      )}
    </section>
  );
}

export function Jobs({ me }) {
  const [state, setState] = useState("dead");
  const list = useLoad(() => page(path("/v1/jobs", { state, limit: 100 })), [state]);
  const [act, busy, error] = useAction();
  return (
    <section>
      <h2>Jobs</h2>
      <select value={state} onChange={(e) => setState(e.target.value)}>
        {["dead", "queued", "running", "failed", "succeeded", "cancelled"].map((s) => (
          <option value={s}>{s === "dead" ? "dead letters" : s}</option>
        ))}
      </select>
      <Failure error={list.error || error} />
      <Table
        rows={list.data && list.data.items}
        empty="No jobs."
        columns={[
          ["Job", (j) => j.id],
          ["Kind", (j) => j.kind],
          ["State", (j) => <Status value={j.state} />],
          ["Attempts", (j) => `${j.attempts}/${j.max_attempts}`],
          ["Run at", (j) => when(j.run_at)],
          [
            "",
            (j) =>
              j.state === "dead" &&
              can(me, "script.run") && (
                <button type="button" disabled={busy} onClick={() => act(async () => (await post(`/v1/jobs/${enc(j.id)}/retry`), list.reload()))}>
                  Retry
                </button>
              ),
          ],
        ]}
      />
    </section>
  );
}

export function Audit() {
  const [filter, setFilter] = useState({ action: "", principal: "", outcome: "" });
  const [before, setBefore] = useState(undefined);
  const list = useLoad(() => get(path("/v1/audit", { ...filter, before, limit: 50 })), [filter, before]);
  const field = (k) => (e) => {
    setBefore(undefined);
    setFilter({ ...filter, [k]: e.target.value });
  };
  const entries = list.data && list.data.entries;
  const chain = useLoad(() => get("/v1/audit/verify"), []);
  return (
    <section>
      <h2>Audit log</h2>
      {chain.data && (
        <p id="chain" class={chain.data.intact ? "good" : "bad"}>
          {chain.data.intact
            ? "The hash chain verifies: no entry was edited or deleted."
            : `The hash chain breaks at entry ${chain.data.broken_at}: an entry was edited or deleted.`}
        </p>
      )}
      <Failure error={chain.error} />
      <form class="filters" onSubmit={(e) => e.preventDefault()}>
        <input placeholder="action" value={filter.action} onChange={field("action")} />
        <input placeholder="principal" value={filter.principal} onChange={field("principal")} />
        <select value={filter.outcome} onChange={field("outcome")}>
          {["", "ok", "denied", "rejected", "failed"].map((s) => (
            <option value={s}>{s || "any outcome"}</option>
          ))}
        </select>
      </form>
      <Failure error={list.error} />
      <Table
        id="audit"
        rows={entries}
        columns={[
          ["#", (e) => e.seq],
          ["At", (e) => when(e.at)],
          ["Who", (e) => e.principal || ""],
          ["Action", (e) => e.action],
          ["Target", (e) => e.target],
          ["Outcome", (e) => <Status value={e.outcome} />],
          ["Details", (e) => <code>{JSON.stringify(e.details)}</code>],
        ]}
      />
      {list.data && list.data.next_before && (
        <button type="button" onClick={() => setBefore(list.data.next_before)}>
          Older
        </button>
      )}
    </section>
  );
}

export function Tokens({ me }) {
  const list = useLoad(() => get("/v1/tokens"), []);
  const [act, busy, error] = useAction();
  const [form, setForm] = useState({ name: "", role: "developer", path_prefix: "" });
  const [minted, setMinted] = useState(null);
  const field = (k) => (e) => setForm({ ...form, [k]: e.target.value });
  return (
    <section>
      <h2>Tokens</h2>
      <Failure error={list.error || error} />
      <Table
        rows={list.data}
        columns={[
          ["Name", (t) => t.name],
          ["Id", (t) => t.id],
          ["Roles", (t) => (t.roles || []).map((r) => (r.path_prefix ? `${r.role} in ${r.path_prefix}` : r.role)).join(", ")],
          ["Expires", (t) => when(t.expires_at)],
          ["Revoked", (t) => when(t.revoked_at)],
          [
            "",
            (t) =>
              can(me, "token.write") &&
              !t.revoked_at &&
              t.id !== me.token_id && (
                <button type="button" disabled={busy} onClick={() => act(async () => (await del(`/v1/tokens/${enc(t.id)}`), list.reload()))}>
                  Revoke
                </button>
              ),
          ],
        ]}
      />
      {can(me, "token.write") && (
        <form
          class="inline"
          id="new-token"
          onSubmit={(e) => {
            e.preventDefault();
            act(async () => {
              setMinted(await post("/v1/tokens", form));
              list.reload();
            });
          }}
        >
          <input placeholder="name" value={form.name} onInput={field("name")} required />
          <input placeholder="role" value={form.role} onInput={field("role")} required />
          <input placeholder="folder (billing/), empty: the tenant" value={form.path_prefix} onInput={field("path_prefix")} />
          <button type="submit" disabled={busy}>
            Create token
          </button>
        </form>
      )}
      {minted && (
        <p class="good" id="minted">
          Token {minted.name}: <code>{minted.secret}</code> — shown this once; copy it now.
        </p>
      )}
    </section>
  );
}

export function Users({ me }) {
  const list = useLoad(() => get("/v1/users"), []);
  const [form, setForm] = useState({ username: "", password: "", role: "developer", path_prefix: "" });
  const [act, busy, error] = useAction();
  const field = (k) => (e) => setForm({ ...form, [k]: e.target.value });
  return (
    <section>
      <h2>Users</h2>
      <Failure error={list.error || error} />
      {can(me, "user.write") && (
        <form
          class="inline"
          id="new-user"
          onSubmit={(e) => {
            e.preventDefault();
            act(async () => {
              await post("/v1/users", form);
              setForm({ ...form, username: "", password: "" });
              list.reload();
            });
          }}
        >
          <input placeholder="username" value={form.username} onInput={field("username")} required />
          <input type="password" placeholder="password (12+ characters)" value={form.password} onInput={field("password")} required autocomplete="new-password" />
          <input placeholder="role" value={form.role} onInput={field("role")} required />
          <input placeholder="folder (billing/), empty: the tenant" value={form.path_prefix} onInput={field("path_prefix")} />
          <button type="submit" disabled={busy}>
            Add user
          </button>
        </form>
      )}
      <Table
        rows={list.data}
        columns={[
          ["User", (u) => u.username],
          ["Id", (u) => u.id],
          ["Created", (u) => when(u.created_at)],
          ["Disabled", (u) => when(u.disabled_at)],
          [
            "",
            (u) =>
              can(me, "user.write") &&
              !u.disabled_at &&
              u.id !== me.user_id && (
                <button type="button" class="disable-user" data-user={u.username} disabled={busy} onClick={() => act(async () => (await del(`/v1/users/${enc(u.id)}`), list.reload()))}>
                  Disable
                </button>
              ),
          ],
        ]}
      />
    </section>
  );
}
