// More operations: secrets (values write-only), roles with a permission
// picker, tenant settings, nodes, workflows' steps, plugins and webhook
// deliveries.

import { useState } from "preact/hooks";
import { get, post, put, enc } from "./api.js";
import { can } from "./main.jsx";
import { Failure, Status, Table, json, useAction, useLoad, when } from "./ui.jsx";


export function Secrets({ me }) {
  const list = useLoad(() => get("/v1/secrets"), []);
  const [name, setName] = useState("");
  const [value, setValue] = useState("");
  const [act, busy, error] = useAction();
  const mayWrite = can(me, "secret.write");
  return (
    <section>
      <h2>Secrets</h2>
      <p class="muted">Names and metadata only: a value is written here and never shown again.</p>
      <Failure error={list.error || error} />
      <Table
        rows={list.data}
        empty="No secrets."
        columns={[
          ["Name", (s) => s.name],
          ["Version", (s) => s.version],
          ["Description", (s) => s.description],
          ["Rotated", (s) => when(s.rotated_at || s.created_at)],
          ["Expires", (s) => (s.expired ? "expired" : when(s.expires_at))],
          ["Last used", (s) => when(s.last_used_at)],
        ]}
      />
      {mayWrite && (
        <form
          class="inline"
          onSubmit={(e) => {
            e.preventDefault();
            act(async () => {
              const existing = (list.data || []).some((s) => s.name === name);
              if (existing) await put(`/v1/secrets/${enc(name)}`, { value });
              else await post("/v1/secrets", { name, value });
              setValue("");
              list.reload();
            });
          }}
        >
          <input placeholder="NAME" value={name} onInput={(e) => setName(e.target.value)} required />
          <input type="password" placeholder="value" value={value} onInput={(e) => setValue(e.target.value)} required autocomplete="off" />
          <button type="submit" disabled={busy}>
            Set (create or rotate)
          </button>
        </form>
      )}
    </section>
  );
}

export function Roles({ me }) {
  const list = useLoad(() => get("/v1/roles"), []);
  const [name, setName] = useState("");
  const [picked, setPicked] = useState([]);
  const [act, busy, error] = useAction();
  const toggle = (p) => setPicked(picked.includes(p) ? picked.filter((x) => x !== p) : [...picked, p]);
  return (
    <section>
      <h2>Roles</h2>
      <Failure error={list.error || error} />
      <Table
        rows={list.data && list.data.roles}
        columns={[
          ["Role", (r) => r.name],
          ["Kind", (r) => (r.builtin ? "built-in" : "custom")],
          ["Permissions", (r) => r.permissions.join(", ")],
        ]}
      />
      {can(me, "role.write") && (
        <form
          onSubmit={(e) => {
            e.preventDefault();
            act(async () => {
              await put(`/v1/roles/${enc(name)}`, { permissions: picked });
              list.reload();
            });
          }}
        >
          <h3>Custom role</h3>
          <input placeholder="name" value={name} onInput={(e) => setName(e.target.value)} required />
          <div class="picker">
            {(list.data ? list.data.permissions : []).map(([p, what]) => (
              <label title={what}>
                <input type="checkbox" checked={picked.includes(p)} onChange={() => toggle(p)} /> {p}
              </label>
            ))}
          </div>
          <button type="submit" disabled={busy}>
            Save role
          </button>
          <p class="muted">Bind it to a token or user with a folder scope (`billing/`) from Tokens or the CLI.</p>
        </form>
      )}
    </section>
  );
}

export function Settings({ me }) {
  const current = useLoad(() => get("/v1/settings"), []);
  const [text, setText] = useState(null);
  const [act, busy, error] = useAction();
  const shown = text ?? (current.data ? json(current.data) : "");
  return (
    <section>
      <h2>Tenant settings</h2>
      <p class="muted">Approval, default limits, analyzer policy, time zone, outgoing HTTP ceiling, plugin ceiling, embedding.</p>
      <Failure error={current.error || error} />
      <textarea class="json" rows={18} value={shown} onInput={(e) => setText(e.target.value)} readOnly={!can(me, "settings.write")} />
      {can(me, "settings.write") && (
        <button
          type="button"
          disabled={busy}
          onClick={() =>
            act(async () => {
              await put("/v1/settings", JSON.parse(shown));
              setText(null);
              current.reload();
            })
          }
        >
          Save settings
        </button>
      )}
    </section>
  );
}

export function Nodes() {
  const list = useLoad(() => get("/v1/nodes"), []);
  return (
    <section>
      <h2>Nodes</h2>
      <Failure error={list.error} />
      <Table
        rows={list.data}
        columns={[
          ["Node", (n) => n.id],
          ["Role", (n) => n.role],
          ["State", (n) => <Status value={n.state} />],
          ["Host", (n) => n.hostname],
          ["Version", (n) => n.version],
          ["Running", (n) => n.running],
          ["Heartbeat", (n) => when(n.heartbeat_at)],
        ]}
      />
    </section>
  );
}

export function Workflows() {
  const list = useLoad(() => get("/v1/workflows"), []);
  return (
    <section>
      <h2>Workflows</h2>
      <Failure error={list.error} />
      <Table
        rows={list.data}
        empty="No workflows."
        columns={[
          ["Workflow", (w) => w.name],
          ["Live", (w) => w.live_version || "none"],
          ["Versions", (w) => w.versions],
          ["Updated", (w) => when(w.updated_at)],
        ]}
      />
    </section>
  );
}

/** A workflow run's steps with their states (shown on its run page). */
export function Steps({ runId }) {
  const steps = useLoad(() => get(`/v1/runs/${enc(runId)}/steps`), [runId]);
  if (steps.error || !steps.data || steps.data.length === 0) return null;
  return (
    <div>
      <h3>Steps</h3>
      <Table
        id="steps"
        rows={steps.data}
        columns={[
          ["Step", (s) => s.id],
          ["Kind", (s) => s.kind],
          ["State", (s) => <Status value={s.status} />],
          ["Attempts", (s) => s.attempts],
          ["Started", (s) => when(s.started_at)],
          ["Output", (s) => <code>{JSON.stringify(s.output)}</code>],
        ]}
      />
    </div>
  );
}

export function Plugins() {
  const list = useLoad(() => get("/v1/plugins"), []);
  return (
    <section>
      <h2>Plugins</h2>
      <Failure error={list.error} />
      <Table
        rows={list.data}
        empty="No plugins installed."
        columns={[
          ["Plugin", (p) => p.slug],
          ["Name", (p) => p.name],
          ["Version", (p) => p.version],
          ["Enabled", (p) => (p.enabled ? "yes" : "no")],
          ["Description", (p) => p.description],
        ]}
      />
    </section>
  );
}

export function Webhooks() {
  const list = useLoad(() => get("/v1/webhooks"), []);
  const [open, setOpen] = useState(null);
  const deliveries = useLoad(() => (open ? get(`/v1/webhooks/${enc(open)}/deliveries`) : Promise.resolve(null)), [open]);
  const [act, busy, error] = useAction();
  const rows = deliveries.data ? deliveries.data.deliveries || deliveries.data : null;
  return (
    <section>
      <h2>Webhooks</h2>
      <Failure error={list.error || error} />
      <Table
        rows={list.data}
        empty="No endpoints."
        columns={[
          ["Endpoint", (w) => <button type="button" class="link" onClick={() => setOpen(w.name)}>{w.name}</button>],
          ["On", (w) => w.on.join(", ")],
          ["Enabled", (w) => (w.enabled ? "yes" : `no${w.disabled_reason ? ": " + w.disabled_reason : ""}`)],
          ["Version", (w) => w.version],
        ]}
      />
      {open && (
        <>
          <h3>Deliveries of {open}</h3>
          <Failure error={deliveries.error} />
          <Table
            rows={rows}
            empty="No deliveries."
            columns={[
              ["Delivery", (d) => d.id],
              ["Event", (d) => d.event_type],
              ["State", (d) => <Status value={d.state} />],
              ["Attempts", (d) => d.attempts],
              ["Last status", (d) => d.last_status ?? d.last_error ?? ""],
              ["Updated", (d) => when(d.updated_at)],
              [
                "",
                (d) => (
                  <button type="button" disabled={busy} onClick={() => act(async () => (await post(`/v1/webhooks/${enc(open)}/deliveries/${enc(d.id)}/redeliver`), deliveries.reload()))}>
                    Redeliver
                  </button>
                ),
              ],
            ]}
          />
        </>
      )}
    </section>
  );
}


