// The console's shell: log in, who the caller is, navigation, and the
// views. Routes live in the URL's fragment (`#/scripts/billing/on-paid`),
// so the server answers one page and no token ever appears in a URL.
//
// Everything tenant-controlled is rendered as text through JSX (which
// escapes it); nothing here sets HTML.

import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { get, post, setToken, token, whenUnauthorized } from "./api.js";
import { Scripts, ScriptPage, NewScript } from "./scripts.jsx";
import { Runs, RunPage } from "./runs.jsx";
import { KillSwitches, Schedules, Jobs, Events, Audit, Tokens, Users } from "./ops.jsx";
import { Dashboard } from "./dashboard.jsx";
import { Nodes, Plugins, Roles, Secrets, Settings, Webhooks, Workflows } from "./more.jsx";
import { Failure } from "./ui.jsx";
import { EmbedApp } from "./embed.jsx";

/** True when the caller holds `permission` (for `path`, or anywhere). */
export function can(me, permission, path) {
  if (!me) return false;
  if (!me.tenant) return permission === "platform.admin";
  return me.grants.some(
    (g) => g.permission === permission && (g.path_prefix === "" || path === undefined || (path && path.startsWith(g.path_prefix))),
  );
}

function useRoute() {
  const [hash, setHash] = useState(location.hash.slice(1) || "/");
  useEffect(() => {
    const on = () => setHash(location.hash.slice(1) || "/");
    addEventListener("hashchange", on);
    return () => removeEventListener("hashchange", on);
  }, []);
  return hash;
}

function Login({ onIn }) {
  const [mode, setMode] = useState("password");
  const [tenant, setTenant] = useState("");
  const [username, setUsername] = useState("");
  const [password, setPassword] = useState("");
  const [pasted, setPasted] = useState("");
  const [error, setError] = useState(null);
  const submit = async (e) => {
    e.preventDefault();
    setError(null);
    try {
      if (mode === "password") {
        const s = await post("/v1/login", { tenant, username, password });
        setToken(s.token);
      } else {
        setToken(pasted.trim());
      }
      onIn(await get("/v1/me"));
    } catch (err) {
      setToken(null);
      setError(err);
    }
  };
  return (
    <main class="login">
      <h1>Citadel</h1>
      <div class="tabs">
        <button type="button" class={mode === "password" ? "on" : ""} onClick={() => setMode("password")}>
          User
        </button>
        <button type="button" class={mode === "token" ? "on" : ""} onClick={() => setMode("token")}>
          API token
        </button>
      </div>
      <form onSubmit={submit} id="login">
        {mode === "password" ? (
          <>
            <label>
              Tenant <input name="tenant" value={tenant} onInput={(e) => setTenant(e.target.value)} required />
            </label>
            <label>
              User <input name="username" value={username} onInput={(e) => setUsername(e.target.value)} required autocomplete="username" />
            </label>
            <label>
              Password{" "}
              <input name="password" type="password" value={password} onInput={(e) => setPassword(e.target.value)} required autocomplete="current-password" />
            </label>
          </>
        ) : (
          <label>
            Token <input name="token" type="password" value={pasted} onInput={(e) => setPasted(e.target.value)} required />
          </label>
        )}
        <button type="submit" id="login-submit">
          Log in
        </button>
        <Failure error={error} />
      </form>
      <p class="hint">The session lasts as long as this tab.</p>
    </main>
  );
}

const NAV = [
  ["/", "Dashboard", "script.read"],
  ["/scripts", "Scripts", "script.read"],
  ["/runs", "Runs", "script.read"],
  ["/kill-switches", "Kill switches", "script.read"],
  ["/schedules", "Schedules", "script.read"],
  ["/events", "Events", "script.read"],
  ["/jobs", "Jobs", "script.read"],
  ["/audit", "Audit", "audit.read"],
  ["/workflows", "Workflows", "script.read"],
  ["/plugins", "Plugins", "script.read"],
  ["/webhooks", "Webhooks", "script.read"],
  ["/secrets", "Secrets", "secret.read"],
  ["/tokens", "Tokens", "token.read"],
  ["/users", "Users", "user.read"],
  ["/roles", "Roles", "role.read"],
  ["/settings", "Settings", "script.read"],
  ["/nodes", "Nodes", "platform.admin"],
];

function View({ route, me }) {
  const [, top, ...rest] = route.split("/");
  const tail = rest.map(decodeURIComponent).join("/");
  switch (top) {
    case "":
      return <Dashboard me={me} />;
    case "scripts":
      return tail ? <ScriptPage key={tail} name={tail} me={me} /> : <Scripts me={me} />;
    case "new":
      return <NewScript me={me} />;
    case "runs":
      return tail ? <RunPage key={tail} id={tail} me={me} /> : <Runs me={me} />;
    case "kill-switches":
      return <KillSwitches me={me} />;
    case "schedules":
      return <Schedules me={me} />;
    case "events":
      return <Events me={me} />;
    case "jobs":
      return <Jobs me={me} />;
    case "audit":
      return <Audit me={me} />;
    case "tokens":
      return <Tokens me={me} />;
    case "users":
      return <Users me={me} />;
    case "roles":
      return <Roles me={me} />;
    case "secrets":
      return <Secrets me={me} />;
    case "settings":
      return <Settings me={me} />;
    case "nodes":
      return <Nodes me={me} />;
    case "workflows":
      return <Workflows me={me} />;
    case "plugins":
      return <Plugins me={me} />;
    case "webhooks":
      return <Webhooks me={me} />;
    default:
      return <p>No such page.</p>;
  }
}

function App() {
  const [me, setMe] = useState(null);
  const [checked, setChecked] = useState(!token());
  const route = useRoute();
  useEffect(() => {
    whenUnauthorized(() => {
      setToken(null);
      setMe(null);
    });
    if (token()) {
      get("/v1/me")
        .then(setMe)
        .catch(() => setToken(null))
        .finally(() => setChecked(true));
    }
  }, []);
  if (!checked) return null;
  if (!me) return <Login onIn={setMe} />;
  const logout = async () => {
    try {
      await post("/v1/logout");
    } finally {
      setToken(null);
      setMe(null);
      location.hash = "#/";
    }
  };
  const who = me.username || me.actor;
  return (
    <div class="shell">
      <nav>
        <div class="brand">Citadel</div>
        <div class="who" id="who">
          {who}
          {me.tenant ? ` · ${me.tenant.name}` : " · platform"}
        </div>
        {NAV.filter(([, , p]) => can(me, p)).map(([href, label]) => (
          <a href={"#" + href} class={route === href || (href !== "/" && route.startsWith(href)) ? "on" : ""}>
            {label}
          </a>
        ))}
        <button type="button" id="logout" onClick={logout}>
          Log out
        </button>
      </nav>
      <main>
        <View route={route} me={me} />
      </main>
    </div>
  );
}

const embedded = location.pathname.startsWith("/embed/");
render(embedded ? <EmbedApp /> : <App />, document.getElementById("app"));
