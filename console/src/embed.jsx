// The embedded editor: what a host product frames at /embed/{tenant} for
// one of its end users. It opens its session from the one-time code in the
// URL's fragment (then drops the fragment), shows only the session's
// folder, and tells the host page what happened through postMessage, to
// the tenant's configured origins only.

import { useEffect, useState } from "preact/hooks";
import { get, post, setToken, token } from "./api.js";
import { Scripts, ScriptPage, NewScript } from "./scripts.jsx";
import { Runs, RunPage } from "./runs.jsx";
import { Failure, happenings } from "./ui.jsx";

const SESSION_KEY = "citadel.embed";

function applyTheme(theme) {
  // Set through the CSSOM, never as markup; the server checked each value's
  // shape (#rrggbb, a plain font name) when the settings were saved.
  const root = document.documentElement.style;
  if (theme.accent) root.setProperty("--accent", theme.accent);
  if (theme.background) root.setProperty("--bg", theme.background);
  if (theme.text) root.setProperty("--fg", theme.text);
  if (theme.font) root.setProperty("font-family", `"${theme.font}", system-ui, sans-serif`);
}

async function open(tenant) {
  const params = new URLSearchParams(location.hash.slice(1));
  const code = params.get("code");
  if (code) {
    // The code is spent by this exchange; it must not linger in the URL.
    history.replaceState(null, "", location.pathname + "#/");
    const s = await post("/v1/embed/exchange", { code, tenant });
    setToken(s.token);
    const info = { tenant: s.tenant, folder: s.folder, end_user: s.end_user, origins: s.origins, theme: s.theme };
    sessionStorage.setItem(SESSION_KEY, JSON.stringify(info));
    return info;
  }
  const kept = sessionStorage.getItem(SESSION_KEY);
  if (token() && kept) return JSON.parse(kept);
  throw { code: "unauthorized", message: "This embedded editor needs a session from the host product." };
}

export function EmbedApp() {
  const tenant = decodeURIComponent(location.pathname.split("/")[2] || "");
  const [session, setSession] = useState(null);
  const [me, setMe] = useState(null);
  const [error, setError] = useState(null);
  const [route, setRoute] = useState("/");
  useEffect(() => {
    open(tenant)
      .then(async (s) => {
        applyTheme(s.theme || {});
        setSession(s);
        setMe(await get("/v1/me"));
        setRoute(location.hash.slice(1) || "/");
      })
      .catch(setError);
    const onHash = () => setRoute(location.hash.slice(1) || "/");
    addEventListener("hashchange", onHash);
    return () => removeEventListener("hashchange", onHash);
  }, []);
  useEffect(() => {
    if (!session) return undefined;
    const tell = (e) => {
      for (const origin of session.origins) {
        // Delivered only if the host page is at that origin.
        window.parent.postMessage({ source: "citadel", ...e.detail }, origin);
      }
    };
    happenings.addEventListener("happened", tell);
    return () => happenings.removeEventListener("happened", tell);
  }, [session]);
  if (error) return <Failure error={error} />;
  if (!session || !me) return null;
  const [, top, ...rest] = route.split("/");
  const tail = rest.map(decodeURIComponent).join("/");
  let view;
  if (top === "scripts" && tail) view = <ScriptPage key={tail} name={tail} me={me} />;
  else if (top === "new") view = <NewScript me={me} folder={session.folder} />;
  else if (top === "runs" && tail) view = <RunPage key={tail} id={tail} me={me} />;
  else if (top === "runs") view = <Runs me={me} />;
  else view = <Scripts me={me} />;
  return (
    <div class="embed">
      <nav class="embed-nav">
        {session.theme && session.theme.logo_url && <img class="logo" src={session.theme.logo_url} alt="" />}
        <a href="#/">Scripts</a>
        <a href="#/runs">Runs</a>
        <span class="muted" id="who">
          {session.end_user} · {session.folder}
        </span>
      </nav>
      <main>{view}</main>
    </div>
  );
}
