// More operations: secrets (values write-only), roles with a permission
// picker, tenant settings, nodes, workflows' steps, plugins and webhook
// deliveries.

import dagre from "@dagrejs/dagre";
import { useEffect, useState } from "preact/hooks";
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

const NODE_W = 160;
const NODE_H = 46;

/** Lays a run's graph out with dagre: node boxes and edge polylines. */
function layout(graph) {
  const g = new dagre.graphlib.Graph();
  g.setGraph({ rankdir: "LR", nodesep: 18, ranksep: 44, marginx: 6, marginy: 6 });
  g.setDefaultEdgeLabel(() => ({}));
  for (const s of graph.steps) g.setNode(s.id, { width: NODE_W, height: NODE_H });
  for (const s of graph.steps) for (const d of s.depends_on) g.setEdge(d, s.id);
  dagre.layout(g);
  const nodes = graph.steps.map((s) => ({ step: s, ...g.node(s.id) }));
  const edges = g.edges().map((e) => ({ from: e.v, to: e.w, points: g.edge(e).points }));
  return { nodes, edges, width: g.graph().width, height: g.graph().height };
}

/** A step id cut to fit its box (the whole id is the box's title). */
function fit(text, max) {
  return text.length > max ? text.slice(0, max - 1) + "\u2026" : text;
}

/** A workflow run's DAG, each step boxed with its state (`not reached`
 * before the run gets to it). */
export function Dag({ graph }) {
  const { nodes, edges, width, height } = layout(graph);
  return (
    <svg id="dag" class="dag" width={width} height={height} viewBox={`0 0 ${width} ${height}`} role="img" aria-label={`The steps of ${graph.workflow}`}>
      <defs>
        <marker id="dag-arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto">
          <path d="M0,0 L10,5 L0,10 z" class="dag-arrowhead" />
        </marker>
      </defs>
      {edges.map((e) => (
        <polyline class="dag-edge" data-from={e.from} data-to={e.to} points={e.points.map((p) => `${p.x},${p.y}`).join(" ")} marker-end="url(#dag-arrow)" />
      ))}
      {nodes.map(({ step, x, y }) => {
        const state = step.status || "not_reached";
        return (
          <g class={"dag-node n-" + state} data-step={step.id} data-state={state} transform={`translate(${x - NODE_W / 2},${y - NODE_H / 2})`}>
            <title>{`${step.id} (${step.type}): ${state.replace("_", " ")}`}</title>
            <rect width={NODE_W} height={NODE_H} rx="6" />
            <text x="10" y="19" class="dag-id">{fit(step.id, 20)}</text>
            <text x="10" y="36" class="dag-meta">{`${step.type} \u00b7 ${state.replace("_", " ")}`}</text>
          </g>
        );
      })}
    </svg>
  );
}

/** A workflow run's DAG and its steps' details (shown on its run page;
 * nothing for a script's run). `refresh` changes as the run moves on. */
export function Steps({ runId, refresh }) {
  const [graph, setGraph] = useState(null);
  const [steps, setSteps] = useState([]);
  useEffect(() => {
    let live = true;
    get(`/v1/runs/${enc(runId)}/graph`)
      .then(async (g) => {
        const s = await get(`/v1/runs/${enc(runId)}/steps`);
        if (live) {
          setGraph(g);
          setSteps(s);
        }
      })
      // 404: not a workflow's run, so there is no graph to show.
      .catch(() => live && setGraph(null));
    return () => {
      live = false;
    };
  }, [runId, refresh]);
  if (!graph) return null;
  return (
    <div>
      <h3>Steps</h3>
      <div class="dag-frame">
        <Dag graph={graph} />
      </div>
      <Table
        id="steps"
        rows={steps}
        empty="No step has started yet."
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


