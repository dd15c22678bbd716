// The code editor: CodeMirror 6 with JS/TS highlighting, the server's
// analyzer as the linter (diagnostics at their line and column as one
// types), and completion for `input` and for the `api.*` the version's
// grant allows.

import { EditorView, basicSetup } from "codemirror";
import { EditorState, Compartment } from "@codemirror/state";
import { javascript } from "@codemirror/lang-javascript";
import { linter, lintGutter, forceLinting } from "@codemirror/lint";
import { autocompletion } from "@codemirror/autocomplete";
import { MergeView } from "@codemirror/merge";
import { post } from "./api.js";

// The page's policy admits only the styles carrying its per-response nonce;
// CodeMirror writes its theme into a <style> element that carries it.
const nonceMeta = document.querySelector('meta[name="citadel-style-nonce"]');
const styleNonce = EditorView.cspNonce.of(nonceMeta ? nonceMeta.content : "");

/** What `api` holds under a grant (the sandbox's names). */
export function apiMembers(capabilities) {
  const c = capabilities || {};
  const members = [];
  const add = (label, detail, type = "function") => members.push({ label, detail, type });
  if (c.http) add("api.http.fetch", "(url, init?) → Response, to the allowed hosts");
  if (c.secrets && c.secrets.length) add("api.secrets.get", `(name) → string: ${c.secrets.join(", ")}`);
  if (c.kv) {
    add("api.kv.get", "(key) → value | null");
    add("api.kv.set", "(key, value, opts?)");
    add("api.kv.delete", "(key)");
  }
  if (c.db && c.db.length) add("api.db.query", `(sql, params?) → rows: ${c.db.join(", ")}`);
  if (c.events && c.events.emit && c.events.emit.length) add("api.events.emit", `(type, data): ${c.events.emit.join(", ")}`);
  if (c.sleep) add("api.sleep", "(ms)");
  if (c.echo) add("api.echo", "(value) → value");
  return members;
}

/** Completion of `input.<key>` from a sample input and of `api.*`. */
function completions(getContext) {
  return (ctx) => {
    const word = ctx.matchBefore(/[\w$.]*/);
    if (!word || (word.from === word.to && !ctx.explicit)) return null;
    const { capabilities, input } = getContext();
    const options = [...apiMembers(capabilities)];
    options.push({ label: "input", type: "variable", detail: "the run's input" });
    if (input && typeof input === "object" && !Array.isArray(input)) {
      for (const k of Object.keys(input)) {
        options.push({ label: `input.${k}`, type: "property", detail: typeof input[k] });
      }
    }
    options.push({ label: "console.log", type: "function", detail: "to the run's log" });
    return { from: word.from, options, validFor: /^[\w$.]*$/ };
  };
}

/** Where a 1-based line and column fall in the document. */
export function offsetOf(doc, line, column) {
  const l = doc.line(Math.min(Math.max(line, 1), doc.lines));
  return Math.min(l.from + Math.max(column - 1, 0), l.to);
}

/**
 * A script editor in `parent`. `getContext()` answers the current
 * `{name, language, capabilities, input}`; `onChange(source)` hears every
 * edit; `onDiagnostics(list)` every analysis.
 */
export function scriptEditor(parent, { source, language, getContext, onChange, onDiagnostics, readOnly }) {
  const lang = new Compartment();
  const analyze = linter(
    async (view) => {
      const { name, language } = getContext();
      let found;
      try {
        found = await post("/v1/scripts:analyze", {
          name: name || undefined,
          source: view.state.doc.toString(),
          language,
        });
      } catch (e) {
        onDiagnostics && onDiagnostics(null, e);
        return [];
      }
      onDiagnostics && onDiagnostics(found.diagnostics);
      const doc = view.state.doc;
      return found.diagnostics.map((d) => {
        const from = offsetOf(doc, d.line, d.column);
        return {
          from,
          to: Math.min(from + 1, doc.length),
          severity: d.severity === "error" ? "error" : d.severity === "warning" ? "warning" : "info",
          message: `${d.message} [${d.rule}]`,
        };
      });
    },
    { delay: 400 },
  );
  const view = new EditorView({
    parent,
    state: EditorState.create({
      doc: source,
      extensions: [
        styleNonce,
        basicSetup,
        lang.of(javascript({ typescript: language === "ts" })),
        lintGutter(),
        analyze,
        autocompletion({ override: [completions(getContext)] }),
        EditorView.updateListener.of((u) => {
          if (u.docChanged && onChange) onChange(u.state.doc.toString());
        }),
        EditorState.readOnly.of(!!readOnly),
      ],
    }),
  });
  return {
    view,
    setLanguage(language) {
      view.dispatch({ effects: lang.reconfigure(javascript({ typescript: language === "ts" })) });
      forceLinting(view);
    },
    setSource(text) {
      view.dispatch({ changes: { from: 0, to: view.state.doc.length, insert: text } });
    },
    relint() {
      forceLinting(view);
    },
    jumpTo(line, column) {
      const at = offsetOf(view.state.doc, line, column || 1);
      view.dispatch({ selection: { anchor: at }, scrollIntoView: true });
      view.focus();
    },
    destroy() {
      view.destroy();
    },
  };
}

/** A plain editor (JSON input, grants, limits). */
export function plainEditor(parent, { text, onChange }) {
  const view = new EditorView({
    parent,
    state: EditorState.create({
      doc: text,
      extensions: [
        styleNonce,
        basicSetup,
        javascript(),
        EditorView.updateListener.of((u) => {
          if (u.docChanged && onChange) onChange(u.state.doc.toString());
        }),
      ],
    }),
  });
  return { view, destroy: () => view.destroy(), text: () => view.state.doc.toString() };
}

/** Two versions side by side, changes marked. */
export function diffView(parent, a, b, language) {
  const ext = [styleNonce, basicSetup, javascript({ typescript: language === "ts" }), EditorState.readOnly.of(true), EditorView.editable.of(false)];
  return new MergeView({ a: { doc: a, extensions: ext }, b: { doc: b, extensions: ext }, parent });
}
