// The dashboard: runs and failures per bucket, and per-script p50/p99
// duration and CPU, from GET /v1/stats (charts by uPlot).

import { useEffect, useRef, useState } from "preact/hooks";
import uPlot from "uplot";
import { get } from "./api.js";
import { Failure, Table, useLoad } from "./ui.jsx";

function Chart({ stats }) {
  const host = useRef(null);
  useEffect(() => {
    const perMinute = 60_000 / stats.bucket_ms;
    const xs = [];
    const runs = [];
    const failed = [];
    const byStart = new Map(stats.buckets.map((b) => [b.start, b]));
    const first = stats.since - (stats.since % stats.bucket_ms);
    for (let t = first; t <= Date.now(); t += stats.bucket_ms) {
      const b = byStart.get(t);
      xs.push(t / 1000);
      runs.push(b ? b.finished * perMinute : 0);
      failed.push(b ? b.failed * perMinute : 0);
    }
    const plot = new uPlot(
      {
        width: Math.min(host.current.clientWidth || 800, 1000),
        height: 220,
        series: [
          {},
          { label: "runs/min", stroke: "#2563eb", width: 2 },
          { label: "failed/min", stroke: "#dc2626", width: 2 },
        ],
        axes: [{}, { label: "per minute" }],
      },
      [xs, runs, failed],
      host.current,
    );
    return () => plot.destroy();
  }, [stats]);
  return <div class="chart" id="chart" ref={host} />;
}

export function Dashboard() {
  const [window, setWindow] = useState("hour");
  const stats = useLoad(() => get(`/v1/stats?window=${window}`), [window]);
  const s = stats.data;
  const total = s ? s.buckets.reduce((n, b) => n + b.finished, 0) : 0;
  const failed = s ? s.buckets.reduce((n, b) => n + b.failed, 0) : 0;
  return (
    <section>
      <header class="bar">
        <h2>Dashboard</h2>
        <select id="window" value={window} onChange={(e) => setWindow(e.target.value)}>
          <option value="hour">last hour</option>
          <option value="day">last day</option>
        </select>
      </header>
      <Failure error={stats.error} />
      {s && (
        <>
          <p class="figures" id="figures">
            <span>{total} runs</span>
            <span>{total ? ((100 * failed) / total).toFixed(1) : "0.0"}% failed</span>
          </p>
          <Chart stats={s} />
          <h3>By script</h3>
          <Table
            id="by-script"
            rows={s.scripts}
            empty="No finished runs in this window."
            columns={[
              ["Script", (x) => x.script],
              ["Runs", (x) => x.finished],
              ["Failed", (x) => x.failed],
              ["p50 ms", (x) => x.p50_duration_ms ?? ""],
              ["p99 ms", (x) => x.p99_duration_ms ?? ""],
              ["p50 CPU ms", (x) => x.p50_cpu_ms ?? ""],
              ["p99 CPU ms", (x) => x.p99_cpu_ms ?? ""],
            ]}
          />
          {s.truncated && <p class="muted">Per-script figures read the newest {s.sampled} runs.</p>}
        </>
      )}
    </section>
  );
}
