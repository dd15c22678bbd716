// Small pieces every view uses. All of them render text, never HTML.

import { useEffect, useState } from "preact/hooks";

/**
 * What happened in the console (`saved`, `ran`, `submitted`), for the
 * embedded editor to tell its host page.
 */
export const happenings = new EventTarget();
export function announce(type, detail) {
  happenings.dispatchEvent(new CustomEvent("happened", { detail: { type, ...detail } }));
}

export function Failure({ error }) {
  if (!error) return null;
  return (
    <p class="failure" role="alert">
      <code>{error.code || "error"}</code> {error.message}
    </p>
  );
}

export function when(ms) {
  if (ms === null || ms === undefined) return "";
  return new Date(ms).toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z");
}

/** One log line as text: `message`, after its level unless `log`. */
export function logLine(l) {
  if (l && typeof l === "object" && typeof l.message === "string") {
    return l.level && l.level !== "log" ? `[${l.level}] ${l.message}` : l.message;
  }
  return typeof l === "string" ? l : JSON.stringify(l);
}

export function json(value) {
  return JSON.stringify(value, null, 2);
}

/** Loads `load()` on mount and whenever `deps` change. */
export function useLoad(load, deps) {
  const [state, setState] = useState({ data: null, error: null, loading: true });
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let live = true;
    setState((s) => ({ ...s, loading: true }));
    load()
      .then((data) => live && setState({ data, error: null, loading: false }))
      .catch((error) => live && setState({ data: null, error, loading: false }));
    return () => {
      live = false;
    };
  }, [...(deps || []), tick]);
  return { ...state, reload: () => setTick((t) => t + 1) };
}

/** A table of rows: `columns` is [[header, row => cell], …]. */
export function Table({ rows, columns, empty, id }) {
  if (!rows || rows.length === 0) return <p class="empty">{empty || "Nothing here yet."}</p>;
  return (
    <table id={id}>
      <thead>
        <tr>
          {columns.map(([h]) => (
            <th>{h}</th>
          ))}
        </tr>
      </thead>
      <tbody>
        {rows.map((r) => (
          <tr>
            {columns.map(([, cell]) => (
              <td>{cell(r)}</td>
            ))}
          </tr>
        ))}
      </tbody>
    </table>
  );
}

export function Status({ value }) {
  return <span class={"status s-" + value}>{value}</span>;
}

/** Runs `action()`, showing its error; answers [run, busy, error]. */
export function useAction() {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const run = async (action) => {
    setBusy(true);
    setError(null);
    try {
      return await action();
    } catch (e) {
      setError(e);
      return undefined;
    } finally {
      setBusy(false);
    }
  };
  return [run, busy, error];
}
