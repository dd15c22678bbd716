// Scripts: the list by folder, the editor with the analyzer's diagnostics,
// the grant and limits, versions with their review, diffs, and running.

import { useEffect, useRef, useState } from "preact/hooks";
import { get, post, scriptPath, enc, follow } from "./api.js";
import { can } from "./main.jsx";
import { scriptEditor, plainEditor, diffView } from "./editor.js";
import { Failure, Status, Table, announce, json, logLine, useAction, useLoad, when } from "./ui.jsx";

const folderOf = (name) => (name.includes("/") ? name.slice(0, name.lastIndexOf("/") + 1) : "");

export function Scripts({ me }) {
  const list = useLoad(() => get("/v1/scripts"), []);
  const folders = new Map();
  for (const s of list.data || []) {
    const f = folderOf(s.name);
    if (!folders.has(f)) folders.set(f, []);
    folders.get(f).push(s);
  }
  return (
    <section>
      <header class="bar">
        <h2>Scripts</h2>
        {can(me, "script.write") && (
          <a class="button" href="#/new" id="new-script">
            New script
          </a>
        )}
      </header>
      <Failure error={list.error} />
      {list.data && list.data.length === 0 && <p class="empty">No scripts yet.</p>}
      {[...folders.entries()].map(([folder, scripts]) => (
        <div class="folder">
          <h3>{folder || "(top level)"}</h3>
          <Table
            rows={scripts}
            columns={[
              ["Script", (s) => <a href={"#/scripts/" + scriptPath(s.name)}>{s.name}</a>],
              ["Live", (s) => s.live_version || "none"],
              ["Versions", (s) => s.versions],
              ["Updated", (s) => when(s.updated_at)],
              ["Last run", (s) => <LastRun name={s.name} />],
            ]}
          />
        </div>
      ))}
    </section>
  );
}

function LastRun({ name }) {
  const last = useLoad(() => get(`/v1/runs?script=${enc(name)}&limit=1`), [name]);
  const r = last.data && last.data[0];
  if (!r) return <span class="muted">never</span>;
  return (
    <a href={"#/runs/" + enc(r.id)}>
      <Status value={r.status} /> {when(r.created_at)}
    </a>
  );
}

const STARTER = `// input is the run's input; return the result.
const who: string = input.name ?? "world";
console.log("greeting", who);
return { hello: who };
`;

export function NewScript({ me, folder }) {
  const [name, setName] = useState(folder || "");
  return (
    <section>
      <h2>New script</h2>
      <label>
        Name <input id="script-name" value={name} placeholder="billing/on-paid" onInput={(e) => setName(e.target.value)} />
      </label>
      <Editor me={me} name={name} initial={{ source: STARTER, language: "ts", capabilities: {}, limits: {} }} isNew />
    </section>
  );
}

export function ScriptPage({ name, me }) {
  const [saved, setSaved] = useState(null);
  const versions = useLoad(() => get(`/v1/scripts/${scriptPath(name)}/versions`), [name]);
  const latest = versions.data && versions.data[versions.data.length - 1];
  const source = useLoad(
    () => (latest ? get(`/v1/scripts/${scriptPath(name)}/versions/${enc(latest.version)}`) : Promise.resolve(null)),
    [latest && latest.version],
  );
  return (
    <section>
      <header class="bar">
        <h2 id="script-title">{name}</h2>
      </header>
      <Failure error={versions.error || source.error} />
      {source.data && (
        <Editor
          key={source.data.version}
          me={me}
          name={name}
          initial={source.data}
          saved={saved}
          onSaved={(v) => {
            setSaved(v);
            versions.reload();
          }}
          versions={versions.data}
        />
      )}
      {versions.data && <Versions name={name} me={me} versions={versions.data} onChange={() => versions.reload()} />}
      {versions.data && versions.data.length > 1 && <Diff name={name} versions={versions.data} />}
    </section>
  );
}

function parseJson(text, what) {
  try {
    return [JSON.parse(text || "null"), null];
  } catch (e) {
    return [null, { code: "invalid_json", message: `${what}: ${e.message}` }];
  }
}

function Editor({ me, name, initial, isNew, onSaved, versions, saved }) {
  const host = useRef(null);
  const grantHost = useRef(null);
  const limitsHost = useRef(null);
  const editor = useRef(null);
  const grantEditor = useRef(null);
  const limitsEditor = useRef(null);
  const ctx = useRef({});
  const [language, setLanguage] = useState(initial.language === "js" ? "js" : "ts");
  const [note, setNote] = useState("");
  const [diagnostics, setDiagnostics] = useState([]);
  const [save, saving, saveError] = useAction();
  const mayWrite = can(me, "script.write", name || undefined);
  ctx.current.name = name;
  ctx.current.language = language;

  useEffect(() => {
    ctx.current.capabilities = initial.capabilities || {};
    editor.current = scriptEditor(host.current, {
      source: initial.source || "",
      language,
      readOnly: !mayWrite,
      getContext: () => ctx.current,
      onDiagnostics: (d) => d && setDiagnostics(d),
    });
    grantEditor.current = plainEditor(grantHost.current, {
      text: json(initial.capabilities || {}),
      onChange: (t) => {
        const [v] = parseJson(t, "capabilities");
        if (v) ctx.current.capabilities = v;
      },
    });
    limitsEditor.current = plainEditor(limitsHost.current, { text: json(initial.limits || {}) });
    return () => {
      editor.current.destroy();
      grantEditor.current.destroy();
      limitsEditor.current.destroy();
    };
  }, []);

  const onLanguage = (l) => {
    setLanguage(l);
    ctx.current.language = l;
    editor.current.setLanguage(l);
  };

  const doSave = () =>
    save(async () => {
      const [capabilities, e1] = parseJson(grantEditor.current.text(), "capabilities");
      if (e1) throw e1;
      const [limits, e2] = parseJson(limitsEditor.current.text(), "limits");
      if (e2) throw e2;
      const v = await post("/v1/scripts", {
        name,
        source: editor.current.view.state.doc.toString(),
        language,
        capabilities: capabilities || {},
        limits: limits || {},
        change_note: note,
      });
      setNote("");
      announce("saved", { script: name, version: v.version, state: v.state });
      if (isNew) location.hash = "#/scripts/" + scriptPath(name);
      else onSaved && onSaved(v);
      return v;
    });

  const errors = diagnostics.filter((d) => d.severity === "error").length;
  const live = versions && versions.find((v) => v.live);
  return (
    <div class="editor-area">
      <div class="editor-main">
        <div class="toolbar">
          <label>
            Language{" "}
            <select id="language" value={language} onChange={(e) => onLanguage(e.target.value)} disabled={!mayWrite}>
              <option value="ts">TypeScript</option>
              <option value="js">JavaScript</option>
            </select>
          </label>
          <span id="diagnostic-count" class={errors ? "bad" : "good"}>
            {errors ? `${errors} blocking` : "no blocking findings"}
          </span>
        </div>
        <div class="code" id="editor" ref={host} />
        <ul class="diagnostics" id="diagnostics">
          {diagnostics.map((d) => (
            <li class={"d-" + d.severity}>
              <button type="button" class="link" onClick={() => editor.current.jumpTo(d.line, d.column)}>
                {d.line}:{d.column}
              </button>{" "}
              {d.message} <code>{d.rule}</code>
            </li>
          ))}
        </ul>
        {mayWrite && (
          <div class="save">
            <input id="change-note" placeholder="Change note" value={note} onInput={(e) => setNote(e.target.value)} />
            <button type="button" id="save" onClick={doSave} disabled={saving || !name}>
              Save
            </button>
            {saved && (
              <span id="saved" class="good">
                Saved {saved.version} ({saved.state})
              </span>
            )}
          </div>
        )}
        <Failure error={saveError} />
        {saveError && saveError.details && saveError.details.diagnostics && (
          <ul class="diagnostics">
            {saveError.details.diagnostics.map((d) => (
              <li class={"d-" + d.severity}>
                {d.line}:{d.column} {d.message} <code>{d.rule}</code>
              </li>
            ))}
          </ul>
        )}
      </div>
      <aside class="editor-side">
        <h3>Grant</h3>
        <div class="code small" id="grant" ref={grantHost} />
        <h3>Limits</h3>
        <div class="code small" id="limits" ref={limitsHost} />
        {!isNew && can(me, "script.run", name) && (
          <RunPanel name={name} live={live} jumpTo={(l, c) => editor.current.jumpTo(l, c)} onInput={(v) => (ctx.current.input = v)} />
        )}
      </aside>
    </div>
  );
}

function RunPanel({ name, live, jumpTo, onInput }) {
  const inputHost = useRef(null);
  const inputEditor = useRef(null);
  const [run, setRun] = useState(null);
  const [logs, setLogs] = useState([]);
  const [status, setStatus] = useState(null);
  const [start, busy, error] = useAction();
  const stop = useRef(null);
  useEffect(() => {
    inputEditor.current = plainEditor(inputHost.current, {
      text: '{ "name": "Ada" }',
      onChange: (t) => {
        const [v] = parseJson(t, "input");
        if (v) onInput(v);
      },
    });
    onInput({ name: "Ada" });
    return () => {
      inputEditor.current.destroy();
      stop.current && stop.current();
    };
  }, []);
  const go = () =>
    start(async () => {
      const [input, bad] = parseJson(inputEditor.current.text(), "input");
      if (bad) throw bad;
      stop.current && stop.current();
      setRun(null);
      setLogs([]);
      setStatus("queued");
      const accepted = await post(`/v1/scripts/${scriptPath(name)}/run`, { input, wait: false });
      stop.current = follow(accepted.run_id, (event, data) => {
        if (event === "status") setStatus(data.status);
        else if (event === "log") setLogs((l) => [...l, data]);
        else if (event === "run") {
          setRun(data);
          setStatus(data.status);
          announce("ran", { script: name, run_id: data.id, status: data.status });
        }
      });
    });
  return (
    <div class="run-panel">
      <h3>Run</h3>
      <p class="muted">{live ? `Runs the live version ${live.version}.` : "No version is live yet."}</p>
      <div class="code small" id="run-input" ref={inputHost} />
      <button type="button" id="run" onClick={go} disabled={busy || !live}>
        Run
      </button>
      <Failure error={error} />
      {status && (
        <div class="run-out" id="run-out">
          <p>
            <Status value={status} />
            {run && (
              <span class="muted">
                {" "}
                {run.duration_ms} ms · CPU {run.cpu_ms} ms · peak {Math.round((run.peak_memory_bytes || 0) / 1024)} KiB ·{" "}
                <a href={"#/runs/" + enc(run.id)}>details</a>
              </span>
            )}
          </p>
          <h4>Logs</h4>
          <pre id="run-logs">{logs.map(logLine).join("\n")}</pre>
          {run && run.result !== null && (
            <>
              <h4>Result</h4>
              <pre id="run-result">{json(run.result)}</pre>
            </>
          )}
          {run && run.error && <RunError error={run.error} jumpTo={jumpTo} />}
        </div>
      )}
    </div>
  );
}

export function RunError({ error, jumpTo }) {
  return (
    <div class="run-error" id="run-error">
      <code>{error.code}</code> {error.name ? `${error.name}: ` : ""}
      {error.message}
      {error.line ? (
        jumpTo ? (
          <button type="button" class="link" id="error-location" onClick={() => jumpTo(error.line, error.column)}>
            {" "}
            at {error.line}:{error.column}
          </button>
        ) : (
          <span>
            {" "}
            at {error.line}:{error.column}
          </span>
        )
      ) : null}
    </div>
  );
}

function Versions({ name, me, versions, onChange }) {
  const [act, busy, error] = useAction();
  const [reason, setReason] = useState("");
  const base = `/v1/scripts/${scriptPath(name)}`;
  const mayApprove = can(me, "script.approve", name);
  const mayWrite = can(me, "script.write", name);
  const mine = (v) => v.author === me.person;
  const step = (f) => act(async () => (await f(), onChange()));
  return (
    <div class="versions">
      <h3>Versions</h3>
      <Failure error={error} />
      <Table
        id="versions"
        rows={[...versions].reverse()}
        columns={[
          ["Version", (v) => v.version],
          ["State", (v) => <Status value={v.state} />],
          ["Live", (v) => (v.live ? "live" : "")],
          ["Note", (v) => v.change_note],
          ["Author", (v) => (mine(v) ? "you" : v.author)],
          ["Reviewed", (v) => (v.reviewed_by ? `${v.reviewed_by}${v.review_reason ? ": " + v.review_reason : ""}` : "")],
          ["Saved", (v) => when(v.created_at)],
          [
            "",
            (v) => (
              <span class="actions" data-version={v.version}>
                {v.state === "draft" && mayWrite && (
                  <button
                    type="button"
                    class="submit"
                    disabled={busy}
                    onClick={() =>
                      step(async () => {
                        await post(`${base}/versions/${enc(v.version)}/submit`);
                        announce("submitted", { script: name, version: v.version });
                      })
                    }
                  >
                    Submit
                  </button>
                )}
                {v.state === "submitted" && mayApprove && !mine(v) && (
                  <>
                    <button type="button" class="approve" disabled={busy} onClick={() => step(() => post(`${base}/versions/${enc(v.version)}/approve`))}>
                      Approve
                    </button>
                    <button
                      type="button"
                      class="reject"
                      disabled={busy || !reason}
                      onClick={() => step(() => post(`${base}/versions/${enc(v.version)}/reject`, { reason }))}
                    >
                      Reject
                    </button>
                  </>
                )}
                {v.state === "submitted" && mayApprove && mine(v) && <span class="muted self-review">You wrote this version: another reviewer approves it.</span>}
                {v.state === "approved" && !v.live && (mayApprove || mayWrite) && (
                  <button type="button" class="rollback" disabled={busy} onClick={() => step(() => post(`${base}/rollback`, { version: v.version }))}>
                    Make live
                  </button>
                )}
              </span>
            ),
          ],
        ]}
      />
      {mayApprove && versions.some((v) => v.state === "submitted" && !mine(v)) && (
        <label>
          Reason to reject <input id="reject-reason" value={reason} onInput={(e) => setReason(e.target.value)} />
        </label>
      )}
    </div>
  );
}

function Diff({ name, versions }) {
  const [from, setFrom] = useState(versions[versions.length - 2].version);
  const [to, setTo] = useState(versions[versions.length - 1].version);
  const host = useRef(null);
  const [error, setError] = useState(null);
  const [changed, setChanged] = useState(null);
  useEffect(() => {
    let view = null;
    let live = true;
    const base = `/v1/scripts/${scriptPath(name)}`;
    Promise.all([
      get(`${base}/versions/${enc(from)}`),
      get(`${base}/versions/${enc(to)}`),
      get(`${base}/diff?from=${enc(from)}&to=${enc(to)}`),
    ])
      .then(([a, b, d]) => {
        if (!live) return;
        setChanged(d);
        host.current.textContent = "";
        view = diffView(host.current, a.source, b.source, b.language);
      })
      .catch(setError);
    return () => {
      live = false;
      view && view.destroy();
    };
  }, [from, to]);
  const pick = (value, set, id) => (
    <select id={id} value={value} onChange={(e) => set(e.target.value)}>
      {versions.map((v) => (
        <option value={v.version}>{v.version}</option>
      ))}
    </select>
  );
  return (
    <div class="diff">
      <h3>
        Diff {pick(from, setFrom, "diff-from")} → {pick(to, setTo, "diff-to")}
      </h3>
      <Failure error={error} />
      {changed && (
        <p class="muted">
          {changed.capabilities_changed ? "The grant changed. " : ""}
          {changed.limits_changed ? "The limits changed." : ""}
        </p>
      )}
      <div id="diff" ref={host} />
    </div>
  );
}
